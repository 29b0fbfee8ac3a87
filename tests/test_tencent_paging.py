"""Tencent requests sized to the cap: the sizer alone (pure), then the tap against the
simulator (real HTTP): every call once, how many requests, and resuming after a kill."""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import itertools
import math
import random
import typing as t
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.tencent import tencent_demo_accounts
from harness import TapRun, run_tap
from hypothesis import given, settings
from hypothesis import strategies as st
from tencent_helpers import STREAM, bookmarks, cdr_requests, expected, keys, tap_config

from tap_callcdr.vendors.tencent.paging import DAY, SpanSizer

HOUR = 3600
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The simulated days end at the last Shanghai midnight, and runs read up to there (see
# busy_run): how many requests a run takes depends on where its day curve falls, so it must
# not depend on the hour the tests run at.
ANCHOR = dt.datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


# == the sizer alone =============================================================================

events = st.lists(
    st.tuples(
        st.sampled_from(["whole", "cut", "elsewhere"]),
        st.integers(min_value=1, max_value=5000),  # served, or how many calls
        st.integers(min_value=0, max_value=2**31),  # where they start
    ),
    max_size=60,
)


@settings(deadline=None, max_examples=300)
@given(
    longest=st.integers(min_value=1, max_value=40 * DAY),
    first=st.integers(min_value=0, max_value=2 * 10**9),
    length=st.integers(min_value=1, max_value=60 * DAY),
    happenings=events,
)
def test_proposal_is_at_least_a_second_and_never_past_the_end_or_the_longest(
    longest: int, first: int, length: int, happenings: list[tuple[str, int, int]]
) -> None:
    sizer = SpanSizer(longest=longest)
    start, end = first, first + length
    for kind, count, seed in happenings:
        stop = sizer.propose(start, end)
        assert start + 1 <= stop <= min(end, start + longest)
        assert isinstance(stop, int)
        if kind == "cut":
            sizer.cut(start, stop, count)
            continue
        rng = random.Random(seed)
        starts = sorted(rng.randrange(start, stop) for _ in range(min(count, 3000)))
        if kind == "elsewhere":  # history that does not end where the next request starts
            sizer.whole(start - 10 * DAY, start - 9 * DAY, [s - 10 * DAY for s in starts])
            continue
        sizer.whole(start, stop, starts)
        start = stop
        if start == end:
            end = start + length


def test_before_any_cut_every_request_asks_for_the_longest_span() -> None:
    """An incremental run with nothing new costs one request per `window_hours`."""
    sizer = SpanSizer(longest=DAY)
    assert sizer.propose(0, 3 * DAY) == DAY
    sizer.whole(0, DAY, list(range(0, DAY, 100)))  # 864 calls: no cap known, nothing to fit
    assert sizer.propose(DAY, 3 * DAY) == 2 * DAY
    assert sizer.propose(DAY, DAY + 7) == DAY + 7


def test_cuts_shrink_the_span_and_learn_the_cap() -> None:
    sizer = SpanSizer(longest=DAY)
    sizer.cut(0, DAY, 1000)
    assert sizer.cap == 1000 and sizer.propose(0, DAY) == DAY // 2
    sizer.cut(0, DAY // 2, 1000)
    assert sizer.propose(0, DAY) == DAY // 4
    sizer.whole(0, DAY // 4, list(range(0, DAY // 4, 30)))  # 720 calls in 6 h
    budget = sizer.budget(1000)
    assert 880 < budget < 930
    assert sizer.propose(DAY // 4, DAY) == DAY // 4 + int(budget * (DAY // 4) / 720)


def test_a_quiet_stretch_grows_the_span_gently() -> None:
    sizer = SpanSizer(longest=DAY)
    sizer.cut(0, DAY, 100)
    sizer.whole(0, HOUR, [10])  # one call an hour: would propose 80 h, growth allows 2 h
    assert sizer.propose(HOUR, 10 * DAY) == 3 * HOUR


def day_curve(days: int, per_day: int, seed: int, burst: int = 0) -> list[int]:
    """Call starts, mostly in 08-21 Shanghai, plus `burst` calls in 20 minutes at 03:00 on
    the last day (no history announces them)."""
    rng = random.Random(seed)
    starts = []
    for _ in range(days * per_day):
        moment = rng.randrange(days * DAY)
        hour = (moment // HOUR + 8) % 24  # epoch 0 is 08:00 in Shanghai
        if 8 <= hour < 21 or rng.random() < 0.1:
            starts.append(moment)
    starts += [(days - 1) * DAY + 19 * HOUR + rng.randrange(20 * 60) for _ in range(burst)]
    return sorted(starts)


def read_all(starts: list[int], end: int, cap: int, longest: int) -> tuple[int, int, int]:
    """Drive a sizer as the stream does against an inclusive-end vendor: requests, cuts, calls."""
    sizer, start, requests, cuts, read = SpanSizer(longest=longest), 0, 0, 0, 0
    while start < end:
        stop = sizer.propose(start, end)
        requests += 1
        if bisect.bisect_right(starts, stop) - bisect.bisect_left(starts, start) > cap:
            sizer.cut(start, stop, cap)
            cuts += 1
            continue
        got = starts[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, stop)]
        sizer.whole(start, stop, got)
        read += len(got)
        start = stop
    return requests, cuts, read


@pytest.mark.parametrize(("cap", "per_day"), [(1000, 6000), (200, 1500), (50, 300)])
def test_a_day_curve_costs_close_to_the_least(cap: int, per_day: int) -> None:
    """After the first day the time-of-day profile sees the ramps coming: the steady state
    needs n / budget requests (the budget keeps two spreads of the count under the cap); the
    first day, with no profile yet, costs about two days' least more; cuts stay rare."""
    days = 10
    starts = day_curve(days, per_day, seed=cap)
    requests, cuts, read = read_all(starts, days * DAY, cap, DAY)
    assert read == len(starts)
    steady = len(starts) / SpanSizer(longest=DAY).budget(cap)
    first_day = len([s for s in starts if s < DAY]) / cap
    assert requests <= 1.1 * steady + 2 * first_day + 2, (requests, steady, first_day)
    assert cuts <= 4 + requests // 10


@pytest.mark.parametrize("cap", [1000, 50])
def test_an_unannounced_burst_costs_a_few_cuts(cap: int) -> None:
    """A burst the profile cannot know: cut spans shrink by 3/4 then halves, so it is found
    in about log2(day / burst) cuts; it is then read in pieces of about the budget, each
    sized from the one before (so each may cost a cut too), and the quiet after it is found
    again by growing the span 4 times a step."""
    days, per_day, burst = 10, 6 * cap, 3 * cap
    calm = read_all(day_curve(days, per_day, seed=cap), days * DAY, cap, DAY)
    starts = day_curve(days, per_day, seed=cap, burst=burst)
    requests, cuts, read = read_all(starts, days * DAY, cap, DAY)
    assert read == len(starts)
    found = math.log2(DAY / (20 * 60)) + 2
    pieces = burst / SpanSizer(longest=DAY).budget(cap) + 2
    assert requests - calm[0] <= found + 3 * pieces, (requests, calm)
    assert cuts - calm[1] <= found + pieces, (cuts, calm)


# == the tap against the simulator ===============================================================

CAP = 100


@pytest.fixture(scope="module")
def busy() -> Iterator[Simulator]:
    """Six days of calls on the simulator's day curve (~90% in 08-21 Shanghai) and a burst of
    400 calls in 15 minutes one night; answers hold at most CAP calls."""
    simulator = Simulator(
        tencent_demo_accounts(["hq"], calls=3000, days=6, cap=CAP), anchor=ANCHOR
    ).start()
    night = (ANCHOR - dt.timedelta(days=2)).astimezone(SHANGHAI).replace(hour=2, minute=30)
    simulator.tencent.add_calls("hq", 400, night, night + dt.timedelta(minutes=15))
    yield simulator
    simulator.stop()


def busy_run(sim: Simulator, state: dict[str, t.Any] | None = None, **overrides: t.Any) -> TapRun:
    sim.clear_requests()
    since = (dt.datetime.now(dt.UTC) - ANCHOR) // dt.timedelta(minutes=1)  # read up to ANCHOR
    overrides = {"settle_lag_minutes": since, **overrides}
    run = run_tap(tap_config(sim, days=7, **overrides), state=state)  # window_hours: default
    assert run.error is None, run.error
    return run


def test_a_day_curve_and_a_burst_land_once_in_few_requests(busy: Simulator) -> None:
    """3400 calls, CAP 100: at least 34 requests. The same allowance as the pure tests above:
    the steady state needs n / budget (43), +10% for the Poisson spread; the first day is read
    before any time-of-day profile exists (twice its least); the unannounced burst costs
    log2(day / 15 min) + 2 cuts to find and 3 requests per budget of its calls. That is 87;
    this run takes about 80, fixed 24-hour windows halved on every cut (the old way) 120.
    window_hours is 24 here, as that allowance assumes (the default 168 adds a few cuts to the
    first request of a busy first run)."""
    run = busy_run(busy, window_hours=24)
    truth = expected(busy)
    assert sorted(keys(run.records(STREAM))) == sorted(truth), "missing or duplicated calls"
    budget = SpanSizer(longest=DAY).budget(CAP)
    steady = 1.1 * len(truth) / budget
    first_day = 2 * 3000 / 6 / CAP
    burst = math.log2(DAY / (15 * 60)) + 2 + 3 * (400 / budget + 2)
    requests = cdr_requests(busy)
    assert len(requests) <= steady + first_day + burst < 100, len(requests)
    spans = [(int(r["params"]["startTimeStamp"]), int(r["params"]["endTimeStamp"])) for r in requests]
    assert all(0 < end - start <= DAY for start, end in spans), "every request within window_hours"


def test_every_state_covers_every_call_before_its_bookmark(busy: Simulator) -> None:
    """What makes a kill harmless: whenever a STATE is emitted, every call before its bookmark
    has been emitted already. And the bookmark moves after each whole answer, not once a run."""
    run = busy_run(busy)
    starts = {(a, c["callId"]): utc_start(c) for a in ["hq"] for c in busy.tencent.truth(a)}
    emitted: set[tuple[str, str]] = set()
    marks = []
    for message in run.messages:
        if message["type"] == "RECORD":
            emitted.add((message["record"]["account"], message["record"]["callId"]))
        elif message["type"] == "STATE":
            mark = bookmarks(message["value"])["hq"]
            missing = [k for k, start in starts.items() if start < mark and k not in emitted]
            assert not missing, f"STATE {mark} before {len(missing)} of its calls"
            marks.append(mark)
    assert len(set(marks)) > 20, "the bookmark moves after every whole answer"


def utc_start(call: dict[str, str]) -> str:
    return dt.datetime.fromtimestamp(int(call["startSrcCallTime"]), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("share", [0.3, 0.7])
def test_a_run_killed_mid_way_resumes_losing_nothing(busy: Simulator, share: float) -> None:
    """Kill = the messages stop anywhere (here mid-way between two STATEs); the next run
    starts from the last STATE that got out, and re-reads only from there."""
    full = busy_run(busy)
    states = [i for i, m in enumerate(full.messages) if m["type"] == "STATE"]
    kill = (states[int(len(states) * share)] + states[int(len(states) * share) + 1]) // 2
    before = full.messages[:kill]
    saved = [m["value"] for m in before if m["type"] == "STATE"][-1]
    mark = bookmarks(saved)["hq"]
    resumed = busy_run(busy, state=copy.deepcopy(saved), lookback_minutes=0)
    got = {(m["record"]["account"], m["record"]["callId"]) for m in before if m["type"] == "RECORD"}
    got |= set(keys(resumed.records(STREAM)))
    assert got == set(expected(busy)), "a call was lost"
    first = min(int(r["params"]["startTimeStamp"]) for r in cdr_requests(busy))
    assert utc_start({"startSrcCallTime": str(first)}) == mark
    assert len(resumed.records(STREAM)) < len(full.records(STREAM)), "only the rest is read again"


def test_an_incremental_run_with_nothing_new_costs_one_request(busy: Simulator) -> None:
    # One settle lag for both runs: busy_run's own is recomputed each run, and when a minute
    # turned between the two, the second run ended up to 59 s before the first one's bookmark
    lag = {"settle_lag_minutes": (dt.datetime.now(dt.UTC) - ANCHOR) // dt.timedelta(minutes=1)}
    first = busy_run(busy, lookback_minutes=30, **lag)
    second = busy_run(busy, state=first.last_state, lookback_minutes=30, **lag)
    [request] = cdr_requests(busy)  # sized to no history: the whole lookback in one request
    assert int(request["params"]["endTimeStamp"]) - int(request["params"]["startTimeStamp"]) >= 30 * 60
    assert set(keys(second.records(STREAM))) <= set(keys(first.records(STREAM)))


def test_window_hours_bounds_every_request_and_requests_tile_the_run(busy: Simulator) -> None:
    busy_run(busy, window_hours=5)
    spans = [
        (int(r["params"]["startTimeStamp"]), int(r["params"]["endTimeStamp"])) for r in cdr_requests(busy)
    ]
    assert all(0 < end - start <= 5 * HOUR for start, end in spans)
    whole = [span for span, nxt in itertools.pairwise(spans) if nxt[0] == span[1]] + [spans[-1]]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(whole)), "whole answers tile the run"
