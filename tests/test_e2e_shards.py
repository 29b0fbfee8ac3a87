"""End-to-end: one config over 3 shards, then re-sharded to 4, with the real `meltano` CLI,
target-postgres and Meltano's state in PostgreSQL (docs/scale.md).

12 generic accounts on a simulator subprocess; shard i of N is `meltano run --state-id-suffix
shard-i-of-N tap-callcdr target-postgres` with TAP_CALLCDR_SHARD_INDEX/COUNT. Every call lands
once and each shard's state id holds its own accounts' bookmarks. Then new calls, and 4 shards,
each seeded first (orchestrate/shard_state.py): the new layout's state ids hold nothing until
seeded; after the runs nothing is lost, and the simulator's
request log shows that no account was read further back than its bookmark minus the lookback
(without the seed every account is read again from start_date: each state id of 4 shards is
new; this test then fails naming all 12).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Meltano, PostgresServer, SimulatorProcess

from orchestrate.shard_state import effective, seed
from tap_callcdr.core.shards import shard_of

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"pbx{number:02d}" for number in range(12)]
LOOKBACK = timedelta(minutes=120)  # meltano.yml's lookback_minutes
JOB = "dev:tap-callcdr-to-target-postgres"
Marks = dict[str, datetime]


def sim_account(name: str, seed: int) -> dict[str, Any]:
    return {"name": name, "appid": f"{name}-appid", "accesskey": f"{name}-key", "timezone": "UTC",
            "calls": 12, "days": 2, "seed": seed}  # fmt: skip


def tap_account(sim: SimulatorProcess, account: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "appid", "accesskey", "timezone")
    return {"api_url": sim.api_url("generic", account["name"]), **{k: account[k] for k in keep}}


def landed_keys(postgres: PostgresServer, schema: str) -> list[tuple[str, int]]:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        rows = conn.execute(f'SELECT account, id FROM "{schema}".generic_cdr').fetchall()
    return [(account, int(id_)) for account, id_ in rows]


def truth_keys(sim: SimulatorProcess) -> list[tuple[str, int]]:
    return [(name, int(raw["id"])) for name in ACCOUNTS for raw in sim.truth(name)]


def bookmarks(meltano: Meltano, env: dict[str, str]) -> dict[str, Marks]:
    """Each state id's bookmarks, by account."""
    states = json.loads(meltano.check("state", "export", env=env).stdout)
    out: dict[str, Marks] = {}
    for state_id, entry in states.items():
        stream = effective(entry).get("bookmarks", {}).get("generic_cdr", {})
        out[state_id] = {
            p["context"]["account"]: datetime.fromisoformat(p["replication_key_value"])
            for p in stream.get("partitions", [])
            if p.get("replication_key_value")
        }
    return out


def earliest_asked(sim: SimulatorProcess) -> Marks:
    """The earliest window start the tap asked the simulator for, by account (UTC accounts)."""
    asked: Marks = {}
    for request in sim._request("GET", "/_control/requests"):
        if request["service"] == "App.Sip_Cdr.GetBill":
            start = datetime.fromisoformat(request["params"]["starttime"]).replace(tzinfo=UTC)
            asked[request["account"]] = min(start, asked.get(request["account"], start))
    return asked


def test_three_shards_then_four_land_every_call_once_and_resume_at_each_bookmark(
    meltano_postgres: Meltano,
    postgres: PostgresServer,
    meltano_system_db: str,
    simulator_launcher: Callable[..., SimulatorProcess],
    tmp_path: Path,
) -> None:
    meltano = meltano_postgres
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    accounts = [sim_account(name, seed) for seed, name in enumerate(ACCOUNTS)]
    config = {"generic": accounts, "tencent": [], "itnio": [], "yeastar": [], "anchor": anchor.isoformat()}
    sim = simulator_launcher(tmp_path, anchor=anchor, config=config)
    schema = f"e2e_shards_{tmp_path.name[-8:].replace('-', '_')}"
    env = meltano.env(
        tmp_path,
        MELTANO_DATABASE_URI=meltano_system_db,  # state in PostgreSQL: shards may run at once
        TAP_CALLCDR_START_DATE=(anchor - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        TAP_CALLCDR_GENERIC_ACCOUNTS=json.dumps([tap_account(sim, a) for a in accounts]),
        **postgres.target_env(schema),
    )

    def run_shard(index: int, count: int, seeded: bool) -> None:
        """One shard, as an orchestrator's op runs it (with the seed after a re-shard)."""
        if seeded:
            seed(f"{JOB}:shard-{index}-of-{count}", project_dir=meltano.root, env=env)
        shard = {"TAP_CALLCDR_SHARD_INDEX": str(index), "TAP_CALLCDR_SHARD_COUNT": str(count)}
        suffix = ("--state-id-suffix", f"shard-{index}-of-{count}")
        meltano.check("run", *suffix, "tap-callcdr", "target-postgres", env=env | shard)

    def run_shards(count: int, *, seeded: bool = False) -> None:
        """One after the other: shards at the same time in one project directory race on
        Meltano's catalog file (docs/scale.md); their state in PostgreSQL would allow it."""
        for index in range(count):
            run_shard(index, count, seeded)

    try:
        run_shards(3)
        assert sorted(landed_keys(postgres, schema)) == sorted(truth_keys(sim))  # each call once
        marks = bookmarks(meltano, env)
        for index in range(3):
            own = {name for name in ACCOUNTS if shard_of("generic", name, 3) == index}
            assert set(marks[f"{JOB}:shard-{index}-of-3"]) == own
        before = {name: mark for shard in marks.values() for name, mark in shard.items()}

        now = datetime.now(UTC)  # new calls, within the lookback of every account
        for name in ACCOUNTS:
            sim.add_calls(name, 2, start=now - timedelta(minutes=50), end=now - timedelta(minutes=20))
        sim._request("DELETE", "/_control/requests")
        moved = [n for n in ACCOUNTS if shard_of("generic", n, 3) != shard_of("generic", n, 4)]
        assert moved and not any(sid.endswith("-of-4") for sid in marks)  # where they go holds nothing
        run_shards(4, seeded=True)

        assert sorted(landed_keys(postgres, schema)) == sorted(truth_keys(sim))  # none lost, none twice
        asked = earliest_asked(sim)
        assert set(asked) == set(ACCOUNTS)
        too_early = {n: (asked[n], before[n]) for n in ACCOUNTS if asked[n] < before[n] - LOOKBACK}
        assert not too_early, f"read further back than bookmark - lookback (asked, bookmark): {too_early}"
        assert set(bookmarks(meltano, env)) == {f"{JOB}:shard-{index}-of-4" for index in range(4)}
    finally:
        sim.stop()
