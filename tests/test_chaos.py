"""Chaos: every vendor at once into the real PostgreSQL through the real target-postgres, with a
fault on 20% of the vendor requests (every retryable kind, logins included), kill -9 of the tap
at several random points, resume from the state the target emitted, late CDRs inside the
look-back. The final table must equal the simulator's truth.

The tap's console script is piped straight into target-postgres's executable (the meltano plugin
venv's), as `meltano run` would, so the tap can be SIGKILLed and the target's last STATE line read
from its stdout. Everything is seeded: the seed is in every failure message, and
``CALLCDR_CHAOS_SEED=<seed>`` replays the same fault draws and kill points (the draws follow the
order of requests, which the tap's threads can vary). ``scripts/chaos`` runs the heavier variant
(``CALLCDR_CHAOS_RATE``, ``CALLCDR_CHAOS_RETRIES``, ``CALLCDR_CHAOS_KILLS``; and
``CALLCDR_CHAOS_KINDS=http_500,truncate`` narrows the mix, to tell which kind a failure needs).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import venv_executable
from e2e_truth import Rows, account_names, as_utc, by_key, sim_accounts, truth, without_sdc
from test_e2e_meltano import column_types, fetch_rows, landed_exactly, new_schema
from vendors import STREAMS, TESTED

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

RATE = float(os.environ.get("CALLCDR_CHAOS_RATE", "0.2"))
RETRIES = int(os.environ.get("CALLCDR_CHAOS_RETRIES", "8"))  # 0.2**9: a request never gives up
KILLS = int(os.environ.get("CALLCDR_CHAOS_KILLS", "3"))
KINDS = [k for k in os.environ.get("CALLCDR_CHAOS_KINDS", "").split(",") if k]  # default: all
SEED = int(os.environ.get("CALLCDR_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
DAYS = 2
RUN_SECONDS = 600  # the most one run may take before the test gives up on it
SLOW_SECONDS = 2  # a `slow` fault outlasts the tap's request timeout (1 s)
STATES_READ = re.compile(r"completed processing \d+ lines of input \(.*?(\d+) state messages")


# ------------------------------------------------------------------------------ pipeline


@dataclass
class Run:
    """One tap | target-postgres pipeline run."""

    tap_code: int
    target_code: int
    killed: bool
    states: list[dict[str, Any]]  # what the target emitted, in order
    seconds: float
    requests: int  # vendor requests the simulator answered meanwhile
    log: str  # the tap's and the target's stderr, their tails
    given: dict[str, Any] | None  # the state it started from
    tap_log: Path
    target_log: Path

    def states_received(self) -> int:
        """How many STATE messages the target read (it says so when its input ends)."""
        found = STATES_READ.findall(self.target_log.read_text(errors="replace"))
        return int(found[-1]) if found else -1

    @property
    def state(self) -> dict[str, Any] | None:
        return self.states[-1] if self.states else None


@dataclass
class Chaos:
    """The simulator, the two executables and their config files, and every run so far."""

    sim: Any  # conftest.SimulatorProcess
    tap: str
    target: str
    work: Path
    tap_config: Path
    target_config: Path
    runs: list[Run] = field(default_factory=list)

    def run(self, state: dict[str, Any] | None, kill_at_requests: int | None = None) -> Run:
        """Run the pipeline; with ``kill_at_requests``, SIGKILL the tap once the simulator has
        answered that many more vendor requests (progress, not wall time: a loaded CI machine
        would otherwise kill at random stages)."""
        tag = f"run{len(self.runs)}"
        argv = [self.tap, "--config", str(self.tap_config)]
        if state is not None:
            state_file = self.work / f"{tag}-state.json"
            state_file.write_text(json.dumps(state))
            argv += ["--state", str(state_file)]
        tap_err = (self.work / f"{tag}-tap.stderr").open("w+b")
        target_err = (self.work / f"{tag}-target.stderr").open("w+b")
        began, baseline = time.monotonic(), self.request_count()
        tap = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=tap_err)
        target = subprocess.Popen(
            [self.target, "--config", str(self.target_config)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=target_err,
            env={**os.environ, "PGTZ": "UTC"},  # as meltano.yml sets for target-postgres
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the only read end: it sees EOF when the tap dies
        killed = False
        try:
            if kill_at_requests is not None:
                killed = self._kill_when(tap, baseline + kill_at_requests, began + RUN_SECONDS)
            tap_code = tap.wait(timeout=max(1.0, began + RUN_SECONDS - time.monotonic()))
            out, _ = target.communicate(timeout=300)
        finally:
            for proc in (tap, target):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
        run = Run(tap_code, target.returncode, killed, _states(out), time.monotonic() - began,
                  self.request_count() - baseline, _tails(tap_err, target_err), state,
                  Path(tap_err.name), Path(target_err.name))  # fmt: skip
        self.runs.append(run)
        return run

    def _kill_when(self, tap: subprocess.Popen[bytes], requests: int, deadline: float) -> bool:
        while tap.poll() is None and time.monotonic() < deadline:
            if self.request_count() >= requests:
                tap.send_signal(signal.SIGKILL)  # the tap only: as the OOM killer would
                return True
            time.sleep(0.05)
        return False

    def request_count(self) -> int:
        return int(self.sim._request("GET", "/_control/requests/counts")["total"])

    def set_fault_rate(self, rate: float, seed: int) -> None:
        if rate:
            mix = {"rate": rate, "seed": seed, "params": {"slow": {"seconds": SLOW_SECONDS}}}
            mix.update({"kinds": KINDS} if KINDS else {})
            self.sim._request("POST", "/_control/fault-mix", mix)
        else:
            self.sim._request("DELETE", "/_control/fault-mix")

    def fault_mix(self) -> Any:
        return self.sim._request("GET", "/_control/fault-mix")


def _states(out: bytes) -> list[dict[str, Any]]:
    """The STATE values target-postgres wrote to stdout (one JSON object a line)."""
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def _tails(*files: Any) -> str:
    parts = []
    for handle in files:
        handle.seek(0)
        parts.append(f"--- {handle.name} ---\n{handle.read()[-6000:].decode(errors='replace')}")
        handle.close()
    return "\n".join(parts)


# ------------------------------------------------------------------------ state progress


def bookmarks(state: dict[str, Any] | None) -> dict[tuple[str, str], datetime]:
    """(stream, partition context) -> the bookmark (replication key value) a state holds."""
    out: dict[tuple[str, str], datetime] = {}
    for stream, entry in ((state or {}).get("bookmarks") or {}).items():
        for partition in [entry, *entry.get("partitions", [])]:
            value = partition.get("replication_key_value")
            if value is not None:
                context = json.dumps(partition.get("context", {}), sort_keys=True)
                out[(stream, context)] = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return out


def assert_no_bookmark_went_back(before: dict[str, Any] | None, after: dict[str, Any], why: str) -> None:
    old, new = bookmarks(before), bookmarks(after)
    lost = sorted(set(old) - set(new))
    assert not lost, f"{why}: bookmarks dropped from the state: {lost[:5]}"
    back = [(key, old[key], new[key]) for key in old if new[key] < old[key]]
    assert not back, f"{why}: bookmarks went back: {back[:5]}"


def assert_resumed(run: Run, why: str) -> None:
    """The run started every partition of the state it was given at that state's bookmark
    (the SDK logs where each starts), not at start_date."""
    log = run.tap_log.read_text(errors="replace")
    for stream, entry in ((run.given or {}).get("bookmarks") or {}).items():
        for partition in entry.get("partitions", []):
            line = f"Starting incremental sync of '{stream}' with bookmark value: "
            value = partition.get("replication_key_value")
            assert value is None or line + str(value) in log, (
                f"{why}: {stream} {partition.get('context')} did not start from its bookmark {value}"
            )


# ---------------------------------------------------------------------------- the setup


def tap_config(sim: Any, start_date: datetime) -> dict[str, Any]:
    return {
        "start_date": start_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "max_retries": RETRIES,
        "retry_wait_seconds": 0.05,
        "request_timeout_seconds": 1,
        "window_hours": 6,  # more windows: more checkpoints for a kill to keep
        **{
            vendor.setting: [
                vendor.e2e_tap_account(a, sim.api_url(vendor.name, a["name"]), None)
                for a in sim_accounts(vendor)
            ]
            for vendor in TESTED  # every vendor on one plain-HTTP simulator
        },
    }


@pytest.fixture
def chaos(meltano: Any, postgres: Any, start_simulator: Any, tmp_path: Path) -> Iterator[Chaos]:
    meltano.install("target-postgres")
    target = meltano.root / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    sim = start_simulator(
        anchor=anchor,
        config={**{v.name: sim_accounts(v) for v in TESTED}, "anchor": anchor.isoformat()},
    )
    tap_file, target_file = tmp_path / "tap.json", tmp_path / "target.json"
    tap_file.write_text(json.dumps(tap_config(sim, anchor - timedelta(days=DAYS + 1))))
    target_file.write_text(json.dumps({
        "host": postgres.host, "port": postgres.port, "user": postgres.user,
        "password": postgres.password, "database": postgres.dbname,
        "default_target_schema": new_schema("chaos"),
    }))  # fmt: skip
    yield Chaos(sim, venv_executable("tap-callcdr"), str(target), tmp_path, tap_file, target_file)


def add_late_calls(sim: Any, minutes: tuple[int, int]) -> None:
    """New calls that started between `minutes` ago (most, least)."""
    now = datetime.now(UTC)
    for vendor in TESTED:
        for account in account_names(vendor):
            sim.add_calls(account, 3, now - timedelta(minutes=minutes[0]),
                          now - timedelta(minutes=minutes[1]), vendor=vendor.name)  # fmt: skip


def landed(chaos: Chaos, schema: str) -> dict[str, Rows]:
    return {s: fetch_rows(_dsn(chaos), schema, s) for s in STREAMS}


def _dsn(chaos: Chaos) -> str:
    config = json.loads(chaos.target_config.read_text())
    return f"postgresql://{config['user']}@{config['host']}:{config['port']}/{config['database']}"


def assert_same_rows(stream: str, got: Rows, clean: Rows) -> None:
    """Every column of every row (loader bookkeeping aside) as a fault-free run landed it."""
    key = STREAMS[stream][1].key
    ours = {k: without_sdc(v[0]) for k, v in by_key(got, key).items()}
    theirs = {k: without_sdc(v[0]) for k, v in by_key(clean, key).items()}
    assert ours.keys() == theirs.keys(), f"{stream}: keys differ from a fault-free run"
    differ = [
        (k, c, ours[k][c], theirs[k][c])
        for k in theirs
        for c in theirs[k]
        if _normal(ours[k].get(c)) != _normal(theirs[k][c])
    ]
    assert not differ, f"{stream}: {len(differ)} values differ from a fault-free run: {differ[:5]}"


def _normal(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


# ------------------------------------------------------------------------------ the test


def test_chaos_every_vendor_faults_kills_and_late_calls_land_exactly(chaos: Chaos) -> None:
    rng = random.Random(SEED)
    said = f"(chaos seed {SEED}, rate {RATE}, max_retries {RETRIES}: CALLCDR_CHAOS_SEED={SEED})"
    print(said)
    chaos.set_fault_rate(RATE, SEED)
    state: dict[str, Any] | None = None
    for kill in range(KILLS):
        # a run from start_date makes ~200 vendor requests: three kills land in one backfill
        run = chaos.run(state, kill_at_requests=rng.randint(10, 60))
        if not run.killed:  # it ended before its kill point: the final run checks the rest
            state = run.state or state
            break
        where = f"killed run {kill + 1} {said}"
        assert run.target_code == 0, f"{where}: target-postgres exited {run.target_code}\n{run.log}"
        if run.state is None:  # fine only if the tap was killed before its first STATE
            got = run.states_received()
            assert got == 0, f"{where}: the target read {got} states, emitted none\n{run.log}"
            continue
        assert_no_bookmark_went_back(state, run.state, where)
        state = run.state
    killed = sum(r.killed for r in chaos.runs)
    assert killed >= min(KILLS, 2), f"{killed} runs killed, not several {said}"

    final = chaos.run(state)
    assert (final.tap_code, final.target_code) == (0, 0), f"final run {said}\n{final.log}"
    assert final.state is not None
    assert_no_bookmark_went_back(state, final.state, f"final run {said}")
    assert_resumed(final, f"final run {said}")
    add_late_calls(chaos.sim, (90, 30))  # under the bookmarks now, inside the look-back
    again = chaos.run(final.state)
    assert (again.tap_code, again.target_code) == (0, 0), f"run after late calls {said}\n{again.log}"
    mix = chaos.fault_mix()
    assert mix and sum(mix["fired"].values()) > 0, f"no fault fired {said}: {mix}"

    schema = json.loads(chaos.target_config.read_text())["default_target_schema"]
    rows = landed(chaos, schema)
    for stream in STREAMS:
        expected = truth({v.name: chaos.sim for v in TESTED}, stream)
        landed_exactly(stream, rows[stream], expected, column_types(_dsn(chaos), schema, stream))

    # Every column, not only the ones checked against the truth: a fault-free run from scratch
    chaos.set_fault_rate(0, SEED)
    clean_schema = new_schema("clean")
    config = json.loads(chaos.target_config.read_text())
    chaos.target_config.write_text(json.dumps({**config, "default_target_schema": clean_schema}))
    clean = chaos.run(None)
    assert (clean.tap_code, clean.target_code) == (0, 0), f"fault-free run\n{clean.log}"
    for stream, rows_clean in landed(chaos, clean_schema).items():
        assert_same_rows(stream, rows[stream], rows_clean)
    print(f"{said}: {len(chaos.runs)} runs (killed: {[r.killed for r in chaos.runs]}), "
          f"{[round(r.seconds, 1) for r in chaos.runs]} s, {[r.requests for r in chaos.runs]} "
          f"requests; faults {mix['fired']} over {mix['seen']} requests")  # fmt: skip
