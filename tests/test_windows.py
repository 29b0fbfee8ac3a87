"""The window engine: bounded windows from bookmark minus lookback to now minus lag."""

from __future__ import annotations

import datetime as dt
import itertools

from tap_callcdr.core.windows import UTC, Window, WindowPlan, iso_utc, parse_instant

H = dt.timedelta(hours=1)
NOW = dt.datetime(2026, 11, 20, 12, 0, 30, 123456, tzinfo=UTC)
START = dt.datetime(2026, 11, 18, tzinfo=UTC)


def plan(**overrides: object) -> WindowPlan:
    settings: dict = {
        "start_date": START,
        "lookback": 2 * H,
        "settle_lag": dt.timedelta(minutes=5),
        "size": 24 * H,
    }
    settings.update(overrides)
    return WindowPlan(**settings)


def test_first_run_starts_at_start_date_and_tiles_to_now_minus_lag() -> None:
    windows = list(plan().windows(None, NOW))
    assert windows[0].start == START
    assert windows[-1].end == dt.datetime(2026, 11, 20, 11, 55, 30, tzinfo=UTC)
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert all(w.end - w.start <= 24 * H for w in windows)


def test_bookmark_minus_lookback() -> None:
    bookmark = dt.datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert next(plan().windows(bookmark, NOW)).start == bookmark - 2 * H


def test_lookback_never_reaches_before_start_date() -> None:
    assert next(plan().windows(START + H, NOW)).start == START


def test_nothing_settled_means_no_window() -> None:
    bookmark = NOW - dt.timedelta(minutes=1)
    assert list(plan(lookback=dt.timedelta(0)).windows(bookmark, NOW)) == []


def test_far_future_bookmark_means_no_window() -> None:
    assert list(plan().windows(NOW + 1000 * H, NOW)) == []


def test_horizon_clamps_the_start() -> None:
    windows = list(plan(horizon=24 * H).windows(None, NOW))
    assert windows[0].start > NOW - 24 * H


def test_last_second_is_inclusive_end() -> None:
    assert Window(START, START + H).last_second == START + H - dt.timedelta(seconds=1)


def test_iso_utc_is_one_format_whatever_the_zone() -> None:
    shanghai = parse_instant("2026-11-20T09:00:00+08:00")
    assert iso_utc(shanghai) == "2026-11-20T01:00:00Z"
    assert parse_instant("2026-11-20T01:00:00Z") == shanghai
    assert parse_instant("2026-11-20T01:00:00").tzinfo is UTC
