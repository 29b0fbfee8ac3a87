"""generic_cdr against the simulator, over real sockets: completeness, paging,
windows, tokens, the vendor's error codes and faults."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterator

import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.generic import GenericAccount, demo_accounts
from generic_helpers import (
    STREAM,
    bill_requests,
    expected,
    keys,
    tap_config,
)
from harness import assert_matches_truth, run_tap

from tap_callcdr.core.errors import VendorError

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


def start(accounts: list[GenericAccount]) -> Simulator:
    return Simulator(accounts, anchor=ANCHOR).start()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start(demo_accounts(calls=400, days=7))
    yield simulator
    simulator.stop()


def assert_complete(sim: Simulator, records: list[dict[str, t.Any]], *names: str) -> None:
    """Every call exactly once, with the right instants."""
    assert_matches_truth(records, expected(sim, *names), "id")


# -- completeness and shape ---------------------------------------------------------


def test_every_call_of_every_account_lands_once_in_utc(sim: Simulator) -> None:
    run = run_tap(tap_config(sim))
    assert run.error is None
    assert_complete(sim, run.records(STREAM))
    assert {r["account"] for r in run.records(STREAM)} == {"hq", "branch"}


@pytest.mark.parametrize("path", ["", "/", "/index.php"])
def test_api_url_with_or_without_index_php(sim: Simulator, path: str) -> None:
    """Login and GetBill both go to api_url as given: `.../index.php` must not become
    `.../index.php/`, which the vendor answers with 404."""
    config = tap_config(sim)
    for account in config["generic_accounts"]:
        account["api_url"] = f"{sim.url}/generic{path}"
    run = run_tap(config)
    assert run.error is None, run.error
    assert_complete(sim, run.records(STREAM))
    assert {r["path"] for r in sim.requests} == {f"/generic{path}"}


def test_nine_oclock_shanghai_is_one_oclock_utc() -> None:
    with start(demo_accounts(["hq"], calls=0)) as sim:
        sim.generic.add_calls("hq", 1, dt.datetime(2026, 11, 20, 9), dt.datetime(2026, 11, 20, 9))
        config = tap_config(sim, start_date="2026-11-19T00:00:00Z")
        [record] = run_tap(config).records(STREAM)
    assert record["starttime"] == "2026-11-20T01:00:00Z"


def test_account_zone_is_honoured() -> None:
    with start(demo_accounts(["ny"], calls=50, timezone="America/New_York")) as sim:
        run = run_tap(tap_config(sim))
        assert_complete(sim, run.records(STREAM))


def test_traps_are_avoided_syncflag_3_callmethod_0(sim: Simulator) -> None:
    run = run_tap(tap_config(sim, "hq"))
    methods = {r["callmethod"] for r in run.records(STREAM)}
    assert methods - {3}, "calls not placed by the API were dropped"
    for request in bill_requests(sim):
        params = request["params"]
        assert (params["syncflag"], params["callmethod"], params["direction"]) == ("3", "0", "3")
        assert params["itemsperpage"] == "1000"
    # The tap consumed nothing: another reader's "unqueried" view is untouched.
    assert not sim.generic._state("hq").queried


def test_v1_and_v2_records_land_in_one_shape() -> None:
    accounts = [*demo_accounts(["old"], doc_version="v1"), *demo_accounts(["new"])]
    with start(accounts) as sim:
        records = run_tap(tap_config(sim)).records(STREAM)
        assert_complete(sim, records)
    by_account = {r["account"]: r for r in records if r["answertime"] is None}
    assert by_account["old"]["disnumber"] and by_account["new"]["disnumber"]
    assert set(by_account["old"]) == set(by_account["new"])
    assert all(isinstance(r["duration"], int) and isinstance(r["id"], int) for r in records)


def test_filters_are_passed_through(sim: Simulator) -> None:
    config = tap_config(sim, "hq")
    config["generic_accounts"][0]["extnumber"] = "8001,8002"
    records = run_tap(config).records(STREAM)
    assert {r["extnumber"] for r in records} <= {"8001", "8002"}
    assert bill_requests(sim)[0]["params"]["extnumber"] == "8001,8002"


# -- paging ---------------------------------------------------------------------------


@pytest.mark.parametrize(("calls", "pages"), [(0, 1), (1, 1), (1000, 1), (1001, 2), (2500, 3)])
def test_paging_reads_exactly_the_pages_needed(calls: int, pages: int) -> None:
    with start(demo_accounts(["hq"], calls=calls, days=1)) as sim:
        config = tap_config(sim, days=2, window_hours=24 * 30)
        run = run_tap(config)
        assert run.error is None
        assert_complete(sim, run.records(STREAM))
        assert len(bill_requests(sim)) == pages


def test_repeated_page_fails_loudly_instead_of_looping() -> None:
    with start(demo_accounts(["hq"], calls=1500, days=1)) as sim:
        sim.faults.add("repeat_page", after=1)
        run = run_tap(tap_config(sim, days=2, window_hours=24 * 30), expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert "repeats the previous page" in str(run.error)


# -- windows, lookback, settle lag ----------------------------------------------------------


def test_windows_are_bounded_and_tile_the_range(sim: Simulator) -> None:
    run_tap(tap_config(sim, "hq", window_hours=6))
    spans = [(r["params"]["starttime"], r["params"]["endtime"]) for r in bill_requests(sim)]
    starts = [dt.datetime.fromisoformat(s) for s, _ in spans]
    ends = [dt.datetime.fromisoformat(e) for _, e in spans]
    assert all(e - s < dt.timedelta(hours=6) for s, e in zip(starts, ends, strict=True))
    # Inclusive ends one second before the next window: no gap, no overlap.
    assert all(n - e == dt.timedelta(seconds=1) for e, n in zip(ends, starts[1:], strict=False))


def test_bookmark_is_per_account_and_state_follows_records(sim: Simulator) -> None:
    run = run_tap(tap_config(sim))
    partitions = run.last_state["bookmarks"][STREAM]["partitions"]
    assert {p["context"]["account"] for p in partitions} == {"hq", "branch"}
    seen: set[tuple[str, int]] = set()
    for message in run.messages:  # a STATE never claims a window whose records are unsent
        if message["type"] == "RECORD":
            seen.add((message["record"]["account"], message["record"]["id"]))
        if message["type"] == "STATE":
            for partition in message["value"]["bookmarks"][STREAM]["partitions"]:
                mark = partition.get("replication_key_value")
                account = partition["context"]["account"]
                due = {k for k, v in expected(sim, account).items() if v["starttime"] < mark}
                assert due <= seen


def test_second_run_reads_from_bookmark_minus_lookback_and_gets_new_calls(sim: Simulator) -> None:
    config = tap_config(sim, "hq", lookback_minutes=60)
    first = run_tap(config)
    bookmark = first.last_state["bookmarks"][STREAM]["partitions"][0]["replication_key_value"]
    sim.clear_requests()
    mark = dt.datetime.fromisoformat(bookmark)
    late = sim.generic.add_calls("hq", 3, mark - dt.timedelta(minutes=50), mark)
    second = run_tap(config, state=first.last_state)
    got = set(keys(second.records(STREAM)))
    assert {("hq", c["id"]) for c in late} <= got
    window_start = dt.datetime.fromisoformat(bill_requests(sim)[0]["params"]["starttime"])
    assert window_start == (mark - dt.timedelta(minutes=60)).astimezone(
        dt.timezone(dt.timedelta(hours=8))
    ).replace(tzinfo=None)
    # Only the lookback hour is re-read, not the history.
    old = set(keys(first.records(STREAM)))
    assert len(got & old) < len(old) / 10


@pytest.mark.parametrize(("lookback", "caught"), [(0, False), (120, True)])
def test_lookback_catches_calls_whose_records_land_late(
    sim: Simulator, lookback: int, caught: bool
) -> None:
    config = tap_config(sim, "hq", lookback_minutes=lookback)
    first = run_tap(config)
    now = dt.datetime.now(dt.UTC)  # calls of the last hour whose records land only now
    sim.generic.add_calls("hq", 4, now - dt.timedelta(minutes=60), now - dt.timedelta(minutes=1))
    second = run_tap(config, state=first.last_state)
    late = set(expected(sim, "hq")) - set(keys(first.records(STREAM)))
    assert len(late) == 4
    assert (late <= set(keys(second.records(STREAM)))) is caught


def test_far_future_state_returns_nothing(sim: Simulator) -> None:
    state = {
        "bookmarks": {
            STREAM: {
                "partitions": [
                    {
                        "context": {"account": "hq"},
                        "replication_key": "starttime",
                        "replication_key_value": "2099-01-01T00:00:00Z",
                    }
                ]
            }
        }
    }
    run = run_tap(tap_config(sim, "hq"), state=state)  # raises if the run did not finish cleanly
    assert run.records(STREAM) == []
    assert bill_requests(sim) == []
    assert run.last_state == state, "the bookmark stays where it was"


def test_settle_lag_defers_the_newest_calls(sim: Simulator) -> None:
    lag = 24 * 60
    run = run_tap(tap_config(sim, "hq", settle_lag_minutes=lag))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=lag)
    assert run.records(STREAM)
    assert all(dt.datetime.fromisoformat(r["starttime"]) < cutoff for r in run.records(STREAM))
