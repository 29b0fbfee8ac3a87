"""Yeastar's row workers (yeastar/worker.py, offload.py): several PBXs' CDR files converted in
worker processes emit exactly what the tap emits converting them itself, and any file a
worker declines, or any worker that dies, is read by the tap itself."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import run_cli
from test_fast_path import normalized
from yeastar_helpers import start, tap_config

from tap_callcdr.simulator import Simulator, yeastar_demo_accounts
from tap_callcdr.simulator.yeastar import simulator_tls
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.yeastar import offload
from tap_callcdr.yeastar import stream as yeastar_stream
from tap_callcdr.yeastar.offload import RowWorkers

NAMES = ["hq", "branch", "east", "west"]
SAFE = {"parallel_accounts": 1}  # one account at a time: no workers
PARALLEL = {"parallel_accounts": 4}


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Path]]:
    tls = simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")
    accounts = yeastar_demo_accounts(NAMES, calls=2500, days=3)
    accounts[2].extra_columns = ["备注"]  # east: newer firmware, a column the workers leave to the tap
    sim = start(tls, accounts)
    yield sim, tls.ca_file
    sim.stop()


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    """(account, records or None for "read it yourself") for every file handed to a worker."""
    seen: list[tuple[str, int | None]] = []
    convert = RowWorkers.convert

    def spy(self: RowWorkers, job: dict[str, t.Any]) -> int | None:
        result = convert(self, job)
        seen.append((job["account"], result))
        return result

    monkeypatch.setattr(RowWorkers, "convert", spy)
    return seen


def in_process_lines(config: dict[str, t.Any]) -> list[bytes]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallCDR(config=config)
        tap.sync_all()
        tap.message_writer.flush()
    return normalized(out.getvalue().encode().splitlines())


def test_worker_lines_are_the_taps_own(sims, spied, monkeypatch: pytest.MonkeyPatch) -> None:
    sim, ca_file = sims
    config = tap_config(sim, ca_file=ca_file, days=4)
    monkeypatch.setattr(yeastar_stream.os, "cpu_count", lambda: 4)  # a 1-core machine runs none
    directories: list[Path] = []
    init = RowWorkers.__init__
    monkeypatch.setattr(
        RowWorkers, "__init__", lambda self, n: init(self, n) or directories.append(self.directory)
    )
    parallel = in_process_lines({**config, **PARALLEL})
    rows: dict[str, int | None] = {name: len(sim.yeastar.truth(name)) for name in NAMES}
    rows["east"] = None  # declined: the tap reads it
    assert sorted(spied) == sorted(rows.items())
    assert in_process_lines({**config, **SAFE}) == parallel
    assert len(spied) == 4, "one account at a time must not start workers"
    assert directories and not any(path.exists() for path in directories), "workers' files left behind"


def test_a_dead_worker_costs_nothing_but_time(sims, spied, monkeypatch, caplog) -> None:
    sim, ca_file = sims
    config = tap_config(sim, ca_file=ca_file, days=4)
    monkeypatch.setattr(yeastar_stream.os, "cpu_count", lambda: 4)
    safe = in_process_lines({**config, **SAFE})
    monkeypatch.setattr(offload, "COMMAND", (sys.executable, "-c", "pass"))  # exits at once
    assert in_process_lines({**config, **PARALLEL}) == safe
    assert len(spied) == 4 and all(result is None for _, result in spied)
    assert caplog.text.count("A row worker failed") == 4  # each dies once, then is not asked again


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the tap starts no workers")
def test_the_console_script_uses_workers_and_emits_the_same(sims) -> None:
    """The real thing: `python -m tap_callcdr.yeastar.worker` processes, from the CLI."""
    sim, ca_file = sims
    config = tap_config(sim, ca_file=ca_file, days=4)
    parallel = run_cli({**config, **PARALLEL}, raw=True, env={"LOGLEVEL": "DEBUG"})
    safe = run_cli({**config, **SAFE}, raw=True)
    assert parallel.returncode == 0 and safe.returncode == 0, parallel.stderr + safe.stderr
    assert normalized(parallel.stdout_bytes.splitlines()) == normalized(safe.stdout_bytes.splitlines())
    assert parallel.stderr.count("Row worker declined") == 1  # east's extra column
    assert len([m for m in parallel.messages if m["type"] == "RECORD"]) == sum(
        len(sim.yeastar.truth(name)) for name in NAMES
    )
