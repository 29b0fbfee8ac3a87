"""End-to-end: the real `meltano` CLI, simulator subprocesses and a real PostgreSQL.

`meltano run tap-callcdr target-postgres` is driven with env-var config only (as a user of
meltano.yml would), with its own meltano system database (so its own state) and its own
target schema. Every stream of every vendor lands through the same two runs: the
`landing` fixture starts one plain-HTTP simulator and one HTTPS simulator (the vendors whose
helper says HTTPS, Yeastar, with a throwaway CA the account's `ca_bundle` names: TLS
verification on), runs meltano, adds calls through the control API, runs meltano again, and keeps what
PostgreSQL held after each run. The tests then hold every table against the simulators'
ground truth (their control API): every record exactly once by primary key, and every
column of every row the vendor's value: instants (local time, epoch or ISO with offset) as
UTC, money digit for digit, everything else as sent. What target-postgres legitimately
changes: instants land as UTC `timestamp without time zone`, integers as bigint, money as
NUMERIC, an absent value as NULL, a Yeastar row without extra columns as JSON null in `extra`;
it adds its `_sdc_*` columns. Yeastar's `row_id` is the tap's hash, not a vendor field.
Each vendor's accounts, streams and value conversions are its tests/<vendor>_helpers.py's
(tests/landed.py), read through tests/vendors.py: this file names no vendor but in the tests
of one vendor's own feature.

The loader-only tests pipe a hand-made Singer stream through the loaders as configured in
meltano.yml, to pin down upsert-on-primary-key and time-zone handling of the loaders.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import itnio_helpers
import psycopg
import pytest
import yeastar_helpers
from landed import epoch_to_utc, iso_to_utc, local_to_utc
from psycopg import sql
from psycopg.rows import dict_row
from vendors import STREAMS, TESTED, VendorUnderTest

pytestmark = pytest.mark.e2e

STREAM = "generic_cdr"  # the loader-only tests' hand-made stream
DAYS = 2

Key = tuple[str, ...]
Rows = list[dict[str, Any]]
SimulatorProcess = Any  # conftest.SimulatorProcess: a callcdr-simulator subprocess


def new_schema(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def as_utc(value: datetime | None) -> datetime | None:
    """Column value as an aware UTC datetime (naive `timestamp` columns hold UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_time_conversions_examples() -> None:
    assert local_to_utc("2026-11-20 09:00:00") == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    assert local_to_utc("2026-11-20 09:00:00", "America/Sao_Paulo") == datetime(
        2026, 11, 20, 12, 0, tzinfo=UTC
    )
    assert epoch_to_utc("1795136400") == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    assert epoch_to_utc("0") is None
    assert iso_to_utc("2026-11-20T09:00:00+08:00") == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def fetch_rows(dsn: str, schema: str, table: str = STREAM) -> Rows:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        )
        return list(cur.fetchall())


def column_types(dsn: str, schema: str, table: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema, table],
        ).fetchall()
    return {name: kind for name, kind in rows}


def by_key(rows: Rows, key_columns: tuple[str, ...] = ("account", "id")) -> dict[Key, Rows]:
    out: dict[Key, Rows] = {}
    for row in rows:
        out.setdefault(tuple(str(row[c]) for c in key_columns), []).append(row)
    return out


def without_sdc(row: dict[str, Any]) -> dict[str, Any]:
    """Row minus loader bookkeeping columns (_sdc_*), which legitimately change on upsert."""
    return {k: v for k, v in row.items() if not k.startswith("_sdc_")}


# ----------------------------------------------------------- the vendors, as simulated

# Each vendor's accounts, streams and how its raw values land: its tests/<vendor>_helpers.py
# (tests/landed.py lists the facts), read through tests/vendors.py. Accounts differ on purpose
# (zones, doc versions, time formats, answer caps, extra CSV columns): the tap must use each
# account's own.


def sim_accounts(vendor: VendorUnderTest) -> list[dict[str, Any]]:
    """The vendor's accounts as the simulators' --config has them."""
    return vendor.e2e_accounts(DAYS)


def account_names(vendor: VendorUnderTest) -> list[str]:
    return [a["name"] for a in sim_accounts(vendor)]


def key_part(value: Any) -> str:
    """A column of the identity, as text (an instant as UTC ISO, naive or aware)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).isoformat()
    return str(value)


def expected_rows(stream: str, account: dict[str, Any], raw: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    """(identity, {column: the vendor's value}) for one raw vendor record of this simulated
    `account`: every field it sent, times as UTC instants; `stored` then types the rest as
    PostgreSQL holds them."""
    vendor, landing = STREAMS[stream]
    want = {"account": account["name"], **vendor.fields(raw)}
    for column in landing.time_columns:
        want[column] = vendor.instant(account, want.get(column))
    return tuple(key_part(want[c]) for c in landing.identity), want


def stored(data_type: str, value: Any) -> Any:
    """A vendor value as target-postgres stores it in a column of `data_type`: integers as
    bigint, money as NUMERIC (compared as text, digit for digit: "0.0850" stays "0.0850"),
    text as sent; an empty or absent number is NULL."""
    if data_type in ("bigint", "integer", "numeric") and value in (None, ""):
        return None
    if data_type in ("bigint", "integer"):
        return int(value)
    if data_type in ("numeric", "text", "character varying"):
        return None if value is None else str(value)
    return value  # timestamps (UTC instants already) and jsonb (dict or None)


def landed(value: Any) -> Any:
    """A fetched column value in the form `stored` gives."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def truth(sims: dict[str, SimulatorProcess], stream: str) -> dict[Key, dict[str, Any]]:
    """Identity -> expected column values, for every record the simulator holds."""
    vendor, landing = STREAMS[stream]
    out: dict[Key, dict[str, Any]] = {}
    for account in sim_accounts(vendor):
        for raw in sims[vendor.name].truth(account["name"], vendor=vendor.name):
            if not landing.holds(raw):  # a record of the vendor's other stream
                continue
            key, want = expected_rows(stream, account, raw)
            assert key not in out, f"simulator truth repeats {key}"
            out[key] = want
    return out


def identity(stream: str, row: dict[str, Any]) -> Key:
    return tuple(key_part(row[c]) for c in STREAMS[stream][1].identity)


def assert_landed_exactly(
    stream: str, rows: Rows, expected: dict[Key, dict[str, Any]], types: dict[str, str]
) -> None:
    """Every expected record exactly once (by primary key and by the vendor's identity),
    nothing else, and every column of every row as the vendor meant it (`types`: the
    table's columns and their PostgreSQL types)."""
    made_by_tap = STREAMS[stream][1].made_by_tap
    pk = by_key(rows, STREAMS[stream][1].key)
    dupes = {k: len(v) for k, v in pk.items() if len(v) > 1}
    assert not dupes, f"{stream}: {len(dupes)} primary keys landed more than once: {list(dupes)[:5]}"
    landed_rows: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = identity(stream, row)
        assert key not in landed_rows, f"{stream}: record {key} landed under two primary keys"
        landed_rows[key] = row
    missing = expected.keys() - landed_rows.keys()
    extra = landed_rows.keys() - expected.keys()
    assert not missing, f"{stream}: {len(missing)} records never landed, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{stream}: {len(extra)} rows not in the simulator's truth: {sorted(extra)[:5]}"
    columns = {c for c in types if not c.startswith("_sdc_")} - made_by_tap
    dropped = {c for want in expected.values() for c in want} - columns
    assert not dropped, f"{stream}: vendor fields with no column: {sorted(dropped)}"
    wrong = []
    for key, want in expected.items():
        row = landed_rows[key]
        for column in sorted(columns):  # a field the vendor left out must land as NULL
            got, value = landed(row[column]), stored(types[column], want.get(column))
            if got != value:
                wrong.append((key, column, got, value))
        for column in made_by_tap:
            if not (isinstance(row[column], str) and row[column]):
                wrong.append((key, column, row[column], "a non-empty text"))
    assert not wrong, (
        f"{stream}: {len(wrong)} wrong values (key, column, landed, expected), e.g. {wrong[:5]}"
    )


# ------------------------------------------------------------ the two meltano runs


@dataclass
class Landing:
    """What the two `meltano run`s landed, and the ground truth before each."""

    schema: str
    sims: dict[str, SimulatorProcess]
    truth1: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    rows1: dict[str, Rows] = field(default_factory=dict)
    truth2: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    rows2: dict[str, Rows] = field(default_factory=dict)
    types: dict[str, dict[str, str]] = field(default_factory=dict)
    states: str = ""


def tap_accounts(sims: dict[str, SimulatorProcess]) -> dict[str, str]:
    """TAP_CALLCDR_<VENDOR>_ACCOUNTS for the simulated accounts, as a user would set them."""
    env = {}
    for vendor in TESTED:
        sim = sims[vendor.name]
        accounts = [
            vendor.e2e_tap_account(a, sim.api_url(vendor.name, a["name"]), sim.ca_file)
            for a in sim_accounts(vendor)
        ]
        env[f"TAP_CALLCDR_{vendor.setting.upper()}"] = json.dumps(accounts, ensure_ascii=False)
    return env


def sim_config(anchor: datetime, *, https: bool) -> dict[str, Any]:
    """One simulator's --config: the accounts of the vendors it serves, an empty list for the
    others (the CLI's default would start generic demo accounts)."""
    accounts = {v.name: sim_accounts(v) if v.https == https else [] for v in TESTED}
    return {**accounts, "anchor": anchor.isoformat()}


def add_new_calls(sims: dict[str, SimulatorProcess]) -> None:
    """New calls 30-90 minutes ago: inside the look-back window of the second run."""
    now = datetime.now(UTC)
    for vendor in TESTED:
        for index, account in enumerate(account_names(vendor)):
            sims[vendor.name].add_calls(
                account,
                5 - 2 * index,  # 5 to the first account, 3 to the second
                start=now - timedelta(minutes=90 - 10 * index),
                end=now - timedelta(minutes=30 + 10 * index),
                vendor=vendor.name,
            )


@pytest.fixture(scope="module")
def landing(
    meltano_postgres: Any,
    postgres: Any,
    simulator_launcher: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Landing]:
    meltano = meltano_postgres
    work = tmp_path_factory.mktemp("e2e-all-vendors")
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    start_date = anchor - timedelta(days=DAYS + 1)
    started: list[SimulatorProcess] = []
    try:
        http = simulator_launcher(work, anchor=anchor, config=sim_config(anchor, https=False))
        started.append(http)
        https = simulator_launcher(
            work, anchor=anchor, https=True, config=sim_config(anchor, https=True)
        )
        started.append(https)
        assert https.base_url.startswith("https://127.0.0.1:"), https.base_url
        sims = {v.name: https if v.https else http for v in TESTED}
        landing = Landing(schema=new_schema("e2e_all"), sims=sims)
        env = meltano.env(
            work,
            TAP_CALLCDR_START_DATE=start_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **tap_accounts(sims),
            TARGET_POSTGRES_HOST=postgres.host,
            TARGET_POSTGRES_PORT=str(postgres.port),
            TARGET_POSTGRES_USER=postgres.user,
            # target-postgres insists on a password; the throwaway server trusts 127.0.0.1
            TARGET_POSTGRES_PASSWORD=postgres.password,
            TARGET_POSTGRES_DATABASE=postgres.dbname,
            TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=landing.schema,
        )

        # ---- first run: everything the simulators have
        landing.truth1 = {stream: truth(sims, stream) for stream in STREAMS}
        settled = datetime.now(UTC) - timedelta(minutes=10)
        for stream, expected in landing.truth1.items():
            assert expected, f"test setup: the simulator has no {stream} records"
            times = [want[STREAMS[stream][1].replication_key] for want in expected.values()]
            outside = [t for t in times if not start_date <= t <= settled]
            assert not outside, (
                f"test setup: {len(outside)} simulated {stream} calls fall outside "
                f"[{start_date}, {settled}], e.g. {outside[:3]}: does --anchor still mean the "
                "end of the data?"
            )
        meltano.check("run", "tap-callcdr", "target-postgres", env=env)
        landing.rows1 = {s: fetch_rows(postgres.url, landing.schema, s) for s in STREAMS}
        landing.types = {s: column_types(postgres.url, landing.schema, s) for s in STREAMS}
        landing.states = meltano.check("state", "list", env=env).stdout

        # ---- second run, after new calls
        add_new_calls(sims)
        landing.truth2 = {stream: truth(sims, stream) for stream in STREAMS}
        meltano.check("run", "tap-callcdr", "target-postgres", env=env)
        landing.rows2 = {s: fetch_rows(postgres.url, landing.schema, s) for s in STREAMS}
        yield landing
    finally:
        for sim in started:
            sim.stop()


# ------------------------------------------------------------------ tap -> target-postgres

ALL_STREAMS = pytest.mark.parametrize("stream", list(STREAMS))


@ALL_STREAMS
def test_first_run_lands_every_record_once_in_utc(landing: Landing, stream: str) -> None:
    assert_landed_exactly(stream, landing.rows1[stream], landing.truth1[stream], landing.types[stream])
    accounts = {row["account"] for row in landing.rows1[stream]}
    assert accounts == set(account_names(STREAMS[stream][0]))


@ALL_STREAMS
def test_second_run_lands_exactly_the_new_calls(landing: Landing, stream: str) -> None:
    new_keys = landing.truth2[stream].keys() - landing.truth1[stream].keys()
    assert landing.truth1[stream].keys() <= landing.truth2[stream].keys()
    if not STREAMS[stream][1].gets_added_calls:  # e.g. ITNIO's: the control API adds SIP calls
        assert not new_keys
    else:
        # 5 + 3 calls; a transferred Yeastar call is two CSV rows
        assert len(new_keys) >= 8, f"{stream}: simulator added {len(new_keys)} calls"
    assert_landed_exactly(stream, landing.rows2[stream], landing.truth2[stream], landing.types[stream])

    pk = STREAMS[stream][1].key
    before = {k: without_sdc(v[0]) for k, v in by_key(landing.rows1[stream], pk).items()}
    after = {k: without_sdc(v[0]) for k, v in by_key(landing.rows2[stream], pk).items()}
    added = {identity(stream, after[k]) for k in after.keys() - before.keys()}
    assert added == new_keys
    assert before.keys() <= after.keys()
    changed = [k for k in before if after[k] != before[k]]
    assert not changed, (
        f"{stream}: {len(changed)} existing rows changed on the second run, e.g. "
        f"{[(before[k], after[k]) for k in changed[:2]]}"
    )


def test_state_is_saved(landing: Landing) -> None:
    assert "tap-callcdr-to-target-postgres" in landing.states, f"no state: {landing.states!r}"


@pytest.mark.parametrize("stream", list(itnio_helpers.STREAMS))
def test_itnio_money_is_exact_numeric(landing: Landing, stream: str) -> None:
    """NUMERIC columns, every digit the vendor sent (compared as strings above, too)."""
    types = landing.types[stream]
    money = STREAMS[stream][1].money
    assert money
    for column in money:
        assert types[column] == "numeric", f"{stream}.{column} is {types[column]}"
    rows = landing.rows2[stream]
    assert all(isinstance(r["rate"], Decimal) for r in rows)
    # rates have four decimals ("0.0085"): a float or a rounded column would show
    assert any(r["rate"].as_tuple().exponent == -4 for r in rows)
    assert any(r["cost"] != 0 for r in rows)


def test_yeastar_extra_is_queryable_json(landing: Landing, postgres: Any) -> None:
    """The newer-firmware CSV columns land in `extra` (jsonb) a user can query by name.

    A row without extra columns holds JSON null there (target-postgres writes `null` into
    jsonb, not SQL NULL): `extra->>'name'` is NULL either way, `extra IS NULL` is not.
    """
    extra_columns = yeastar_helpers.EXTRA_COLUMNS
    assert landing.types[yeastar_helpers.STREAM]["extra"] == "jsonb"
    expected = {
        key[1:]: want["extra"]
        for key, want in landing.truth2[yeastar_helpers.STREAM].items()
        if key[0] == "pbx1"
    }
    table = sql.SQL("{}.yeastar_cdr").format(sql.Identifier(landing.schema))
    query = sql.SQL(
        "SELECT callid, timestart, extra->>%s, extra->>%s FROM {} WHERE account = 'pbx1'"
    ).format(table)
    kinds = sql.SQL(
        "SELECT account, coalesce(jsonb_typeof(extra), 'SQL NULL'), count(*) FROM {} "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(table)
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        rows = conn.execute(query, extra_columns).fetchall()
        by_kind = {(a, k): n for a, k, n in conn.execute(kinds).fetchall()}
    assert len(rows) == len(expected)
    for callid, start, first, second in rows:
        want = expected[(callid, as_utc(start).isoformat())]
        assert want is not None
        assert (first, second) == (want[extra_columns[0]], want[extra_columns[1]])
    assert set(by_kind) <= {("pbx1", "object"), ("pbx2", "null"), ("pbx2", "SQL NULL")}, by_kind


# ------------------------------------------------------------------ meltano.yml demo config


def dumped_config(meltano: Any, tmp_path: Path, environment: str) -> dict[str, Any]:
    env = meltano.env(tmp_path, MELTANO_ENVIRONMENT=environment)
    return json.loads(meltano.check("invoke", "--dump=config", "tap-callcdr", env=env).stdout)


def test_demo_accounts_only_in_demo_environment_with_simulator_credentials(
    meltano_postgres: Any, tmp_path: Path
) -> None:
    """scripts/demo's accounts (environment `demo`) are the simulator's demo credentials, those
    of a vendor reached over HTTPS (Yeastar) trust the CA file scripts/demo writes; dev carries
    no account at all."""
    from tap_callcdr.tap import VENDORS

    dev = dumped_config(meltano_postgres, tmp_path, "dev")
    accounts = {vendor.setting for vendor in VENDORS}  # not parallel_accounts, a plain number
    assert accounts and not accounts & set(dev), f"dev has accounts: {sorted(dev)}"

    demo = dumped_config(meltano_postgres, tmp_path, "demo")
    for vendor in TESTED:
        configured = demo[vendor.setting]
        simulated = vendor.demo_accounts([a["name"] for a in configured])
        for account, sim in zip(configured, simulated, strict=True):
            assert [account[k] for k in vendor.credentials] == [
                getattr(sim, k) for k in vendor.credentials
            ], (vendor.name, account["name"])
            if vendor.https:
                assert account["api_url"].startswith("https://")
                assert account["ca_bundle"] == str(meltano_postgres.root / "output" / "demo-ca.pem")
                assert account.get("verify_tls", True) is True
        assert 1 <= len(configured) <= 2, vendor.name


# ----------------------------------------------------- loaders with a hand-made stream


def singer_messages(records: list[dict[str, Any]]) -> str:
    schema = {
        "type": "SCHEMA",
        "stream": STREAM,
        "key_properties": ["account", "id"],
        "bookmark_properties": ["starttime"],
        "schema": {
            "type": "object",
            "properties": {
                "account": {"type": "string"},
                "id": {"type": "string"},
                "starttime": {"type": "string", "format": "date-time"},
                "direction": {"type": ["string", "null"]},
                "duration": {"type": ["integer", "null"]},
            },
        },
    }
    lines = [schema] + [{"type": "RECORD", "stream": STREAM, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {STREAM: {"n": len(records)}}}})
    return "".join(json.dumps(m) + "\n" for m in lines)


FIRST_BATCH = [
    # 09:00 Shanghai == 01:00 UTC: the loader must store the instant, not the wall clock.
    {
        "account": "hq",
        "id": "1",
        "starttime": "2026-11-20T09:00:00+08:00",
        "direction": "callin",
        "duration": 10,
    },
    {
        "account": "hq",
        "id": "2",
        "starttime": "2026-11-20T01:05:00+00:00",
        "direction": "callout",
        "duration": 20,
    },
    {
        "account": "branch",
        "id": "1",
        "starttime": "2026-11-20T01:10:00Z",
        "direction": "callin",
        "duration": 30,
    },
]
SECOND_BATCH = [
    # same key as the first record, new duration: must update in place
    {
        "account": "hq",
        "id": "1",
        "starttime": "2026-11-20T09:00:00+08:00",
        "direction": "callin",
        "duration": 11,
    },
    {
        "account": "branch",
        "id": "2",
        "starttime": "2026-11-20T02:00:00Z",
        "direction": "callout",
        "duration": 40,
    },
]
EXPECTED_AFTER_BOTH = {
    ("hq", "1"): (datetime(2026, 11, 20, 1, 0, tzinfo=UTC), 11),
    ("hq", "2"): (datetime(2026, 11, 20, 1, 5, tzinfo=UTC), 20),
    ("branch", "1"): (datetime(2026, 11, 20, 1, 10, tzinfo=UTC), 30),
    ("branch", "2"): (datetime(2026, 11, 20, 2, 0, tzinfo=UTC), 40),
}


def assert_upserted(rows: list[dict[str, Any]]) -> None:
    landed = by_key(rows)
    assert {k: len(v) for k, v in landed.items()} == dict.fromkeys(EXPECTED_AFTER_BOTH, 1)
    got = {k: (as_utc(v[0]["starttime"]), int(v[0]["duration"])) for k, v in landed.items()}
    assert got == EXPECTED_AFTER_BOTH


def test_target_postgres_upserts_on_primary_key(
    meltano: Any, postgres: Any, tmp_path: Path
) -> None:
    meltano.install("target-postgres")
    schema = new_schema("e2e_loader")
    env = meltano.env(
        tmp_path,
        TARGET_POSTGRES_HOST=postgres.host,
        TARGET_POSTGRES_PORT=str(postgres.port),
        TARGET_POSTGRES_USER=postgres.user,
        # target-postgres insists on a password; the throwaway server trusts 127.0.0.1
        TARGET_POSTGRES_PASSWORD=postgres.password,
        TARGET_POSTGRES_DATABASE=postgres.dbname,
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
    )
    for batch in (FIRST_BATCH, SECOND_BATCH):
        meltano.check("invoke", "target-postgres", env=env, input=singer_messages(batch))
    assert_upserted(fetch_rows(postgres.url, schema))


def test_target_duckdb_upserts_on_primary_key(meltano: Any, tmp_path: Path) -> None:
    # Also guards the duckdb pin in meltano.yml: with duckdb >= 1.3, target-duckdb 0.8
    # silently drops the first row of every batch (its CSV COPY sniffs it as a header).
    meltano.install("target-duckdb")
    db = tmp_path / "landed.duckdb"
    env = meltano.env(
        tmp_path, TARGET_DUCKDB_FILEPATH=str(db), TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA="callcdr"
    )
    for batch in (FIRST_BATCH, SECOND_BATCH):
        meltano.check("invoke", "target-duckdb", env=env, input=singer_messages(batch))
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"SELECT * FROM callcdr.{STREAM}")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    assert_upserted(rows)
