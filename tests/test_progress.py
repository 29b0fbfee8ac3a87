"""Progress a person can follow (core/progress.py): per account, a line at each window end
(interval 0) naming the records so far, the window reached and the windows done; at the end
of each stream one line per account with its records, requests, retries and bookmark; no
per-window paging noise. Content only, never timing: lines come from real runs of the console
script against the simulator, their numbers checked against the run's own output."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import generic_helpers
import pytest
from callcdr_simulator import Simulator, simulator_tls
from callcdr_simulator.generic import demo_accounts
from harness import TapRun, run_cli
from vendors import TESTED, VENDOR_NAMES

from tap_callcdr.core.progress import AccountProgress, duration
from tap_callcdr.core.windows import Window

NAMES = ["hq", "branch"]
EVERY_WINDOW = {"progress_interval_seconds": 0, "window_hours": 24}
PROGRESS = re.compile(
    r"(?P<stream>\w+) \[(?P<account>[^\]]+)\]: (?P<records>[\d,]+) records, through (?P<through>\S+), "
    r"(?P<done>\d+)/(?P<total>\d+) windows, (?:~\S+ left|read in \S+)$"
)
SUMMARY = re.compile(
    r"(?P<stream>\w+) \[(?P<account>[^\]]+)\] (?P<ending>finished|failed in window \[\S+, \S+\)"
    r" after) (?P<done>\d+)/(?P<total>\d+) windows: (?P<records>[\d,]+) records, "
    r"(?P<requests>[\d,]+) requests, (?P<retries>[\d,]+) retries; (?P<bookmark>.*)$"
)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Simulator, Path]]:
    """Every vendor's accounts NAMES, calls in the last 3 days (so a 4-day run's first window
    is empty): over plain HTTP, and over HTTPS for the vendors reached only that way."""
    tls = simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")
    plain = [a for v in TESTED if not v.https for a in v.demo_accounts(NAMES, calls=150, days=3)]
    secure = [a for v in TESTED if v.https for a in v.demo_accounts(NAMES, calls=150, days=3)]
    with Simulator(plain) as http, Simulator(secure, ssl_context=tls.context) as https:
        yield http, https, tls.ca_file


def lines(run: TapRun, pattern: re.Pattern[str]) -> list[dict[str, str]]:
    return [m.groupdict() for line in run.stderr.splitlines() if (m := pattern.search(line))]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def records_by_account(run: TapRun) -> Counter[tuple[str, str]]:
    return Counter((m["stream"], m["record"]["account"]) for m in run.messages if m["type"] == "RECORD")


def bookmarks(run: TapRun) -> dict[tuple[str, str], str]:
    assert run.last_state is not None
    return {
        (stream, p["context"]["account"]): p["replication_key_value"]
        for stream, state in run.last_state["bookmarks"].items()
        for p in state.get("partitions", [])
        if p.get("replication_key_value")
    }


def requests_by_account(run: TapRun) -> Counter[tuple[str, str]]:
    """The METRIC http_request_count points, summed per stream and account."""
    counted: Counter[tuple[str, str]] = Counter()
    for line in run.stderr.splitlines():
        if "METRIC: " in line and '"http_request_count"' in line:
            point = json.loads(line.split("METRIC: ", 1)[1])
            context = point["tags"].get("context") or {}
            counted[(point["tags"]["stream"], context.get("account", "?"))] += point["value"]
    return counted


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_every_account_says_its_progress_and_how_it_ended(
    vendor: str, sims: tuple[Simulator, Simulator, Path]
) -> None:
    http, https, ca_file = sims
    tested = next(v for v in TESTED if v.name == vendor)
    config = {**tested.tap_config(https if tested.https else http, days=4, ca_file=ca_file), **EVERY_WINDOW}
    run = run_cli(config)
    assert run.returncode == 0, run.stderr
    emitted, left, requests = records_by_account(run), bookmarks(run), requests_by_account(run)
    assert emitted, "no records: proves nothing"

    said: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for line in lines(run, PROGRESS):
        said[(line["stream"], line["account"])].append(line)
    assert set(said) == set(emitted)
    for key, progress in said.items():
        total = number(progress[0]["total"])
        assert len({p["through"] for p in progress}) >= 4, f"{key}: said as it went, not once"
        windows_said = sorted({number(p["done"]) for p in progress})
        assert windows_said[-total:] == list(range(1, total + 1)), f"{key}: every window end is said"
        counts = [number(p["records"]) for p in progress]
        assert counts == sorted(counts), f"{key}: records so far never go back"
        assert counts[-1] == emitted[key], f"{key}: the last line counts every record"
        assert progress[-1]["through"] == left[key], f"{key}: read through where the bookmark is"

    summaries = {(s["stream"], s["account"]): s for s in lines(run, SUMMARY)}
    assert set(summaries) == set(emitted), "one end line per account"
    for key, summary in summaries.items():
        assert summary["ending"] == "finished" and summary["done"] == summary["total"]
        assert number(summary["records"]) == emitted[key]
        assert number(summary["requests"]) == requests[key], f"{key}: requests as METRIC counts them"
        assert summary["retries"] == "0"
        assert summary["bookmark"] == f"bookmark {left[key]}"

    assert "Pagination stopped" not in run.stderr, "an empty window makes no noise"


def test_a_failed_account_says_where_it_stopped_and_the_bookmark_it_left() -> None:
    """hq fails in its third window (a vendor error that outlasts max_retries 3); branch, read
    after it, still finishes; both say how they ended."""
    with Simulator(demo_accounts(NAMES, calls=150, days=3)) as sim:
        sim.faults.add("vendor_error", code=1001, after=2, times=4)
        config = generic_helpers.tap_config(sim, days=4, parallel_accounts=1, **EVERY_WINDOW)
        run = run_cli(config)
    assert run.returncode != 0
    summaries = {s["account"]: s for s in lines(run, SUMMARY)}
    assert set(summaries) == set(NAMES)
    hq, branch = summaries["hq"], summaries["branch"]
    left, emitted = bookmarks(run), records_by_account(run)
    stream = generic_helpers.STREAM

    assert hq["ending"].startswith("failed in window [") and hq["done"] == "2"
    assert number(hq["records"]) == emitted[(stream, "hq")]
    assert number(hq["requests"]) == requests_by_account(run)[(stream, "hq")]
    assert hq["retries"] == "3"
    assert hq["bookmark"] == f"bookmark {left[(stream, 'hq')]} (the next run resumes there)"
    failed_in = re.search(r"\[(\S+), ", hq["ending"])
    assert failed_in is not None and failed_in.group(1) == left[(stream, "hq")]
    said = next(line for line in run.stderr.splitlines() if "[hq] failed in window" in line)
    assert "WARNING" in said

    assert branch["ending"] == "finished" and branch["retries"] == "0"
    assert number(branch["records"]) == emitted[(stream, "branch")]


# -- the wording of each ending, and the time left (no run, no clock) ------------------------

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
FOUR = [Window(START + i * DAY, START + (i + 1) * DAY) for i in range(4)]


def test_time_left_is_reckoned_by_the_span_of_time_read() -> None:
    progress = AccountProgress("s", "a", FOUR)
    assert progress.time_left(10.0) is None, "nothing read yet: no guess"
    progress.window_done(FOUR[0])
    assert progress.time_left(10.0) == pytest.approx(30.0)
    progress.reached(START + 2 * DAY)  # a vendor's step inside the second window
    assert progress.time_left(10.0) == pytest.approx(10.0)
    assert progress.line(progress.started + 10.0).endswith(
        "0 records, through 2026-03-03T00:00:00Z, 1/4 windows, ~10s left"
    )


@pytest.mark.parametrize(
    ("windows", "done", "bookmark", "failed", "said"),
    [
        ([], 0, None, False, "s [a] had nothing to read (no window has settled since its bookmark): "
         "0 records, 0 requests, 0 retries; no bookmark (none was ever set: the next run starts at "
         "start_date)"),
        (FOUR, 0, None, True, "s [a] failed in window [2026-03-01T00:00:00Z, 2026-03-02T00:00:00Z) after "
         "0/4 windows: 0 records, 0 requests, 0 retries; no bookmark (no window was read completely: "
         "the next run starts at start_date)"),
        (FOUR, 0, "2026-02-28T00:00:00Z", True, "s [a] failed in window [2026-03-01T00:00:00Z, "
         "2026-03-02T00:00:00Z) after 0/4 windows: 0 records, 0 requests, 0 retries; bookmark unchanged "
         "at 2026-02-28T00:00:00Z"),
        (FOUR, 2, "2026-03-03T00:00:00Z", False, "s [a] stopped in window [2026-03-03T00:00:00Z, "
         "2026-03-04T00:00:00Z) after 2/4 windows: 0 records, 0 requests, 0 retries; bookmark "
         "2026-03-03T00:00:00Z (the next run resumes there)"),
    ],
)
def test_each_ending_says_what_the_next_run_does(
    windows: list[Window], done: int, bookmark: str | None, failed: bool, said: str
) -> None:
    progress = AccountProgress("s", "a", windows)
    for window in windows[:done]:
        progress.window_done(window)
    if done < len(windows):
        progress.reading = windows[done]
    assert progress.summary(bookmark, failed) == said


@pytest.mark.parametrize(("seconds", "said"), [(0.4, "0s"), (42, "42s"), (70, "1m10s"), (3900, "1h05m")])
def test_durations_read_as_a_person_says_them(seconds: float, said: str) -> None:
    assert duration(seconds) == said
