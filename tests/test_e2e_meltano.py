"""End-to-end: the real `meltano` CLI, the simulator subprocess and a real PostgreSQL.

`meltano run tap-callcdr target-postgres` is driven with env-var config only (as a user of
meltano.yml would), every test with its own meltano system database (so its own state) and
its own target schema. Ground truth comes from the simulator's control API.

The loader-only tests pipe a hand-made Singer stream through the loaders as configured in
meltano.yml, to pin down upsert-on-primary-key and time-zone handling of the loaders.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACCOUNTS = ("hq", "branch")
STREAM = "generic_cdr"

Key = tuple[str, str]


def new_schema(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def as_utc(value: datetime) -> datetime:
    """Column value as an aware UTC datetime (naive `timestamp` columns hold UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_to_utc(local: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """Vendor local-time string ("2026-11-20 09:00:00") to an aware UTC datetime."""
    return datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).astimezone(UTC)


def test_local_to_utc_example() -> None:
    assert local_to_utc("2026-11-20 09:00:00") == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def fetch_rows(dsn: str, schema: str, table: str = STREAM) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        )
        return list(cur.fetchall())


def by_key(rows: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    out: dict[Key, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((str(row["account"]), str(row["id"])), []).append(row)
    return out


def without_sdc(row: dict[str, Any]) -> dict[str, Any]:
    """Row minus loader bookkeeping columns (_sdc_*), which legitimately change on upsert."""
    return {k: v for k, v in row.items() if not k.startswith("_sdc_")}


def truth_by_key(simulator: Any) -> dict[Key, datetime]:
    """(account, id) -> vendor start time converted to UTC, for every simulated record."""
    expected: dict[Key, datetime] = {}
    for account in ACCOUNTS:
        for rec in simulator.truth(account):
            key = (account, str(rec["id"]))
            assert key not in expected, f"simulator truth repeats {key}"
            expected[key] = local_to_utc(rec["starttime"])
    return expected


def assert_landed_exactly(rows: list[dict[str, Any]], expected: dict[Key, datetime]) -> None:
    landed = by_key(rows)
    dupes = {k: len(v) for k, v in landed.items() if len(v) > 1}
    assert not dupes, f"{len(dupes)} primary keys landed more than once, e.g. {list(dupes)[:5]}"
    missing = expected.keys() - landed.keys()
    extra = landed.keys() - expected.keys()
    assert not missing, f"{len(missing)} records never landed, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} rows not in the simulator's truth, e.g. {sorted(extra)[:5]}"
    wrong = {
        key: (as_utc(landed[key][0]["starttime"]).isoformat(), want.isoformat())
        for key, want in expected.items()
        if as_utc(landed[key][0]["starttime"]) != want
    }
    assert not wrong, (
        f"{len(wrong)} of {len(expected)} rows have the wrong starttime instant "
        f"(landed, expected UTC), e.g. {list(wrong.items())[:5]}"
    )


# ------------------------------------------------------------------ tap -> target-postgres


def test_meltano_run_generic_to_postgres(
    meltano_postgres: Any,
    postgres: Any,
    start_simulator: Callable[..., Any],
    tmp_path: Path,
) -> None:
    meltano = meltano_postgres
    days = 2
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    sim = start_simulator(calls=300, days=days, seed=7, accounts=",".join(ACCOUNTS), anchor=anchor)
    start_date = anchor - timedelta(days=days + 1)
    schema = new_schema("e2e_generic")
    accounts = [
        {
            "name": name,
            "api_url": sim.generic_url,
            "appid": f"{name}-appid",
            "accesskey": f"{name}-accesskey-S3cr3t",
            "timezone": "Asia/Shanghai",
        }
        for name in ACCOUNTS
    ]
    env = meltano.env(
        tmp_path,
        TAP_CALLCDR_START_DATE=start_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        TAP_CALLCDR_GENERIC_ACCOUNTS=json.dumps(accounts),
        TARGET_POSTGRES_HOST=postgres.host,
        TARGET_POSTGRES_PORT=str(postgres.port),
        TARGET_POSTGRES_USER=postgres.user,
        # target-postgres insists on a password; the throwaway server trusts 127.0.0.1
        TARGET_POSTGRES_PASSWORD=postgres.password,
        TARGET_POSTGRES_DATABASE=postgres.dbname,
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
    )

    # ---- first run: everything the simulator has lands exactly once, at the right instant
    truth1 = truth_by_key(sim)
    assert truth1, "simulator returned no ground truth"
    settled = datetime.now(UTC) - timedelta(minutes=10)
    outside = [k for k, t in truth1.items() if not start_date <= t <= settled]
    assert not outside, (
        f"test setup: {len(outside)} simulated calls fall outside [{start_date}, {settled}], "
        f"e.g. {outside[:3]} -- does --anchor still mean the end of the data?"
    )
    meltano.check("run", "tap-callcdr", "target-postgres", env=env)
    rows1 = fetch_rows(postgres.url, schema)
    assert_landed_exactly(rows1, truth1)

    states = meltano.check("state", "list", env=env).stdout
    assert "tap-callcdr-to-target-postgres" in states, f"no state saved: {states!r}"

    # ---- second run after new calls: exactly the new calls land, nothing else changes
    now = datetime.now(UTC)
    sim.add_calls(
        "hq",
        5,
        start=(now - timedelta(minutes=90)).astimezone(SHANGHAI),
        end=(now - timedelta(minutes=30)).astimezone(SHANGHAI),
    )
    sim.add_calls(
        "branch",
        3,
        start=(now - timedelta(minutes=80)).astimezone(SHANGHAI),
        end=(now - timedelta(minutes=40)).astimezone(SHANGHAI),
    )
    truth2 = truth_by_key(sim)
    new_keys = truth2.keys() - truth1.keys()
    assert len(new_keys) == 8, f"simulator added {len(new_keys)} calls, expected 8"
    assert truth1.keys() <= truth2.keys()

    meltano.check("run", "tap-callcdr", "target-postgres", env=env)
    rows2 = fetch_rows(postgres.url, schema)
    assert_landed_exactly(rows2, truth2)

    before = {k: without_sdc(v[0]) for k, v in by_key(rows1).items()}
    after = {k: without_sdc(v[0]) for k, v in by_key(rows2).items()}
    assert after.keys() - before.keys() == new_keys
    changed = [k for k in before if after[k] != before[k]]
    assert not changed, (
        f"{len(changed)} existing rows changed on the second run, e.g. "
        f"{[(before[k], after[k]) for k in changed[:2]]}"
    )


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
