#!/usr/bin/env python
"""Throughput and memory of the tap against the local simulator (a script, not a test).

For each stream: the simulator (its own process) serves N calls; the tap runs as Meltano
runs it (console script, RECORD lines to /dev/null), then a bare loop fetches the same
pages with requests + json and writes the same number of RECORD lines: the floor.
Peak RSS is each child's own (wait4), records/s is records over wall time.

    .venv/bin/python scripts/benchmark.py            # 200k calls
    .venv/bin/python scripts/benchmark.py --calls 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
ANCHOR = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class Measure:
    records: int
    seconds: float
    peak_rss_mb: float
    requests: int = 0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def start_simulator(calls: int, days: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(BIN / "callcdr-simulator"), "--port", "0", "--calls", str(calls), "--days", str(days),
         "--accounts", "hq", "--anchor", ANCHOR.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, match.group(1)


def run_measured(
    args: list[str], stdout: int | None = subprocess.DEVNULL
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of that child alone, and its stderr."""
    with tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(args, stdout=stdout, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def generic_config(url: str, days: int) -> dict:
    return {
        "start_date": (ANCHOR - dt.timedelta(days=days + 1)).isoformat(),
        "window_hours": 24,
        "generic_accounts": [{
            "name": "hq", "api_url": f"{url}/generic/",
            "appid": "hq-appid", "accesskey": "hq-accesskey-S3cr3t",
        }],
    }  # fmt: skip


def tap_run(config: dict) -> Measure:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config))
        env_args = [str(BIN / "tap-callcdr"), "--config", str(path)]
        seconds, rss, stderr = run_measured(env_args)
    records = sum(
        int(m) for m in re.findall(r'"metric":\s*"record_count",\s*"value":\s*(\d+)', stderr)
    )
    requests = sum(
        int(m) for m in re.findall(r'"metric":\s*"http_request_count",\s*"value":\s*(\d+)', stderr)
    )
    return Measure(records, seconds, rss, requests)


FLOOR = r"""
import datetime as dt, json, sys, requests
url, start, end = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3])
session = requests.Session()
login = {"service": "App.Sip_Auth.Login", "appid": "hq-appid", "accesskey": "hq-accesskey-S3cr3t"}
token = session.post(url, data=login).json()["data"]["result"]["token"]
out, count, calls = sys.stdout, 0, 0
shanghai, second = dt.timezone(dt.timedelta(hours=8)), dt.timedelta(seconds=1)
while start < end:
    stop = min(start + dt.timedelta(days=1), end)
    page = 1
    while True:
        form = {"service": "App.Sip_Cdr.GetBill", "token": token, "syncflag": 3, "direction": 3,
                "callmethod": 0, "itemsperpage": 1000, "currentpage": page,
                "starttime": start.astimezone(shanghai).strftime("%Y-%m-%d %H:%M:%S"),
                "endtime": (stop - second).astimezone(shanghai).strftime("%Y-%m-%d %H:%M:%S")}
        result = session.post(url, data=form).json()["data"]["result"]
        calls += 1
        for bill in result["bills"]:
            out.write(json.dumps({"type": "RECORD", "stream": "generic_cdr", "record": bill}) + "\n")
            count += 1
        if not result["bills"] or page * 1000 >= result["totalitems"]:
            break
        page += 1
    start = stop
print(count, calls, file=sys.stderr)
"""


def floor_run(url: str, start: dt.datetime, end: dt.datetime) -> Measure:
    seconds, rss, stderr = run_measured(
        [sys.executable, "-c", FLOOR, f"{url}/generic/", start.isoformat(), end.isoformat()]
    )
    records, requests = map(int, stderr.split()[-2:])
    return Measure(records, seconds, rss, requests)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    sim, url = start_simulator(args.calls, args.days)
    try:
        config = generic_config(url, args.days)
        tap = tap_run(config)
        start = dt.datetime.fromisoformat(config["start_date"])
        floor = floor_run(url, start, dt.datetime.now(dt.UTC))
    finally:
        sim.terminate()
        sim.wait()
    print(
        f"{'stream':<14}{'path':<8}{'records':>9}{'seconds':>9}{'rec/s':>9}{'peak MB':>9}{'requests':>9}"
    )
    for label, m in (("tap", tap), ("floor", floor)):
        print(f"{'generic_cdr':<14}{label:<8}{m.records:>9}{m.seconds:>9.1f}{m.rate:>9.0f}"
              f"{m.peak_rss_mb:>9.0f}{m.requests:>9}")  # fmt: skip
    print(f"tap/floor ratio: {tap.rate / floor.rate:.2f}")


if __name__ == "__main__":
    main()
