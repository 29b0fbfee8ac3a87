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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import itnio_helpers
import psycopg
import pytest
import yeastar_helpers
from e2e_truth import (
    Key,
    Landing,
    Rows,
    as_utc,
    assert_calls_join_their_rows,
    assert_landed_exactly,
    by_key,
    check_first_run,
    check_second_run,
    landed_twice,
)
from landed import epoch_to_utc, iso_to_utc, local_to_utc
from psycopg import sql
from psycopg.rows import dict_row
from vendors import STREAMS, TESTED

pytestmark = pytest.mark.e2e

STREAM = "generic_cdr"  # the loader-only tests' hand-made stream
CALLS = "calls"  # the unified stream (docs/calls.md), selected by Meltano's default select


def new_schema(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


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


# ------------------------------------------------------------ the two meltano runs


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


def landed_exactly(
    stream: str, rows: Rows, expected: dict[Key, dict[str, Any]], types: dict[str, str]
) -> None:
    assert_landed_exactly(stream, rows, expected, types, stored=stored, landed=landed)


@pytest.fixture(scope="module")
def landing(
    meltano_postgres: Any,
    postgres: Any,
    simulator_launcher: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Landing]:
    meltano = meltano_postgres
    work = tmp_path_factory.mktemp("e2e-all-vendors")
    schema = new_schema("e2e_all")
    target = postgres.target_env(schema)

    def run(tap: dict[str, str]) -> None:
        meltano.check("run", "tap-callcdr", "target-postgres", env=meltano.env(work, **tap, **target))

    def fetch() -> dict[str, Rows]:
        return {stream: fetch_rows(postgres.url, schema, stream) for stream in [*STREAMS, CALLS]}

    with landed_twice(simulator_launcher, work, schema, run, fetch, reread=True) as landing:
        landing.types = {s: column_types(postgres.url, schema, s) for s in [*STREAMS, CALLS]}
        landing.states = meltano.check("state", "list", env=meltano.env(work)).stdout
        yield landing


# ------------------------------------------------------------------ tap -> target-postgres

ALL_STREAMS = pytest.mark.parametrize("stream", list(STREAMS))


@ALL_STREAMS
def test_first_run_lands_every_record_once_in_utc(landing: Landing, stream: str) -> None:
    check_first_run(landing, stream, landed_exactly)


@ALL_STREAMS
def test_second_run_lands_exactly_the_new_calls(landing: Landing, stream: str) -> None:
    check_second_run(landing, stream, landed_exactly)


@pytest.mark.parametrize("run", [1, 2])
def test_calls_land_one_row_per_vendor_row_at_its_instant(landing: Landing, run: int) -> None:
    """Meltano selects every stream, `calls` too: each vendor row (held against the
    simulators' truth above) has exactly one `calls` row, joined back by source_stream and
    source_key, started at the vendor row's instant, once per primary key; none is left over."""
    rows = landing.rows1 if run == 1 else landing.rows2
    assert_calls_join_their_rows(rows, rows[CALLS])
    types = landing.types[CALLS]
    assert types["started_at"] == types["ended_at"] == "timestamp without time zone"
    assert types["duration_seconds"] == "bigint" and types["cost"] == "numeric"


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
    env = meltano.env(tmp_path, **postgres.target_env(schema))
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
