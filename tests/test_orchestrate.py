"""The Dagster job of orchestrate/ run for real: the `dagster` CLI, its multiprocess executor, one
`meltano run tap-callcdr target-postgres` per shard, against the simulator, into PostgreSQL, with
Meltano's system database (so every shard's state) on that PostgreSQL too.

One module-scoped story of three job runs over 12 generic accounts (kept small: each run starts
a meltano, a tap and a target per shard):
1. 3 shards, one at a time (a first run into a new schema, docs/scale.md): every call lands once;
   each shard has its own state id holding its accounts.
2. new calls, 3 shards, one account made to fail once: only its shard is retried (Dagster's event
   log), then lands; no account reads further back than its bookmark minus the look-back.
3. new calls, re-sharded to 4: nothing lost, nothing re-read beyond the look-back.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster
import psycopg
import pytest
from conftest import REPO_ROOT, Meltano, SimulatorProcess, venv_executable

from tap_callcdr.core.shards import shard_of

pytestmark = pytest.mark.e2e


ZONE = "Asia/Shanghai"
ACCOUNTS = [f"pbx{i:02d}" for i in range(12)]
LOOKBACK_MINUTES = 120
STREAM = "generic_cdr"
GET_BILL = "App.Sip_Cdr.GetBill"
FAILING = "pbx05"  # the account made to fail in the second run


def sim_account(name: str, seed: int) -> dict[str, Any]:
    return {"name": name, "appid": f"{name}-appid", "accesskey": f"{name}-key-S3cr3t",
            "timezone": ZONE, "calls": 30, "days": 2, "seed": seed}  # fmt: skip


@dataclass
class Pipeline:
    """The simulator, the warehouse schema, Meltano's system database and a DAGSTER_HOME."""

    sim: SimulatorProcess
    meltano: Meltano
    env: dict[str, str]
    dsn: str
    schema: str
    home: Path
    runs: list[Any] = field(default_factory=list)  # each run: its RunResult

    def run(self, shards: int, *, at_once: int, **extra_env: str) -> RunResult:
        log_start = len(self.requests())
        config = self.home / f"run-{len(self.runs)}.yaml"
        config.write_text(json.dumps({
            "ops": {"shards": {"config": {"shard_count": shards}}},
            # forkserver: each step forks from a process that imported dagster once, instead
            # of starting a Python that imports it again
            "execution": {"config": {"max_concurrent": at_once, "start_method": {"forkserver": {}}}},
        }))  # fmt: skip
        argv = [venv_executable("dagster"), "job", "execute", "-f", "orchestrate/definitions.py",
                "-j", "sharded_pipeline", "-c", str(config)]  # fmt: skip
        proc = subprocess.run(argv, cwd=REPO_ROOT, env={**self.env, **extra_env}, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        config.with_suffix(".log").write_text(proc.stdout + proc.stderr)  # kept for a look
        output = f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        assert proc.returncode == 0, f"dagster exited {proc.returncode}\n{output}"
        result = RunResult(
            steps=self.step_starts(), requests=self.requests()[log_start:], states=self.states(),
            output=proc.stdout + proc.stderr,
        )  # fmt: skip
        self.runs.append(result)
        return result

    def step_starts(self) -> Counter[str]:
        """How often each step of the latest Dagster run started (a retry starts it again)."""
        instance = dagster.DagsterInstance.from_config(str(self.home))
        try:
            run = instance.get_runs(limit=1)[0]
            assert run.status == dagster.DagsterRunStatus.SUCCESS, run.status
            kinds = {dagster.DagsterEventType.STEP_START, dagster.DagsterEventType.STEP_RESTARTED}
            starts = instance.all_logs(run.run_id, of_type=kinds)  # a retry is a RESTARTED
            return Counter(str(event.step_key) for event in starts)
        finally:
            instance.dispose()

    def requests(self) -> list[dict[str, Any]]:
        return self.sim._request("GET", "/_control/requests")

    def states(self) -> dict[str, dict[str, Any]]:
        """Meltano's state id -> bookmarks, read back through the meltano CLI."""
        env = {**self.env, "MELTANO_CLI_LOG_LEVEL": "warning"}
        ids = self.meltano.check("state", "list", env=env).stdout.split()
        return {i: json.loads(self.meltano.check("state", "get", i, env=env).stdout) for i in ids}

    def rows(self) -> Counter[tuple[str, str]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            query = f'SELECT account, id FROM "{self.schema}".{STREAM}'
            return Counter((a, str(i)) for a, i in conn.execute(query).fetchall())

    def truth(self) -> set[tuple[str, str]]:
        return {(a, str(r["id"])) for a in ACCOUNTS for r in self.sim.truth(a)}


@dataclass
class RunResult:
    steps: Counter[str]
    requests: list[dict[str, Any]]
    states: dict[str, dict[str, Any]]
    output: str  # dagster's, with each failed step's description (Meltano's last lines)


def bookmarks(states: dict[str, dict[str, Any]], count: int) -> dict[str, dict[str, datetime]]:
    """State id -> {account: bookmark} of the state ids of a `count`-shard layout."""
    out = {}
    for state_id, state in states.items():
        if state_id.endswith(f"-of-{count}"):
            parts = state["singer_state"]["bookmarks"][STREAM]["partitions"]
            out[state_id] = {
                p["context"]["account"]: datetime.fromisoformat(p["replication_key_value"]) for p in parts
            }
    return out


def earliest_reads(requests: list[dict[str, Any]]) -> dict[str, datetime]:
    """Account -> the earliest call start time a run asked the vendor for (UTC)."""
    out: dict[str, datetime] = {}
    for request in requests:
        if request["service"] == GET_BILL:
            local = datetime.fromisoformat(request["params"]["starttime"]).replace(tzinfo=ZoneInfo(ZONE))
            start = local.astimezone(UTC)
            out[request["account"]] = min(start, out.get(request["account"], start))
    return out


def read_only_the_lookback(before: dict[str, dict[str, datetime]], requests: list[dict[str, Any]]) -> None:
    marks = {account: mark for shard in before.values() for account, mark in shard.items()}
    assert set(marks) == set(ACCOUNTS), f"bookmarks missing for {set(ACCOUNTS) - set(marks)}"
    reads = earliest_reads(requests)
    assert set(reads) == set(ACCOUNTS), f"accounts never read: {set(ACCOUNTS) - set(reads)}"
    lookback = timedelta(minutes=LOOKBACK_MINUTES)
    too_early = {a: (reads[a], marks[a]) for a in ACCOUNTS if reads[a] < marks[a] - lookback}
    assert not too_early, f"read before bookmark - look-back (read, bookmark): {too_early}"


def landed_once(pipeline: Pipeline) -> None:
    rows, truth = pipeline.rows(), pipeline.truth()
    assert not {k: n for k, n in rows.items() if n > 1}, "calls landed twice"
    assert not truth - rows.keys(), f"{len(truth - rows.keys())} calls never landed"
    assert not rows.keys() - truth, "rows the simulator never had"


def add_calls(sim: SimulatorProcess) -> None:
    now = datetime.now(UTC)
    for account in ACCOUNTS:
        sim.add_calls(account, 3, start=now - timedelta(minutes=60), end=now - timedelta(minutes=20))


def add_fault(sim: SimulatorProcess, **fault: Any) -> None:
    sim._request("POST", "/_control/faults", fault)


@pytest.fixture(scope="module")
def pipeline(
    meltano_postgres: Meltano, postgres: Any, simulator_launcher: Any, tmp_path_factory: Any
) -> Iterator[Pipeline]:
    work = tmp_path_factory.mktemp("orchestrate")
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    config = {"generic": [sim_account(name, seed) for seed, name in enumerate(ACCOUNTS)]}
    sim = simulator_launcher(work, anchor=anchor, config={**config, "anchor": anchor.isoformat()})
    system_db = f"meltano_{uuid.uuid4().hex[:8]}"
    postgres.create_database(system_db)
    schema = f"orchestrate_{uuid.uuid4().hex[:8]}"
    home = work / "dagster_home"
    home.mkdir()
    accounts = [{"name": a["name"], "api_url": sim.api_url("generic", a["name"]), "appid": a["appid"],
                 "accesskey": a["accesskey"], "timezone": ZONE} for a in config["generic"]]  # fmt: skip
    env = meltano_postgres.env(
        work,
        MELTANO_DATABASE_URI=postgres.meltano_database_uri(system_db),  # state: shared by the shards
        TAP_CALLCDR_GENERIC_ACCOUNTS=json.dumps(accounts),
        TAP_CALLCDR_START_DATE=(anchor - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        TAP_CALLCDR_LOOKBACK_MINUTES=str(LOOKBACK_MINUTES),
        DAGSTER_HOME=str(home),
        CALLCDR_SHARD_RETRY_DELAY="1",
        **postgres.target_env(schema),
    )
    try:
        yield Pipeline(sim, meltano_postgres, env, postgres.url, schema, home)
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def first(pipeline: Pipeline) -> RunResult:
    # A first run into a new schema runs its shards one at a time, as docs/scale.md says: shards
    # started together each CREATE TABLE, and all but one fail (DuplicateTable), to be retried
    return pipeline.run(3, at_once=1)


@pytest.fixture(scope="module")
def second(pipeline: Pipeline, first: RunResult) -> RunResult:
    add_calls(pipeline.sim)
    add_fault(pipeline.sim, kind="http_500", vendor="generic", account=FAILING, times=1)
    # every shard at once; the tap gives the failing account up at once
    result = pipeline.run(3, at_once=3, TAP_CALLCDR_MAX_RETRIES="0")
    landed_once(pipeline)
    return result


@pytest.fixture(scope="module")
def resharded(pipeline: Pipeline, second: RunResult) -> RunResult:
    add_calls(pipeline.sim)
    result = pipeline.run(4, at_once=4)
    landed_once(pipeline)
    return result


def test_every_call_lands_once_and_each_shard_has_its_own_state(pipeline: Pipeline, first: RunResult) -> None:
    landed_once(pipeline)
    assert first.steps == Counter({"shards": 1, **{f"run_shard[shard_{i}]": 1 for i in range(3)}})
    marks = bookmarks(first.states, 3)
    assert sorted(marks) == [f"dev:tap-callcdr-to-target-postgres:shard-{i}-of-3" for i in range(3)]
    for i in range(3):  # each state id holds the bookmarks of its own accounts, and only those
        own = {a for a in ACCOUNTS if shard_of("generic", a, 3) == i}
        assert own and set(marks[f"dev:tap-callcdr-to-target-postgres:shard-{i}-of-3"]) == own


def test_a_failed_shard_is_retried_alone_then_lands(first: RunResult, second: RunResult) -> None:
    failing = f"run_shard[shard_{shard_of('generic', FAILING, 3)}]"
    assert second.steps[failing] == 2, second.steps
    assert all(n == 1 for step, n in second.steps.items() if step != failing), second.steps
    faulted = [r["account"] for r in second.requests if r["fault"]]
    assert faulted == [FAILING]
    # the failed step says which account failed, in Meltano's last lines, without its secret
    assert "STEP_UP_FOR_RETRY" in second.output and f"account '{FAILING}'" in second.output
    assert "S3cr3t" not in second.output
    after, before = bookmarks(second.states, 3), bookmarks(first.states, 3)
    for state_id, marks in after.items():  # every account's bookmark moved on, its own shard's
        assert set(marks) == set(before[state_id])
        assert all(marks[a] >= before[state_id][a] for a in marks), state_id


def test_a_second_run_reads_only_the_lookback(first: RunResult, second: RunResult) -> None:
    read_only_the_lookback(bookmarks(first.states, 3), second.requests)


def test_after_resharding_nothing_is_lost_or_reread(second: RunResult, resharded: RunResult) -> None:
    assert resharded.steps == Counter({"shards": 1, **{f"run_shard[shard_{i}]": 1 for i in range(4)}})
    read_only_the_lookback(bookmarks(second.states, 3), resharded.requests)
    marks = bookmarks(resharded.states, 4)
    assert len(marks) == 4
    for i in range(4):
        own = {a for a in ACCOUNTS if shard_of("generic", a, 4) == i}
        assert set(marks[f"dev:tap-callcdr-to-target-postgres:shard-{i}-of-4"]) >= own
