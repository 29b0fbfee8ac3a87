"""Yeastar's row workers (yeastar/worker.py, fastpath/rowworkers.py): several PBXs' CDR files
converted in worker processes emit exactly what the tap emits converting them itself, and any
file a worker declines, or any worker that dies, is read by the tap itself."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import itnio_helpers
import pytest
import yeastar_helpers
from callcdr_simulator import Simulator, simulator_tls
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.yeastar import yeastar_demo_accounts
from harness import run_cli
from test_fast_path import in_process_lines, normalized
from yeastar_helpers import start, tap_config

from tap_callcdr.core import stream as core_stream
from tap_callcdr.core.errors import ConfigError
from tap_callcdr.fastpath import rowworkers
from tap_callcdr.fastpath.rowworkers import RowWorkers
from tap_callcdr.fastpath.worker import Fallback
from tap_callcdr.tap import VENDORS, TapCallCDR
from tap_callcdr.vendors.yeastar import worker
from tap_callcdr.vendors.yeastar.columns import CSV_COLUMNS

NAMES = ["hq", "branch", "east", "west"]
SAFE = {"parallel_accounts": 1, "row_workers": 0}  # no workers
PARALLEL = {"parallel_accounts": 4, "row_workers": 4}


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


def test_worker_lines_are_the_taps_own(sims, spied, monkeypatch: pytest.MonkeyPatch) -> None:
    sim, ca_file = sims
    config = tap_config(sim, ca_file=ca_file, days=4)
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
    assert len(spied) == 4, "row_workers: 0 must not start workers"
    assert directories and not any(path.exists() for path in directories), "workers' files left behind"


def test_a_dead_worker_costs_nothing_but_time(sims, spied, monkeypatch, caplog) -> None:
    sim, ca_file = sims
    config = tap_config(sim, ca_file=ca_file, days=4)
    safe = in_process_lines({**config, **SAFE})
    monkeypatch.setattr(rowworkers, "COMMAND", (sys.executable, "-c", "pass"))  # exits at once
    assert in_process_lines({**config, **PARALLEL}) == safe
    assert len(spied) == 4 and all(result is None for _, result in spied)
    assert caplog.text.count("A row worker failed") == 4  # each dies once, then is not asked again


def test_the_console_script_uses_workers_and_emits_the_same(sims) -> None:
    """The real thing: `python -m tap_callcdr.vendors.yeastar.worker` processes, from the CLI."""
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


def test_one_pbxs_file_is_split_between_workers(sims, spied, monkeypatch) -> None:
    """One PBX: its file is cut at newlines into one part per worker, read in order."""
    sim, ca_file = sims
    config = tap_config(sim, "hq", ca_file=ca_file, days=4)
    monkeypatch.setattr(rowworkers, "PART_MIN_BYTES", 64 * 1024)
    jobs: list[dict[str, t.Any]] = []
    convert = RowWorkers.convert
    monkeypatch.setattr(RowWorkers, "convert", lambda self, job: jobs.append(job) or convert(self, job))
    parts = in_process_lines({**config, **PARALLEL, "row_workers": 3})
    jobs.sort(key=lambda job: job["start"])  # the parts run at the same time
    assert len(jobs) == 3 and jobs[0]["start"] == 0 and jobs[-1]["stop"] is None
    assert [job["stop"] for job in jobs[:-1]] == [job["start"] for job in jobs[1:]]
    assert in_process_lines({**config, **SAFE}) == parts


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, lineterminator="\r\n").writerows([list(CSV_COLUMNS), *rows])


def job_for(path: Path, tmp: Path, start: int, stop: int | None, n: int) -> dict[str, t.Any]:
    return {
        "task": "", "input": str(path), "out": str(tmp / f"out{n}.jsonl"), "encoding": "utf-8",
        "zone": "Asia/Shanghai",
        "account": "hq", "check": False, "keys": [], "usable": True, "start": start, "stop": stop,
    }  # fmt: skip


def test_a_split_inside_a_quoted_line_break_is_refused(tmp_path: Path) -> None:
    """The part before a split must end on a record's end as the csv module reads the file."""
    row = ["1.1", "2025-10-16 17:31:13", "1001", "1002", "5", "3", "", "", "ANSWERED", "Inbound"]
    row += ["", "", "", "sn"]
    broken = [*row[:10], "line one\nline two", *row[11:]]  # pincode holds a line break
    path = tmp_path / "cdr.csv"
    write_csv(path, [row, broken, row])
    data = path.read_bytes()
    inside = data.index(b"line one\n") + len(b"line one\n")  # just after the quoted line break
    after = data.index(b"\r\n", inside) + 2  # the end of that record
    with pytest.raises(Fallback, match="runs across the split"):
        worker.convert_file(job_for(path, tmp_path, 0, inside, 0))
    whole = worker.convert_file(job_for(path, tmp_path, 0, None, 1))
    first = worker.convert_file(job_for(path, tmp_path, 0, after, 2))
    second = worker.convert_file(job_for(path, tmp_path, after, None, 3))
    assert (whole, first, second) == (3, 2, 1)
    joined = (tmp_path / "out2.jsonl").read_bytes() + (tmp_path / "out3.jsonl").read_bytes()
    assert joined == (tmp_path / "out1.jsonl").read_bytes()
    records = [json.loads(line) for line in joined.splitlines()]
    assert records[1]["pincode"] == "line one\nline two"


def test_a_part_is_read_in_chunks_cut_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of any size (cut mid-line, inside quotes, between CR and LF) read the same records."""
    row = ["1.1", "2025-10-16 17:31:13", "1001", "1002", "5", "3", "", "", "ANSWERED", "Inbound"]
    row += ["", "", "", "sn"]
    quoted = [*row[:10], "line one\nline two\r\nthree", *row[11:]]
    rows = [row, quoted, [*row[:6], "中国电信, 主线", *row[7:]]]
    path = tmp_path / "cdr.csv"
    write_csv(path, rows)
    after = path.stat().st_size  # a split after the first three records (a split point is a record's end)
    write_csv(path, rows * 3)
    whole = worker.convert_file(job_for(path, tmp_path, 0, None, 0))
    for n, size in enumerate((1, 7, 64), start=1):
        monkeypatch.setattr(worker, "CHUNK_BYTES", size)
        first = worker.convert_file(job_for(path, tmp_path, 0, after, 2 * n))
        second = worker.convert_file(job_for(path, tmp_path, after, None, 2 * n + 1))
        assert (whole, first + second) == (9, 9)
        out = [(tmp_path / f"out{i}.jsonl").read_bytes() for i in (0, 2 * n, 2 * n + 1)]
        assert out[1] + out[2] == out[0]


def test_a_file_in_another_encoding_is_read_by_the_tap_itself() -> None:
    assert rowworkers.splittable("utf-8") and rowworkers.splittable("GBK")
    assert not rowworkers.splittable("utf-16") and not rowworkers.splittable("no-such-codec")


# -- ITNIO: each page converted in a worker (itnio/worker.py) -----------------------------------


def test_itnio_pages_converted_by_workers_are_the_taps_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record and STATE as the tap makes them itself, Decimals and the window's end
    included (a page with a value that does not convert is left to the tap: the ITNIO error
    tests run with workers)."""
    accounts = itnio_demo_accounts(["intl", "latam"], calls=400, group_calls=150, days=3)
    sim = Simulator(accounts, anchor=yeastar_helpers.ANCHOR).start()
    runs: list[str] = []
    run = RowWorkers.run
    spy = lambda self, job, payload=b"": runs.append(job["task"]) or run(self, job, payload)  # noqa: E731
    monkeypatch.setattr(RowWorkers, "run", spy)
    try:
        config = itnio_helpers.tap_config(sim, days=4, row_workers=2)
        by_workers = in_process_lines(config)
        assert runs and set(runs) == {"tap_callcdr.vendors.itnio.worker:convert_page"}
        assert in_process_lines({**config, "row_workers": 0}) == by_workers
    finally:
        sim.stop()


def test_a_worker_that_hangs_is_given_up(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(rowworkers, "COMMAND", (sys.executable, "-c", "import time; time.sleep(60)"))
    monkeypatch.setattr(rowworkers, "ANSWER_SECONDS", 0.5)
    workers = RowWorkers(1)
    try:
        assert workers.run({"task": "tap_callcdr.vendors.yeastar.worker:convert_file"}) is None
        assert workers.run({"task": "tap_callcdr.vendors.yeastar.worker:convert_file"}) is None  # none left
    finally:
        workers.close()
    assert caplog.text.count("gave no answer in 0 s") == 1


def test_row_workers_default_to_the_core_count_and_none_on_one_core(sims, monkeypatch) -> None:
    sim, ca_file = sims
    stream = TapCallCDR(config=tap_config(sim, ca_file=ca_file)).streams["yeastar_cdr"]
    for cores, limit in [(8, 8), (2, 2), (1, 0), (None, 0)]:
        monkeypatch.setattr(core_stream.os, "cpu_count", lambda cores=cores: cores)
        assert stream.row_worker_limit() == limit
    with pytest.raises(ConfigError, match="row_workers"):
        TapCallCDR(config=tap_config(sim, ca_file=ca_file, row_workers=-1))


# -- worker modules stay light ---------------------------------------------------------------

PACKAGE = Path(core_stream.__file__).parents[1]
WORKER_MODULES = sorted(
    {"tap_callcdr.fastpath.worker"}
    | {f"tap_callcdr.vendors.{path.parent.name}.worker" for path in PACKAGE.glob("vendors/*/worker.py")}
    | {cls.row_task.partition(":")[0] for vendor in VENDORS for cls in vendor.streams if cls.row_task}
)


@pytest.mark.parametrize("module", WORKER_MODULES)
def test_a_worker_module_loads_neither_the_sdk_nor_requests(module: str) -> None:
    """A worker starts in well under 0.1 s because its modules import no SDK and no requests
    (fastpath/worker.py and every task module); a fresh interpreter shows what one loads."""
    heavy = "sorted(m for m in sys.modules if m.partition('.')[0] in ('singer_sdk', 'requests'))"
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps({heavy}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert not loaded, f"{module} loads {len(loaded)} modules of the SDK or requests, e.g. {loaded[:3]}"
