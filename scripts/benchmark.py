#!/usr/bin/env python
"""Speed, memory and request counts of tap-callcdr against the local simulator (a script, not
a test: speed is measured here, never by timed tests). Prints one table, one row per stream.

    .venv/bin/python scripts/benchmark.py --also trust_record_types=true   # full: ~16 min, 2 cores
    .venv/bin/python scripts/benchmark.py --quick                          # smoke: ~1.5 min
    .venv/bin/python scripts/benchmark.py --streams generic_cdr,yeastar_cdr --calls 50000
    .venv/bin/python scripts/benchmark.py --calls-stream --rss-sizes 0 --latency 0 --repeat 3  # docs/calls.md
    .venv/bin/python scripts/benchmark.py --streams generic_cdr,yeastar_cdr --rss-sizes 200000 \
        --latency 0 --pipeline --batch --repeat 2                           # docs/pipeline.md

(The full run spends ~10 of its 16 min on the 1M runs, half of that generating the data.)

Needs the dev extras (trustme for Yeastar's HTTPS) and msgspec (a runtime dependency now).

Every figure comes from one run of this command. Each measurement starts a fresh simulator
(the `callcdr-simulator` console script) in its own process, serving one vendor, so it never
shares the tap's GIL; 1 account, --days of calls.
The tap is the real `tap-callcdr` console script with RECORD output to /dev/null; peak RSS is
that child's own (os.wait4). Columns:

- records/s at --calls (200k): the tap, and the floor over the same data right after it: the
  bare protocol (scripts/bench_floor.py: the same login/signing, windows, pages, zlib, CSV
  download as the tap, msgspec parse + RECORD lines, nothing else); ratio = tap / floor.
- peak RSS of the tap at --rss-sizes (10k and 1M records; one stream at a time) and at --calls;
  under the table, that of the tap with its row worker processes (sampled from /proc).
- requests: what the simulator's request log (GET /_control/requests) saw from the tap, the
  tap's own METRIC http_request_count, the floor's, and the least the vendor's limits allow
  over the same range (generic: login + ceil(n/1000); tencent: ceil(n/cap), no paging;
  itnio: ceil(n/100), 31 days a query; yeastar: login + get_random + download, one window).
- wall time with --latency (100 ms) added to every request (the simulator's `slow` fault),
  --latency-calls per account, for 1 and for 4 accounts.

With --pipeline (off by default; needs `meltano install loader target-postgres`, or
--target-postgres pointing at that package's executable), per stream, in the same run: the
tap's output saved once to a file; target-postgres alone on it, with its default settings and
with meltano.yml's (tuned); `tap | target-postgres` (tuned); piped / alone; the tap's and the
floor's CPU seconds a record. The database is a throwaway PostgreSQL started as tests/pg.py
starts it, a new schema for every load; what each load landed is compared with the default
loader's (rows and a digest of their text), a difference printed under the table. --batch
adds the tap with `batch_config` (jsonl, and parquet where pyarrow is installed) against
RECORD messages: loader alone, piped, peak RSS and CPU of each process, and tuned + use_copy.
docs/pipeline.md has the figures and what they mean.

Windows are the tap's default 24 h, except Yeastar (one window: one CSV download of all rows,
as issue 3 asks). Tencent runs with the tap's default too: the tap sizes its requests from the
call density it sees (tap_callcdr/vendors/tencent/paging.py), window_hours only bounds each request;
the table shows how many answers were cut. Tencent's floor keeps fixed windows: the largest
whose expected busiest-hour load stays well under the cap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STREAMS = ("generic_cdr", "yeastar_cdr", "tencent_cdr", "itnio_sip_cdr", "itnio_group_cdr")
VENDOR = {
    "generic_cdr": "generic",
    "yeastar_cdr": "yeastar",
    "tencent_cdr": "tencent",
    "itnio_sip_cdr": "itnio",
    "itnio_group_cdr": "itnio",
}
PAGE = {"generic": 1000, "itnio": 100}
ITNIO_MAX_RANGE = dt.timedelta(days=31)
METRIC = r'"metric":\s*"{}",\s*"value":\s*(\d+)'
WARNINGS: list[str] = []  # things seen along the way, printed under the table


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """One measured child process."""

    records: int
    seconds: float
    rss_mb: float
    cpu: float = 0.0  # user + system seconds of the child
    seen: int = 0  # requests in the simulator's log
    metric: int | None = None  # the tap's METRIC http_request_count
    splits: int = 0  # Tencent answers cut (offset != 0)
    services: dict[str, int] = field(default_factory=dict)
    tree_mb: float = 0.0  # peak RSS of the child with its own children (row workers), sampled

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


LOADS: list[float] = []  # 1-minute load average after each measured child


TREE_PEAKS: list[float] = []  # per measured child: the most RSS it and its children held at once (MB)


def tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants now (kB), from /proc; 0 once it is gone."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def sample_tree(pid: int, done: threading.Event, peak: list[int]) -> None:
    """Keeps peak[0] at the most the process tree held, sampled every 50 ms (row workers
    are processes of their own: the child's own peak RSS leaves them out)."""
    while not done.wait(0.05):
        peak[0] = max(peak[0], tree_rss_kb(pid))


def run_measured(
    args: list[str], stdin: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB) and CPU seconds of that child (its CPU counts the child
    processes it waited for: the row workers), and the lines of its stderr that `wanted`
    keeps, then its last line; stdout to /dev/null. The peak RSS of the child with its
    children, sampled, goes to TREE_PEAKS.

    Memory: a child's peak RSS counts this script's size at the fork (Linux keeps the
    high-water mark across exec), so nothing big is ever read into this process.
    """
    with tempfile.TemporaryFile("w+") as err, open(stdin or os.devnull, "rb") as source:
        began = time.perf_counter()
        proc = subprocess.Popen(args, stdin=source, stdout=subprocess.DEVNULL, stderr=err, env=env)
        done, peak = threading.Event(), [0]
        sampler = threading.Thread(target=sample_tree, args=(proc.pid, done, peak), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        TREE_PEAKS.append(max(peak[0], usage.ru_maxrss) / 1024)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        kept, last = [], ""
        for line in err:
            if wanted(line):
                kept.append(line)
            last = line
        if not wanted(last):
            kept.append(last)  # the floor's figures
        err.seek(max(0, err.tell() - 3000))
        tail = err.read()
    LOADS.append(os.getloadavg()[0])
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{tail}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, "".join(kept)


def wanted(line: str) -> bool:
    """The stderr lines the figures come from: the per-stream METRIC totals and cut answers."""
    return ('"record_count"' in line or '"http_request_count"' in line) or "Tencent cut its answer" in line


# -- the simulator -----------------------------------------------------------------------------


class Sim:
    """One simulator process serving `accounts` accounts of one stream's vendor."""

    def __init__(
        self, stream: str, calls: int, accounts: int, args: argparse.Namespace, workdir: Path,
        latency: float = 0.0,
    ) -> None:  # fmt: skip
        self.stream, self.vendor = stream, VENDOR[stream]
        self.calls, self.days, self.cap = calls, args.days, args.tencent_cap
        self.names = [f"a{i}" for i in range(accounts)]
        self.workdir = workdir
        self.anchor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        self.ca_file = workdir / "ca.pem" if self.vendor == "yeastar" else None
        self.latency = latency
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def sim_accounts(self) -> dict[str, list[dict[str, Any]]]:
        n, days = self.calls, self.days
        made: dict[str, list[dict[str, Any]]] = {v: [] for v in ("generic", "tencent", "itnio", "yeastar")}
        for name in self.names:
            made[self.vendor].append({
                "generic": {"name": name, "appid": f"{name}-appid",
                            "accesskey": f"{name}-accesskey-S3cr3t", "calls": n, "days": days},
                "tencent": {"name": name, "id": f"{name}-id", "app_id": f"{name}-appId-S3cr3t",
                            "calls": n, "days": days, "cap": self.cap},
                "itnio": {"name": name, "api_key": f"{name}-apikey", "api_secret": f"{name}-S3cr3t",
                          "calls": n if self.stream == "itnio_sip_cdr" else 0,
                          "group_calls": n if self.stream == "itnio_group_cdr" else 0, "days": days},
                "yeastar": {"name": name, "password": f"{name}-S3cr3t", "calls": n, "days": days},
            }[self.vendor])  # fmt: skip
        return made

    def __enter__(self) -> Sim:
        config = self.workdir / "sim.json"
        config.write_text(json.dumps({**self.sim_accounts(), "anchor": self.anchor.isoformat()}))
        args = [str(BIN / "callcdr-simulator"), "--port", "0", "--config", str(config)]
        if self.ca_file:
            args += ["--https", "--ca-file", str(self.ca_file)]
        if self.latency:
            args += ["--fault", f"slow:seconds={self.latency},times=-1,vendor=*,applies_to=any"]
        self.errors = (self.workdir / "sim.err").open("w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.__exit__()
            raise SystemExit(f"simulator did not start: {line!r} {self._stderr()}")
        self.url = match.group(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        for line in self._stderr().splitlines():
            if "Traceback" in line:
                WARNINGS.append(f"simulator for {self.stream}: {line.strip()}")
        self.errors.close()

    def _stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-4000:]

    def control(self, method: str, path: str) -> Any:
        verify = str(self.ca_file) if self.ca_file else True
        response = requests.request(method, f"{self.url}/_control/{path}", verify=verify, timeout=120)
        response.raise_for_status()
        return response.json()

    def take_requests(self) -> dict[str, int]:
        """Requests by service since the last call (then the log is cleared)."""
        seen = self.control("GET", "requests/counts")["by_service"]
        self.control("DELETE", "requests")
        return seen

    # -- what the tap and the floor are given --------------------------------------------------

    @property
    def start(self) -> dt.datetime:
        return self.anchor - dt.timedelta(days=self.days)

    def account(self, name: str) -> dict[str, Any]:
        url = self.url
        return {
            "generic": {"name": name, "api_url": f"{url}/generic/", "appid": f"{name}-appid",
                        "accesskey": f"{name}-accesskey-S3cr3t"},
            "tencent": {"name": name, "api_url": f"{url}/tencent", "id": f"{name}-id",
                        "app_id": f"{name}-appId-S3cr3t"},
            "itnio": {"name": name, "api_url": f"{url}/itnio/voice/", "api_key": f"{name}-apikey",
                      "api_secret": f"{name}-S3cr3t"},
            "yeastar": {"name": name, "api_url": f"{url}/yeastar/{name}", "username": "api",
                        "password": f"{name}-S3cr3t", "ca_bundle": str(self.ca_file)},
        }[self.vendor]  # fmt: skip

    def tap_config(self, accounts: int, window_hours: int, **extra: Any) -> dict[str, Any]:
        return {
            "start_date": self.start.isoformat(),
            "settle_lag_minutes": 0,
            "window_hours": window_hours,
            f"{self.vendor}_accounts": [self.account(n) for n in self.names[:accounts]],
            **extra,
        }


@functools.cache
def tencent_default_window_hours() -> int:
    """Asked of a child: importing the tap here would make this script as big as the tap, and
    a child's peak RSS counts this script's size at the fork."""
    code = (
        "from tap_callcdr.vendors.tencent.stream import TencentCDRStream as S;"
        " print(S.default_window_hours)"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)


def window_hours(stream: str, calls: int, args: argparse.Namespace) -> int:
    vendor = VENDOR[stream]
    if vendor == "yeastar":
        return 24 * (args.days + 1)  # one window: one CSV download of everything
    if vendor == "tencent" and args.tencent_window_hours:
        return int(args.tencent_window_hours)
    if vendor == "tencent":
        return tencent_default_window_hours()  # the tap's: it sizes requests inside it
    return 24


def floor_window_hours(stream: str, calls: int, args: argparse.Namespace) -> int:
    """The floor's fixed windows: the tap's, except Tencent (the floor does not adapt)."""
    if VENDOR[stream] != "tencent":
        return window_hours(stream, calls, args)
    if args.tencent_window_hours:
        return int(args.tencent_window_hours)
    # The simulator puts ~90% of calls in 08-21 local (13 h): size for the busiest hours,
    # keeping the expected count 3 sigma under the cap.
    per_day = calls / args.days
    busy, quiet = 0.9 * per_day / 13, 0.1 * per_day / 11
    best = 1
    for hours in (1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 168, 336, 720):
        expected = busy * min(hours, 13) + quiet * max(0, min(hours, 24) - 13)
        expected += per_day * max(0, hours - 24) / 24
        if expected + 3 * math.sqrt(expected) > args.tencent_cap:
            break
        best = hours
    return best


def windows_between(start: dt.datetime, end: dt.datetime, hours: int, stream: str) -> int:
    size = dt.timedelta(hours=hours)
    if VENDOR[stream] == "itnio":
        size = min(size, ITNIO_MAX_RANGE)
    return max(1, math.ceil((end - start) / size))


def least_requests(stream: str, records: int, span: dt.timedelta, cap: int) -> int:
    vendor = VENDOR[stream]
    if vendor == "generic":
        return 1 + max(1, math.ceil(records / PAGE["generic"]))
    if vendor == "tencent":
        return max(1, math.ceil(records / cap))
    if vendor == "itnio":
        return max(math.ceil(span / ITNIO_MAX_RANGE), math.ceil(records / PAGE["itnio"]))
    return 3  # yeastar: login, get_random, download


# -- the tap and the floor ---------------------------------------------------------------------

_catalogs: dict[str, str] = {}


def catalog_for(stream: str, config_path: Path, workdir: Path, *, calls: bool = False) -> list[str]:
    """ITNIO has two streams on one config: select only the measured one; with `calls`, the
    unified `calls` stream too (--calls-stream)."""
    if VENDOR[stream] != "itnio" and not calls:
        return []
    selected = {stream, "calls"} if calls else {stream}
    key = ",".join(sorted(selected))
    if key not in _catalogs:
        out = subprocess.run(
            [str(BIN / "tap-callcdr"), "--config", str(config_path), "--discover"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        catalog = json.loads(out.stdout)
        for entry in catalog["streams"]:
            for meta in entry["metadata"]:
                if meta["breadcrumb"] == []:
                    meta["metadata"]["selected"] = entry["tap_stream_id"] in selected
        _catalogs[key] = json.dumps(catalog)
    path = workdir / f"catalog-{key}.json"
    path.write_text(_catalogs[key])
    return ["--catalog", str(path)]


def run_tap(sim: Sim, config: dict[str, Any], workdir: Path, *, calls: bool = False) -> Run:
    """The tap on the stream (and `calls` with it); records: the stream's own."""
    path = workdir / "tap.json"
    path.write_text(json.dumps(config))
    catalog = catalog_for(sim.stream, path, workdir, calls=calls)
    args = [str(BIN / "tap-callcdr"), "--config", str(path), *catalog]
    sim.take_requests()
    seconds, rss, cpu, stderr = run_measured(args)
    services = sim.take_requests()
    records = sum(int(m) for m in re.findall(METRIC.format("record_count"), stderr))
    metric = sum(int(m) for m in re.findall(METRIC.format("http_request_count"), stderr))
    splits = stderr.count("Tencent cut its answer")
    return Run(records, seconds, rss, cpu, sum(services.values()), metric, splits, services, TREE_PEAKS[-1])


def idle_requests(sim: Sim, config: dict[str, Any], workdir: Path) -> dict[str, int]:
    """An incremental run with nothing new: run once for a state, then again from it; what
    the second run asked of the vendor, by service."""
    path = workdir / "tap.json"
    path.write_text(json.dumps(config))
    args = [str(BIN / "tap-callcdr"), "--config", str(path), *catalog_for(sim.stream, path, workdir)]
    # stdout to a file, not to this process: a child's peak RSS counts this process's size
    # at the fork (Linux keeps the high-water mark across exec), so this one stays small.
    with (workdir / "idle.out").open("w+b") as out:
        subprocess.run(args, stdout=out, stderr=subprocess.DEVNULL, check=True)
        state = b""
        out.seek(0)
        for line in out:
            if line.startswith(b'{"type":"STATE"'):
                state = line
    state_path = workdir / "state.json"
    state_path.write_text(json.dumps(json.loads(state)["value"]))
    sim.take_requests()
    subprocess.run([*args, "--state", str(state_path)], capture_output=True, check=True)
    return sim.take_requests()


def run_floor(sim: Sim, hours: int, workdir: Path) -> Run:
    spec = {
        "stream": sim.stream,
        "account": sim.account(sim.names[0]),
        "start": sim.start.isoformat(),
        "window_seconds": hours * 3600,
        "ca_file": str(sim.ca_file) if sim.ca_file else None,
    }
    if VENDOR[sim.stream] == "itnio":
        spec["window_seconds"] = min(hours * 3600, int(ITNIO_MAX_RANGE.total_seconds()))
    path = workdir / "floor.json"
    path.write_text(json.dumps(spec))
    sim.take_requests()
    seconds, rss, cpu, stderr = run_measured([sys.executable, str(HERE / "bench_floor.py"), str(path)])
    seen = sim.take_requests()
    records, _requests, splits = map(int, stderr.split()[-3:])
    return Run(records, seconds, rss, cpu, sum(seen.values()), None, splits)


# -- the measurements --------------------------------------------------------------------------


@dataclass
class Result:
    stream: str
    hours: int = 0
    main: Run | None = None
    floor: Run | None = None
    rss: dict[int, Run] = field(default_factory=dict)
    latency: dict[int, Run] = field(default_factory=dict)
    also: dict[str, Run] = field(default_factory=dict)  # --also setting -> tap run at --calls
    rss_least: dict[int, int] = field(default_factory=dict)
    idle: dict[str, int] = field(default_factory=dict)  # requests of a run with nothing new
    least: int = 0
    windows: int = 0
    pipeline: Pipeline | None = None  # --pipeline
    alone: Run | None = None  # --calls-stream: the stream alone, then with `calls` (best of --repeat)
    with_calls: Run | None = None
    calls_also: dict[str, Run] = field(default_factory=dict)  # with `calls` and an --also setting


def measure(stream: str, args: argparse.Namespace, workdir: Path, house: Warehouse | None) -> Result:
    result = Result(stream, hours=window_hours(stream, args.calls, args))
    log(f"{stream}: {args.calls} calls, window {result.hours} h: tap then floor")
    with Sim(stream, args.calls, 1, args, workdir) as sim:
        best: Run | None = None
        for _ in range(args.repeat):
            run = run_tap(sim, sim.tap_config(1, result.hours), workdir)
            best = run if best is None or run.seconds < best.seconds else best
            floor = run_floor(sim, floor_window_hours(stream, args.calls, args), workdir)
            if result.floor is None or floor.seconds < result.floor.seconds:
                result.floor = floor
        result.main = best
        if args.calls_stream:
            measure_calls(sim, result, args, workdir)
        for key, value in args.also:
            log(f"{stream}: tap again with {key}={json.dumps(value)}")
            result.also[key] = run_tap(sim, sim.tap_config(1, result.hours, **{key: value}), workdir)
        if house is not None:
            result.pipeline = measure_pipeline(sim, sim.tap_config(1, result.hours), args, workdir, house)
        now = dt.datetime.now(dt.UTC)
        result.windows = windows_between(sim.start, now, result.hours, stream)
        records = result.floor.records if result.floor else best.records if best else 0
        result.least = least_requests(stream, records, now - sim.start, args.tencent_cap)
    for size in args.rss_sizes:
        if size == args.calls:
            continue
        hours = window_hours(stream, size, args)
        log(f"{stream}: {size} calls, window {hours} h: tap peak RSS")
        with Sim(stream, size, 1, args, workdir) as sim:
            result.rss[size] = run_tap(sim, sim.tap_config(1, hours), workdir)
            if not result.idle:
                result.idle = idle_requests(sim, sim.tap_config(1, hours), workdir)
            now = dt.datetime.now(dt.UTC)
            result.rss_least[size] = least_requests(
                stream, result.rss[size].records, now - sim.start, args.tencent_cap
            )
    if args.latency > 0:
        hours = window_hours(stream, args.latency_calls, args)
        log(f"{stream}: {args.latency_calls} calls per account, {args.latency * 1000:.0f} ms a "
            f"request, {' and '.join(map(str, args.accounts))} accounts")  # fmt: skip
        with Sim(stream, args.latency_calls, max(args.accounts), args, workdir, args.latency) as sim:
            for count in args.accounts:
                result.latency[count] = run_tap(sim, sim.tap_config(count, hours), workdir)
    return result


def measure_calls(sim: Sim, result: Result, args: argparse.Namespace, workdir: Path) -> None:
    """--calls-stream: the stream alone and with `calls` selected next to it, alternately
    (--repeat pairs, the fastest of each), on the same data and requests."""
    log(f"{sim.stream}: tap alone and with calls, {args.repeat} pair(s)")
    config = sim.tap_config(1, result.hours)
    for _ in range(args.repeat):
        alone = run_tap(sim, config, workdir)
        both = run_tap(sim, config, workdir, calls=True)
        if result.alone is None or alone.seconds < result.alone.seconds:
            result.alone = alone
        if result.with_calls is None or both.seconds < result.with_calls.seconds:
            result.with_calls = both
        for key, value in args.also:
            run = run_tap(sim, sim.tap_config(1, result.hours, **{key: value}), workdir, calls=True)
            if key not in result.calls_also or run.seconds < result.calls_also[key].seconds:
                result.calls_also[key] = run


def report_calls(results: list[Result], args: argparse.Namespace) -> None:
    """The cost of also emitting `calls` (docs/calls.md): the stream's records/s alone and
    with `calls`, their ratio, and the same on CPU seconds a record."""
    print()
    print(f"{'-- --calls-stream: the stream alone and with calls ':-<86}")
    print(f"{'stream':<16}{'records':>9}{'alone r/s':>11}{'+calls r/s':>12}{'ratio':>7}"
          f"{'alone us/rec':>14}{'+calls us/rec':>15}{'cpu ratio':>10}  requests")  # fmt: skip
    for r in results:
        alone, both = r.alone, r.with_calls
        if alone is None or both is None or not alone.records:
            continue
        cpu1, cpu2 = alone.cpu / alone.records * 1e6, both.cpu / both.records * 1e6
        same = "same" if alone.services == both.services else f"{alone.seen} vs {both.seen}"
        print(f"{r.stream:<16}{alone.records:>9}{alone.rate:>11.0f}{both.rate:>12.0f}"
              f"{both.rate / alone.rate:>7.2f}{cpu1:>14.1f}{cpu2:>15.1f}"
              f"{cpu1 / cpu2:>10.2f}  {same}")  # fmt: skip
        for key, run in r.calls_also.items():
            cpu3 = run.cpu / max(run.records, 1) * 1e6
            label = f"  +calls, {key}={json.dumps(dict(args.also)[key])}"
            print(f"{label:<36}{run.rate:>12.0f}{run.rate / alone.rate:>7.2f}{'':>14}"
                  f"{cpu3:>15.1f}{cpu1 / max(cpu3, 1e-9):>10.2f}")  # fmt: skip
    print("ratio = records/s with calls / alone (wall clock; the records counted are the "
          "stream's own, each also emitted as a call); cpu ratio = the same on the tap's CPU "
          "seconds (its row workers' included); requests: the simulator's log, alone vs with calls")


# -- the pipeline (--pipeline, --batch): the tap into target-postgres -----------------------------

MELTANO_TARGET = HERE.parent / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
CONNECTION = ("host", "port", "user", "password", "database", "default_target_schema", "sqlalchemy_url")


@dataclass
class Load:
    """One load into a fresh schema of the benchmark's PostgreSQL: wall seconds, and per
    process its CPU seconds and peak RSS (MB); `rows` and `digest` are what landed."""

    seconds: float
    cpu: dict[str, float]
    rss: dict[str, float]
    rows: int = 0
    digest: str = ""


@dataclass
class Pipeline:
    """The --pipeline and --batch figures of one stream: each name -> its repeats."""

    records: int = 0
    loads: dict[str, list[Load]] = field(default_factory=dict)

    def best(self, name: str) -> Load:
        return min(self.loads[name], key=lambda load: load.seconds)

    def spread(self, name: str) -> str:
        times = [load.seconds for load in self.loads[name]]
        return f"{min(times):.1f}" if len(times) == 1 else f"{min(times):.1f}-{max(times):.1f}"


class Warehouse:
    """A throwaway PostgreSQL (tests/pg.py's) and the target-postgres that loads it."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.target = Path(args.target_postgres)
        if not os.access(self.target, os.X_OK):
            raise SystemExit(f"--target-postgres {self.target} is not an executable: run "
                             "`meltano install loader target-postgres` in the project first")  # fmt: skip
        self.tuned = tuned_settings()
        self.batch_formats = batch_formats(self.target) if args.batch else []
        self.workdir = workdir
        self.schemas = 0
        sys.path.insert(0, str(HERE.parent))
        from tests.pg import start_postgres  # the tests' throwaway server, reused

        self.server = start_postgres("bench")
        # as meltano.yml's `env:` does: the session in UTC (see the comment there)
        self.env = {**os.environ, "PGTZ": "UTC"}

    def close(self) -> None:
        self.server.stop()

    def config(self, settings: dict[str, Any]) -> tuple[Path, str]:
        """A target config file writing into a new schema, and that schema."""
        self.schemas += 1
        schema = f"b{self.schemas}"
        server = self.server
        config = {"host": server.host, "port": server.port, "user": server.user,
                  "password": server.password, "database": server.dbname,
                  "default_target_schema": schema, **settings}  # fmt: skip
        path = self.workdir / f"target-{schema}.json"
        path.write_text(json.dumps(config))
        return path, schema

    def landed(self, schema: str, stream: str) -> tuple[int, str]:
        """Rows in the stream's table and a digest of their content without the loader's
        own _sdc_ columns (the same rows, whichever way they were loaded)."""
        import psycopg

        with psycopg.connect(self.server.url) as con:
            columns = [row[0] for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s AND column_name NOT LIKE '\\_sdc%%' ORDER BY column_name",
                (schema, stream),
            )]  # fmt: skip
            listed = ", ".join(f'"{c}"' for c in columns)
            count, digest = con.execute(
                f'SELECT count(*), md5(string_agg(r::text, E\'\\n\' ORDER BY r::text)) '
                f'FROM (SELECT ROW({listed}) AS r FROM "{schema}"."{stream}") AS t'
            ).fetchone()  # fmt: skip
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        return int(count), str(digest)

    def load(self, saved: Path, stream: str, settings: dict[str, Any]) -> Load:
        """target-postgres alone on a saved tap output."""
        path, schema = self.config(settings)
        seconds, rss, cpu, _ = run_measured([str(self.target), "--config", str(path)], saved, self.env)
        return Load(seconds, {"target": cpu}, {"target": rss}, *self.landed(schema, stream))

    def piped(self, tap: list[str], stream: str, settings: dict[str, Any]) -> Load:
        """`tap | target-postgres`: wall time until the target is done, each one's CPU and
        peak RSS."""
        path, schema = self.config(settings)
        with tempfile.TemporaryFile("w+") as tap_err, tempfile.TemporaryFile("w+") as target_err:
            began = time.perf_counter()
            producer = subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=tap_err)
            target = [str(self.target), "--config", str(path)]
            consumer = subprocess.Popen(target, stdin=producer.stdout, stdout=subprocess.DEVNULL,
                                        stderr=target_err, env=self.env)  # fmt: skip
            assert producer.stdout is not None
            producer.stdout.close()  # the target holds the pipe's only read end
            cpu, rss, codes = {}, {}, {}
            for name, proc in (("tap", producer), ("target", consumer)):
                _, status, usage = os.wait4(proc.pid, 0)
                cpu[name], rss[name] = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
                codes[name] = proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - began
            LOADS.append(os.getloadavg()[0])
            for name, err in (("tap", tap_err), ("target", target_err)):
                if codes[name]:
                    err.seek(max(0, err.seek(0, os.SEEK_END) - 3000))
                    raise SystemExit(f"{name} of the pipeline failed ({codes[name]}):\n{err.read()}")
        return Load(seconds, cpu, rss, *self.landed(schema, stream))


def tuned_settings() -> dict[str, Any]:
    """target-postgres's settings in meltano.yml, less where it connects: the tuned ones."""
    import yaml

    project = yaml.safe_load((HERE.parent / "meltano.yml").read_text())
    [loader] = [p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres"]
    return {k: v for k, v in loader.get("config", {}).items() if k not in CONNECTION}


def batch_config(workdir: Path, form: str) -> dict[str, Any]:
    root = workdir / "batches"
    root.mkdir(exist_ok=True)
    return {"encoding": {"format": form}, "storage": {"root": root.as_uri()}}


def batch_formats(target: Path) -> list[str]:
    """jsonl; parquet too where the tap's and the target's Python both have pyarrow (the
    SDK's `parquet` extra)."""
    found = ["jsonl"]
    pythons = [sys.executable, str(target.parent / "python")]
    if all(subprocess.run([py, "-c", "import pyarrow"], capture_output=True).returncode == 0
           for py in pythons):  # fmt: skip
        found.append("parquet")
    else:
        WARNINGS.append("no parquet BATCH: pyarrow is missing in the tap's or the target's venv")
    return found


def measure_pipeline(sim: Sim, config: dict[str, Any], args: argparse.Namespace, workdir: Path,
                     house: Warehouse) -> Pipeline:  # fmt: skip
    """The tap's output saved once; the loader alone on it with its default and the tuned
    settings; the tap piped into the tuned loader; with --batch, the same with BATCH messages."""
    stream, result = sim.stream, Pipeline()
    modes = {"records": config}
    if args.batch:
        for form in house.batch_formats:
            modes[f"batch {form}"] = {**config, "batch_config": batch_config(workdir, form)}
    saved: dict[str, Path] = {}
    taps: dict[str, list[str]] = {}
    for mode, tap_config in modes.items():
        name = mode.replace(" ", "-")
        path = workdir / f"tap-{name}.json"
        path.write_text(json.dumps(tap_config))
        taps[mode] = [str(BIN / "tap-callcdr"), "--config", str(path), *catalog_for(stream, path, workdir)]
        saved[mode] = workdir / f"saved-{name}.singer"
        with saved[mode].open("wb") as out:  # the output every loader-alone run reads
            subprocess.run(taps[mode], stdout=out, stderr=subprocess.DEVNULL, check=True)
    for repeat in range(args.repeat):
        log(f"{stream}: pipeline {repeat + 1}/{args.repeat}: target-postgres alone (default, tuned), piped")
        runs = {"alone default": house.load(saved["records"], stream, {}),
                "alone tuned": house.load(saved["records"], stream, house.tuned)}  # fmt: skip
        if args.batch:
            runs["alone copy"] = house.load(saved["records"], stream, {**house.tuned, "use_copy": True})
        for mode, tap in taps.items():
            if mode != "records":
                runs[f"alone {mode}"] = house.load(saved[mode], stream, house.tuned)
            runs[f"piped {mode}"] = house.piped(tap, stream, house.tuned)
        for name, load in runs.items():
            result.loads.setdefault(name, []).append(load)
    result.records = result.best("alone tuned").rows
    return result


def report_pipeline(results: list[Result], args: argparse.Namespace) -> None:
    """One row per stream; with --batch, one more line per stream and way of sending."""
    print()
    print(f"pipeline into target-postgres (seconds, best of --repeat {args.repeat}, range after it)")
    print(f"{'stream':<16}{'records':>9}{'alone default':>15}{'alone tuned':>13}{'speed-up':>9}"
          f"{'piped':>12}{'piped/alone':>12}{'tap cpu us/rec':>15}{'floor':>7}{'ratio':>6}"
          f"{'loader MB default':>18}{'tuned':>6}")  # fmt: skip
    for r in results:
        pipe, main, floor = r.pipeline, r.main, r.floor
        assert pipe is not None and main is not None and floor is not None
        alone, piped = pipe.best("alone tuned"), pipe.best("piped records")
        tap_us, floor_us = 1e6 * main.cpu / main.records, 1e6 * floor.cpu / floor.records
        print(f"{r.stream:<16}{pipe.records:>9}{pipe.spread('alone default'):>15}"
              f"{pipe.spread('alone tuned'):>13}{pipe.best('alone default').seconds / alone.seconds:>8.1f}x"
              f"{pipe.spread('piped records'):>12}{piped.seconds / alone.seconds:>12.2f}"
              f"{tap_us:>15.1f}{floor_us:>7.1f}{tap_us / floor_us:>6.2f}"
              f"{pipe.best('alone default').rss['target']:>18.0f}{alone.rss['target']:>6.0f}")  # fmt: skip
    print("alone = target-postgres on the tap's saved output; tuned = meltano.yml's settings "
          f"{json.dumps(tuned_settings())}; piped = tap | target-postgres (tuned), wall time to the "
          "target's end; tap/floor cpu = CPU microseconds a record of the plain runs above; loader MB = "
          "its peak RSS alone")
    if args.batch:
        print()
        print(f"{'stream':<16}{'sent as':<14}{'loader alone':>13}{'piped':>12}{'tap MB':>8}"
              f"{'loader MB':>10}{'tap cpu s':>10}{'loader cpu s':>13}")  # fmt: skip
        for r in results:
            pipe = r.pipeline
            assert pipe is not None
            for mode in [m.removeprefix("piped ") for m in pipe.loads if m.startswith("piped ")]:
                alone = "alone tuned" if mode == "records" else f"alone {mode}"
                piped = pipe.best(f"piped {mode}")
                print(f"{r.stream:<16}{mode:<14}{pipe.spread(alone):>13}{pipe.spread(f'piped {mode}'):>12}"
                      f"{piped.rss['tap']:>8.0f}{piped.rss['target']:>10.0f}{piped.cpu['tap']:>10.1f}"
                      f"{piped.cpu['target']:>13.1f}")  # fmt: skip
            copy = pipe.best("alone copy")
            print(f"{r.stream:<16}{'records+COPY':<14}{pipe.spread('alone copy'):>13}{'-':>12}{'':>8}"
                  f"{copy.rss['target']:>10.0f}  (loader alone)")  # fmt: skip
        print("batch = the tap with batch_config of that format on local files (jsonl: gzip), into "
              "the tuned target-postgres; records+COPY = tuned plus use_copy: true "
              "(not shipped: docs/pipeline.md); MB = peak RSS of each process piped, cpu s = its CPU "
              "seconds piped")
    for r in results:
        assert r.pipeline is not None
        loads = r.pipeline.loads.items()
        digests = {name: {(load.rows, load.digest) for load in runs} for name, runs in loads}
        truth = digests["alone default"]
        for name, seen in digests.items():
            if seen != truth or len(truth) != 1:
                WARNINGS.append(f"{r.stream}: {name} landed (rows, digest) {sorted(seen)}, "
                                f"the default loader {sorted(truth)}")  # fmt: skip


# -- the report --------------------------------------------------------------------------------


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def report(results: list[Result], args: argparse.Namespace, elapsed: float, tree: list[str]) -> None:
    sizes = sorted({*args.rss_sizes, args.calls})
    rss_head = "".join(f"{'@' + size_label(s):>7}" for s in sizes)
    also_head = "".join(f"{'also' + (str(i + 1) if len(args.also) > 1 else '') + ' r/s':>11}{'ratio':>6}"
                        for i in range(len(args.also)))  # fmt: skip
    lat_head = "".join(f"{str(a) + ' acct':>9}" for a in args.accounts)
    ms = f"{args.latency * 1000:.0f} ms/request, {size_label(args.latency_calls)}/acct "
    print()
    print(f"{'':16}{'-- at ' + size_label(args.calls) + ' calls ':-<{46 + 17 * len(args.also)}}  "
          f"{'-- tap peak RSS MB ':-<{7 * len(sizes)}}  "
          f"{'-- requests at ' + size_label(args.calls) + ' ':-<50}{'':6}  "
          f"{'-- ' + ms:-<{9 * len(args.accounts)}}")  # fmt: skip
    print(f"{'stream':<16}{'records':>9}{'tap r/s':>10}{'floor r/s':>11}{'ratio':>7}{'cpu':>6}{also_head}   "
          f"{rss_head}  {'tap':>6}{'METRIC':>8}{'floor':>7}{'least':>7}{'x least':>8}"
          f"{'windows':>8}{'cuts':>6}{'idle':>6}  {lat_head}")  # fmt: skip
    for r in results:
        main, floor = r.main, r.floor
        assert main is not None and floor is not None
        runs = {**r.rss, args.calls: main}
        rss = "".join(f"{runs[s].rss_mb:>7.0f}" if s in runs else f"{'-':>7}" for s in sizes)
        lat = "".join(
            f"{r.latency[a].seconds:>8.1f}s" if a in r.latency else f"{'-':>9}" for a in args.accounts
        )
        cpu = (floor.cpu / floor.records) / (main.cpu / main.records) if main.records and floor.records else 0
        also = "".join(f"{r.also[k].rate:>11.0f}{r.also[k].rate / floor.rate:>6.2f}" for k, _ in args.also)
        print(f"{r.stream:<16}{main.records:>9}{main.rate:>10.0f}{floor.rate:>11.0f}"
              f"{main.rate / floor.rate:>7.2f}{cpu:>6.2f}{also}   {rss}  {main.seen:>6}{main.metric:>8}"
              f"{floor.seen:>7}{r.least:>7}{main.seen / r.least:>8.2f}{r.windows:>8}{main.splits:>6}"
              f"{sum(r.idle.values()) if r.idle else '-':>6}  {lat}")  # fmt: skip
    print()
    print(
        f"total run time {elapsed / 60:.1f} min: --calls {args.calls} --rss-sizes "
        f"{','.join(map(str, args.rss_sizes))} --latency-calls {args.latency_calls} --days {args.days}; "
        f"1-min load average after runs {min(LOADS):.1f}..{max(LOADS):.1f} on {os.cpu_count()} cores"
    )
    print(f"tap code: {tree[0]}" + ("" if tree[0] == tree[-1] else f" at the start, {tree[-1]} at the end"))
    print(
        "ratio = tap records/s / floor records/s, wall clock (1.00 = no overhead over the bare "
        "protocol); cpu = the same on the children's CPU seconds (insensitive to other load); "
        + "".join(
            f"also{i + 1 if len(args.also) > 1 else ''} = the tap with {k}={json.dumps(v)}; "
            for i, (k, v) in enumerate(args.also)
        )
        + "tap = requests in the simulator's log, METRIC = the tap's http_request_count; "
        "idle = requests of an incremental run with nothing new (one window: the lookback); "
        "least = fewest the vendor's limits allow; cuts = Tencent answers cut at the cap "
        "(each is discarded and its span asked again, shorter)"
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this script's own peak RSS {own:.0f} MB: a child's peak below it could not be seen "
          "(Linux keeps the high-water mark across fork and exec)")  # fmt: skip
    idle = [f"{r.stream} {fmt_services(r.idle)}" for r in results if r.idle]
    if idle:
        print("idle requests by service: " + "; ".join(idle))
    if args.calls_stream:
        report_calls(results, args)
    if args.pipeline:
        report_pipeline(results, args)
    for line in WARNINGS + findings(results, args):
        print(f"! {line}")


def findings(results: list[Result], args: argparse.Namespace) -> list[str]:
    out = []
    for r in results:
        main, floor = r.main, r.floor
        assert main is not None and floor is not None
        name = r.stream
        if main.records != floor.records:
            out.append(f"{name}: tap emitted {main.records} records, the floor {floor.records}")
        if main.metric != main.seen:
            out.append(f"{name}: METRIC http_request_count {main.metric} but the simulator saw "
                       f"{main.seen} requests ({fmt_services(main.services)})")  # fmt: skip
        if main.seen > floor.seen:
            out.append(f"{name}: tap made {main.seen} requests, the floor {floor.seen} over the same "
                       f"windows ({fmt_services(main.services)})")  # fmt: skip
        if main.seen > 1.1 * r.least:
            cuts = f", {main.splits} cut answers" if main.splits else ""
            out.append(f"{name}: {main.seen} requests vs least {r.least} ({main.seen / r.least:.1f}x): "
                       f"{r.windows} windows of {r.hours} h{cuts}")  # fmt: skip
        for size, run in sorted(r.rss.items()):
            if size > args.calls:
                least = r.rss_least[size]
                cuts = f", {run.splits} cut answers" if run.splits else ""
                out.append(f"{name} at {size_label(size)}: {run.records} records in {run.seconds:.0f}s "
                           f"({run.rate:.0f}/s), {run.seen} requests vs least {least} "
                           f"({run.seen / least:.1f}x){cuts}, peak RSS {run.rss_mb:.0f} MB")  # fmt: skip
        tree = {size: run.tree_mb for size, run in sorted({**r.rss, args.calls: main}.items())}
        if any(mb > r.rss.get(size, main).rss_mb + 1 for size, mb in tree.items()):
            out.append(f"{name}: peak RSS of the tap with its row worker processes, sampled: "
                       + ", ".join(f"{mb:.0f} MB at {size_label(size)}" for size, mb in tree.items()))
        runs = sorted({**r.rss, args.calls: main}.items())
        (small, first), (big, last) = runs[0], runs[-1]
        if big > small and last.rss_mb > 1.5 * first.rss_mb:
            out.append(f"{name}: peak RSS grows with size: {first.rss_mb:.0f} MB at {size_label(small)}, "
                       f"{last.rss_mb:.0f} MB at {size_label(big)}")  # fmt: skip
        if len(r.latency) >= 2:
            (a1, one), (an, many) = sorted(r.latency.items())[0], sorted(r.latency.items())[-1]
            fixed = max(0.0, one.seconds - one.seen * args.latency)  # start-up and CPU of one account
            waited = many.seen * args.latency
            overlap = waited / max(many.seconds - fixed, 1e-9)
            out.append(f"{name}: {an} accounts {many.seconds:.1f}s vs {a1} account {one.seconds:.1f}s; "
                       f"{many.seen} requests x {args.latency:g}s = {waited:.1f}s of latency, so requests "
                       f"overlapped {overlap:.1f}x (ideal {an / a1:.0f}x)")  # fmt: skip
    return out


def fmt_services(services: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(services.items(), key=lambda kv: -kv[1]))


def sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def tap_tree() -> str:
    """The commit and whether tap_callcdr/ has uncommitted changes (other people edit it)."""
    root = HERE.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "tap_callcdr"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    if not dirty:
        return head
    import hashlib

    diff = subprocess.run(["git", "-C", str(root), "diff", "HEAD", "--", "tap_callcdr"],
                          capture_output=True, check=False).stdout  # fmt: skip
    return f"{head} + uncommitted changes (diff {hashlib.sha1(diff + dirty.encode()).hexdigest()[:8]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add = parser.add_argument
    add("--calls", type=int, default=200_000, help="calls for the throughput and request figures")
    add("--rss-sizes", type=sizes, default=[10_000, 1_000_000], help="more sizes for peak RSS")
    add("--latency-calls", type=int, default=10_000, help="calls per account in the latency runs")
    add("--latency", type=float, default=0.1, help="seconds added to each request (0: skip)")
    add("--accounts", type=sizes, default=[1, 4], help="account counts of the latency runs")
    add("--days", type=int, default=30, help="days of calls (ITNIO keeps under 58)")
    add("--streams", default=",".join(STREAMS), help="comma list of streams")
    add("--repeat", type=int, default=1, help="tap/floor pairs at --calls; the fastest counts")
    add("--tencent-cap", type=int, default=1000, help="most calls one Tencent answer carries")
    add(
        "--tencent-window-hours",
        type=int,
        help="Tencent's window_hours (default: the tap's, 24)\n"
        "and the floor's fixed window (default: computed from the cap)",
    )
    add(
        "--also",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more tap run at --calls with this tap setting (repeatable),\n"
        "e.g. --also trust_record_types=true",
    )
    add("--pipeline", action="store_true",
        help="also tap | target-postgres against target-postgres alone on the tap's saved\n"
        "output (default and meltano.yml's settings), per stream (~2 min a stream at 200k)")
    add("--batch", action="store_true",
        help="with --pipeline: also the tap with batch_config (jsonl; parquet with pyarrow) into it")
    add("--target-postgres", default=str(MELTANO_TARGET),
        help="the target-postgres executable (default: the project's, from `meltano install`)")
    add("--calls-stream", action="store_true",
        help="also the tap alone and with the unified `calls` selected next to the stream\n"
        "(--repeat pairs, alternately): records/s and CPU a record of each, and the ratio")
    add("--quick", action="store_true", help="small sizes, 7 days: a smoke run of about 2 min")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rss_sizes, args.latency_calls, args.days = 20_000, [2_000, 50_000], 2_000, 7
    try:
        import msgspec  # noqa: F401
    except ImportError:
        raise SystemExit("the floor needs msgspec: pip install msgspec") from None
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = set(streams) - set(STREAMS)
    if unknown:
        raise SystemExit(f"unknown streams {sorted(unknown)}; have {', '.join(STREAMS)}")
    began, tree = time.perf_counter(), [tap_tree()]
    args.pipeline = args.pipeline or args.batch
    with tempfile.TemporaryDirectory(prefix="callcdr-bench-") as tmp:
        house = Warehouse(args, Path(tmp)) if args.pipeline else None
        try:
            results = [measure(stream, args, Path(tmp), house) for stream in streams]
        finally:
            if house is not None:
                house.close()
    tree.append(tap_tree())
    report(results, args, time.perf_counter() - began, tree)


if __name__ == "__main__":
    main()
