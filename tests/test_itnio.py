"""ITNIO streams against the simulator, over real sockets: the simulator's protocol, every
call exactly once in UTC with exact money, signatures, status codes, faults, windows and the
two-month horizon (with a property test of every window the tap sends)."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import logging
import threading
import time
import typing as t
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import requests
from callcdr_simulator import Simulator
from callcdr_simulator.cli import build_parser, build_simulator
from callcdr_simulator.itnio import GROUP, SIP, Query, horizon_start, itnio_demo_accounts, sign
from harness import assert_matches_truth, run_cli, run_tap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itnio_helpers import (
    GROUP_STREAM,
    SIP_STREAM,
    bookmark,
    expected,
    keys,
    queries,
    run_exact,
    state_for,
    tap_config,
)
from singer_sdk.exceptions import RetriableAPIError

from tap_callcdr.core.errors import (
    ConfigError,
    IncompleteAnswerError,
    MalformedResponseError,
    PaginationError,
    RenewalRejectedError,
    VendorError,
)
from tap_callcdr.core.stream import WINDOW_KEY
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.vendors.itnio import auth
from tap_callcdr.vendors.itnio.records import text_before

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def start(**overrides: t.Any) -> Simulator:
    names = overrides.pop("names", ("intl", "latam"))
    accounts = itnio_demo_accounts(names, **overrides)
    return Simulator(accounts, anchor=ANCHOR).start()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start(calls=250, group_calls=80, days=3)
    yield simulator
    simulator.stop()


@pytest.fixture
def one() -> Iterator[Simulator]:
    simulator = start(names=("intl",), calls=120, group_calls=40, days=3)
    yield simulator
    simulator.stop()


def assert_complete(sim: Simulator, run: t.Any, *names: str, **kw: t.Any) -> None:
    """Every call of both streams exactly once, with the right instants."""
    assert run.error is None, run.error
    for stream in (SIP_STREAM, GROUP_STREAM):
        truth = expected(sim, stream, *names, **kw)
        assert truth, "the simulator generated no calls"
        assert_matches_truth(run.records(stream), truth, "voiceId")


# -- the simulator's protocol ---------------------------------------------------------------


def call(
    sim: Simulator,
    body: t.Any,
    endpoint: str = SIP,
    *,
    account: str = "intl",
    secret: str | None = None,
    stamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, t.Any]:
    acct = sim.itnio.account(account)
    timestamp = str(int(time.time()) if stamp is None else stamp)
    signed = {
        "Api-Key": acct.api_key,
        "Timestamp": timestamp,
        "Sign": sign(acct.api_key, acct.api_secret if secret is None else secret, timestamp),
    }
    response = requests.post(
        f"{sim.url}/itnio/voice/{endpoint}",
        json=body,
        headers={**signed, **(headers or {})},
        timeout=5,
    )
    assert response.status_code == 200
    return t.cast("dict[str, t.Any]", response.json())


def days_ago(days: float) -> str:
    return (ANCHOR - dt.timedelta(days=days)).isoformat()


def window(days: float = 30, **params: t.Any) -> dict[str, t.Any]:
    end = ANCHOR.astimezone(SHANGHAI)
    span = {
        "strTime": (end - dt.timedelta(days=days)).isoformat(),
        "endTime": end.isoformat(),
        "sipGroupName": "",
        "phoneName": "",
    }
    return {"current": 1, "size": 100, "params": {**span, **params}}


def test_simulator_serves_the_documented_envelope(one: Simulator) -> None:
    body = call(one, window())
    assert body["status"] == "0" and body["reason"] == "success"
    data = body["data"]
    total = len(one.itnio.truth("intl", SIP))
    assert (data["total"], data["size"], data["current"]) == (total, 100, 1)
    assert data["pages"] == -(-total // 100) and data["searchCount"] is True
    times = [r["callTime"] for r in data["records"]]
    assert times == sorted(times, reverse=True), "newest first"
    group = call(one, window(), GROUP)["data"]["records"][0]
    assert {"voiceFileId", "feedbackValue", "calledInfo", "baseCost"} <= set(group)


def test_simulator_bounds_are_inclusive_and_filters_exact(one: Simulator) -> None:
    target = one.itnio.truth("intl", SIP)[5]
    exact = window(strTime=target["callTime"], endTime=target["callTime"])
    assert target["voiceId"] in {r["voiceId"] for r in call(one, exact)["data"]["records"]}
    phone = window(phoneName=target["phoneName"])
    assert {r["phoneName"] for r in call(one, phone)["data"]["records"]} == {target["phoneName"]}


@pytest.mark.parametrize(
    "filters", [set(), {"sipGroupName"}, {"phoneName"}, {"sipGroupName", "phoneName"}]
)
def test_simulator_pages_a_filtered_window_newest_first_and_ties_stay_put(
    one: Simulator, filters: set[str]
) -> None:
    """Pages tile exactly the window's matching calls (bounds inclusive), newest first; calls
    of the same second keep one order (the reverse of how they were added) on every page."""
    tie = ANCHOR - dt.timedelta(days=1)
    added = [r["voiceId"] for r in one.itnio.add_calls("intl", 4, tie, tie)]  # one second, at the end
    truth = one.itnio.truth("intl", SIP)  # oldest first, same-second calls as added
    when = [dt.datetime.fromisoformat(r["callTime"]) for r in truth]
    tied = [r for r, moment in zip(truth, when, strict=True) if moment == tie]
    low = when[5]  # a call exactly at the window's start; the five before it are outside
    wanted = {name: tied[-1][name] for name in filters}
    expect = [
        r["voiceId"]
        for r, moment in reversed(list(zip(truth, when, strict=True)))
        if low <= moment <= tie and all(r[name] == value for name, value in wanted.items())
    ]
    assert len(expect) > 3 and tied[-1]["voiceId"] in expect and expect[-1] != tied[-1]["voiceId"]
    body = window(strTime=low.isoformat(), endTime=tie.isoformat(), **wanted)
    got, pages = [], -(-len(expect) // 3)
    for current in range(1, pages + 2):  # one past the last page: empty
        data = call(one, {**body, "current": current, "size": 3})["data"]
        assert (data["total"], data["pages"], data["current"]) == (len(expect), pages, current)
        assert len(data["records"]) == (0 if current > pages else min(3, len(expect) - len(got)))
        got += [r["voiceId"] for r in data["records"]]
    assert got == expect
    assert [v for v in got if v in added] == [v for v in reversed(added) if v in expect]
    one.faults.add("repeat_page", vendor="itnio")
    repeated = call(one, {**body, "current": 2, "size": 3})["data"]["records"]
    assert [r["voiceId"] for r in repeated] == expect[:3]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (window(days=31), "0"),
        (window(days=31 + 1 / 86400), "-25"),
        (window(days=61), "-25"),
        (window(strTime=days_ago(63), endTime=days_ago(62)), "-25"),  # before "two months ago"
        (window(strTime="2026-01-01T00:00:00"), "-22"),  # no offset
        (window(endTime="2022-04-31T00:00:00+08:00"), "-22"),  # the doc's PHP example
        ({**window(), "size": 101}, "-22"),
        ({**window(), "size": 0}, "-22"),
        ({**window(), "current": "1"}, "-22"),
        ({"current": 1, "size": 10}, "-22"),
        (window(strTime=ANCHOR.isoformat(), endTime=(ANCHOR - dt.timedelta(1)).isoformat()), "-22"),
    ],
)
def test_simulator_limits(one: Simulator, body: dict[str, t.Any], status: str) -> None:
    answer = call(one, body)
    assert answer["status"] == status, answer
    assert status == "0" or answer["data"] is None


def test_simulator_defaults_to_ten_per_page(one: Simulator) -> None:
    body = window()
    del body["size"], body["current"]
    data = call(one, body)["data"]
    assert (data["size"], data["current"], len(data["records"])) == (10, 1, 10)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"secret": "wrong"}, "-1"),
        ({"headers": {"Sign": "0" * 32}}, "-1"),
        ({"headers": {"Api-Key": "nobody"}}, "-1"),
        ({"stamp": int(time.time()) - 301}, "-16"),
        ({"stamp": int(time.time()) * 1000}, "-16"),  # milliseconds, a classic client bug
    ],
)
def test_simulator_checks_signature_and_timestamp(
    one: Simulator, kwargs: dict[str, t.Any], status: str
) -> None:
    assert call(one, window(), **kwargs)["status"] == status


def test_simulator_wants_lowercase_md5_and_logs_no_sign(one: Simulator) -> None:
    acct, stamp = one.itnio.account("intl"), str(int(time.time()))
    upper = sign(acct.api_key, acct.api_secret, stamp).upper()
    assert call(one, window(), headers={"Timestamp": stamp, "Sign": upper})["status"] == "-1"
    assert {r["params"]["Sign"] for r in one.requests} == {"***"}


def test_simulator_horizon_is_two_calendar_months_in_its_zone() -> None:
    march_first = dt.datetime(2027, 3, 1, 12, tzinfo=SHANGHAI)
    assert horizon_start(march_first) == dt.datetime(2027, 1, 1, 12, tzinfo=SHANGHAI)
    may_31 = dt.datetime(2027, 4, 30, 16, 30, tzinfo=dt.UTC)  # May 1st 00:30 in Shanghai
    assert horizon_start(may_31) == dt.datetime(2027, 3, 1, 0, 30, tzinfo=SHANGHAI)


def test_simulator_ip_whitelist_and_faults_speak_the_envelope() -> None:
    with start(names=("intl",), calls=5, group_calls=1, ip_whitelist=["10.1.2.3"]) as s:
        assert call(s, window()) == {"status": "-2", "reason": "ip限制", "data": None}
    with start(names=("intl",), calls=5, group_calls=1) as s:
        s.faults.add("vendor_error", vendor="itnio", code=-18)
        s.faults.add("expire_tokens", vendor="itnio", after=1)
        assert call(s, window())["status"] == "-18"
        assert call(s, window())["status"] == "-16"
        assert call(s, window())["status"] == "0"


def test_simulator_cli_flags_and_control_api() -> None:
    flags = ["--port", "0", "--calls", "30", "--itnio-accounts", "a,b", "--itnio-tolerance", "5"]
    sim = build_simulator(build_parser().parse_args(flags))
    assert sim.itnio.accounts() == ["a", "b"] and sim.itnio.timestamp_tolerance == 5
    with sim:
        truth = requests.get(
            f"{sim.url}/_control/truth", params={"vendor": "itnio", "account": "a"}, timeout=5
        ).json()
    assert len(truth) == 30 + 10  # SIP records, then group records


# -- completeness, times, money ---------------------------------------------------------------


def test_every_call_of_both_streams_and_every_account_lands_once_in_utc(sim: Simulator) -> None:
    run = run_tap(tap_config(sim))
    assert_complete(sim, run)
    assert {r["account"] for r in run.records(SIP_STREAM)} == {"intl", "latam"}
    record = run.records(GROUP_STREAM)[0]
    assert {"voiceFileId", "feedbackValue", "calledInfo", "baseCost"} <= set(record)
    assert all(isinstance(r["callDuration"], int) for r in run.records(SIP_STREAM))


def test_times_are_read_with_the_offset_they_carry() -> None:
    """The vendor writes New York offsets; the account's zone setting does not matter."""
    new_york = ZoneInfo("America/New_York")
    nine = (ANCHOR - dt.timedelta(days=2)).astimezone(new_york).replace(hour=9, minute=0)
    with start(names=("ny",), calls=0, group_calls=0, timezone="America/New_York") as sim:
        sim.itnio.add_calls("ny", 1, nine, nine)
        [raw] = sim.itnio.truth("ny")
        assert raw["callTime"] == nine.isoformat()  # e.g. 2026-11-20T09:00:00-05:00
        config = tap_config(sim)
        config["itnio_accounts"][0]["timezone"] = "Asia/Shanghai"
        [record] = run_tap(config).records(SIP_STREAM)
    utc_nine = nine.astimezone(dt.UTC)
    assert utc_nine.hour in (13, 14)  # 9:00 EDT or EST
    assert record["callTime"] == utc_nine.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_empty_times_become_null(sim: Simulator) -> None:
    records = run_tap(tap_config(sim, "intl")).records(SIP_STREAM)
    unanswered = [r for r in records if r["terminationCode"] != "1000"]
    assert unanswered and all(r["answerTime"] is None for r in unanswered)
    assert any(r["ringingTime"] is None for r in records)
    assert all(r["hangupTime"] for r in records)


def test_money_keeps_every_digit(one: Simulator) -> None:
    calls = one.itnio._state("intl").calls
    calls[SIP][0].record["cost"] = "12345678901234.123456789012"  # beyond a float
    calls[GROUP][0].record["baseCost"] = "0.100000000000000000001"
    run = run_exact(tap_config(one))
    assert run.error is None
    for stream, endpoint in ((SIP_STREAM, SIP), (GROUP_STREAM, GROUP)):
        truth = {r["voiceId"]: r for r in one.itnio.truth("intl", endpoint)}
        for record in run.records(stream):
            for name in ("cost", "rate", "baseCost") if endpoint == GROUP else ("cost", "rate"):
                assert isinstance(record[name], decimal.Decimal | int)  # never a float
                assert str(record[name]) == truth[record["voiceId"]][name]  # "0.0450" stays
    schema = TapCallCDR(config=tap_config(one)).streams[SIP_STREAM].schema
    assert schema["properties"]["cost"]["type"] == ["number", "null"]


def test_sip_filters_are_sent_and_group_stream_sends_none(one: Simulator) -> None:
    phone = one.itnio.truth("intl", SIP)[0]["phoneName"]
    config = tap_config(one)
    config["itnio_accounts"][0]["phone_name"] = phone
    run = run_tap(config)
    assert run.records(SIP_STREAM) and {r["phoneName"] for r in run.records(SIP_STREAM)} == {phone}
    assert {q["params"]["phoneName"] for q in queries(one, SIP_STREAM)} == {phone}
    assert all("phoneName" not in q["params"] for q in queries(one, GROUP_STREAM))
    assert len(run.records(GROUP_STREAM)) == len(one.itnio.truth("intl", GROUP))


def test_a_call_on_a_window_boundary_is_emitted_once(one: Simulator) -> None:
    """Inclusive endTime serves it to both windows; the tap emits it once, loses nothing."""
    boundary = (ANCHOR - dt.timedelta(days=2)).replace(hour=0, minute=0)
    [raw] = one.itnio.add_calls("intl", 1, boundary, boundary)
    config = tap_config(one, start_date=(boundary - dt.timedelta(days=1)).isoformat())
    run = run_tap(config)
    ids = [r["voiceId"] for r in run.records(SIP_STREAM)]
    assert ids.count(raw["voiceId"]) == 1
    assert_complete(one, run, since=boundary - dt.timedelta(days=1))


# -- signatures and the clock ---------------------------------------------------------------


def test_every_attempt_is_signed_afresh(one: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(10**6))
    monkeypatch.setattr(auth, "epoch_seconds", lambda: time.time() + next(ticks))
    one.faults.add("http_500", vendor="itnio")
    run = run_tap(tap_config(one))
    assert_complete(one, run)
    failed, retried = queries(one)[:2]
    assert failed["fault"] == "http_500" and retried["fault"] is None
    assert failed["params"]["Timestamp"] != retried["params"]["Timestamp"]


# One window per stream: the group stream (40 calls, 1 page) runs first, then SIP (120, 2 pages).
WIDE = {"days": 4, "window_hours": 24 * 30}


@pytest.mark.parametrize(
    "fault", [{"kind": "vendor_error", "code": -16}, {"kind": "expire_tokens"}]
)
def test_timestamp_expired_once_is_resigned_and_retried(
    one: Simulator, caplog: pytest.LogCaptureFixture, fault: dict[str, t.Any]
) -> None:
    one.faults.add(vendor="itnio", after=1, **fault)
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(one, **WIDE))
    assert_complete(one, run)
    assert len(queries(one)) == 3 + 1
    assert "clock agrees with the vendor's" in caplog.text
    assert "re-signing and retrying once" in caplog.text


def test_timestamp_expired_twice_in_a_row_is_retried_after_a_wait(one: Simulator) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=-16, times=2)
    run = run_tap(tap_config(one, **WIDE))
    assert_complete(one, run)
    assert len(queries(one)) == 3 + 2


def test_timestamp_expired_on_every_try_stops_after_max_retries(one: Simulator) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=-16, times=-1)
    run = run_tap(tap_config(one, **WIDE), expect_error=RenewalRejectedError)  # max_retries 3
    assert "again after re-signing" in str(run.error)
    assert str(run.error).startswith("itnio_group_cdr account 'intl': vendor says the request")
    assert len(queries(one)) == 3 + 1


def test_a_skewed_clock_is_corrected_from_the_vendors_date_header(
    one: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(auth, "epoch_seconds", lambda: time.time() + 3600)
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(one, **WIDE))
    assert_complete(one, run)
    assert "clock is 3600s ahead of the vendor's" in caplog.text
    # One -16 per stream (each stream signs for itself), then all on the vendor's clock.
    assert len(queries(one)) == 3 + 2


def test_wrong_secret_stops_at_once_naming_the_account(one: Simulator) -> None:
    config = tap_config(one)
    config["itnio_accounts"][0]["api_secret"] = "not-the-secret"
    run = run_tap(config, expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert "api_key and api_secret" in str(run.error) and "account 'intl'" in str(run.error)
    assert len(queries(one)) == 1


# -- status codes and faults -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (-1, "check the account's api_key and api_secret (status -1"),
        (-2, "IP whitelist in the ITNIO console (status -2"),
        (-22, 'this is a tap bug, please report it with this line. Request body: {"current": 1'),
        (-25, "vendor refused the window strTime="),
        (-99, "unexpected vendor status (status -99"),
    ],
)
def test_fatal_codes_stop_at_once_with_one_clear_line(
    one: Simulator, code: int, hint: str
) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=code)
    run = run_tap(tap_config(one), expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert hint in str(run.error) and "\n" not in str(run.error)
    assert len(queries(one)) == 1, "a fatal code must not be retried"
    assert run.records() == []


def test_range_refusal_names_the_window(one: Simulator) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=-25)
    run = run_tap(tap_config(one), expect_error=VendorError)
    sent = queries(one)[0]["params"]
    assert f"strTime={sent['strTime']} endTime={sent['endTime']}" in str(run.error)


def test_system_error_is_retried_then_given_up(one: Simulator) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=-18, times=2)
    assert_complete(one, run_tap(tap_config(one)))
    one.faults.add("vendor_error", vendor="itnio", code=-18, times=-1)
    run = run_tap(tap_config(one, max_retries=2), expect_error=RetriableAPIError)
    assert isinstance(run.error, RetriableAPIError)


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_429", "truncate"])
def test_transient_faults_are_retried_and_lose_nothing(one: Simulator, kind: str) -> None:
    one.faults.add(kind, vendor="itnio", after=1, times=2, retry_after=0)
    assert_complete(one, run_tap(tap_config(one)))
    assert len([q for q in queries(one) if q["fault"] == kind]) == 2


def test_a_gateway_page_that_persists_stops_with_one_line(one: Simulator) -> None:
    one.faults.add("malformed", vendor="itnio", times=-1)  # a 2xx HTML page: retried first
    run = run_tap(tap_config(one), expect_error=IncompleteAnswerError)
    assert isinstance(run.error, IncompleteAnswerError)
    assert "not JSON" in str(run.error) and "\n" not in str(run.error)


def test_a_bad_field_stops_naming_record_and_field(one: Simulator) -> None:
    one.itnio._state("intl").calls[SIP][-1].record["cost"] = "1,50"
    run = run_tap(tap_config(one), expect_error=MalformedResponseError)
    assert isinstance(run.error, MalformedResponseError)
    assert "field 'cost' has '1,50'" in str(run.error)


# -- paging --------------------------------------------------------------------------------


@pytest.mark.parametrize(("calls", "pages"), [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3)])
def test_paging_reads_exactly_the_pages_needed(calls: int, pages: int) -> None:
    with start(names=("intl",), calls=calls, group_calls=0, days=1) as sim:
        run = run_tap(tap_config(sim, days=2, window_hours=24 * 30))
        assert run.error is None
        assert sorted(keys(run.records(SIP_STREAM))) == sorted(expected(sim, SIP_STREAM))
        sent = queries(sim, SIP_STREAM)
        assert len(sent) == pages
        # each page once; pages after the first are asked at the same time (pageahead.py), so
        # the vendor may log them in any order
        assert sorted(q["params"]["current"] for q in sent) == list(range(1, pages + 1))
        assert {q["params"]["size"] for q in sent} == {100}


def test_repeated_page_fails_loudly_instead_of_looping() -> None:
    with start(names=("intl",), calls=150, group_calls=0, days=1) as sim:
        sim.faults.add("repeat_page", vendor="itnio", after=2)  # group's page 1, SIP's page 1
        run = run_tap(tap_config(sim, days=2, window_hours=24 * 30), expect_error=PaginationError)
    assert isinstance(run.error, PaginationError)
    assert "repeats the previous page" in str(run.error)


# -- windows, bookmarks, horizon ---------------------------------------------------------------


def spans(sim: Simulator, stream: str = SIP_STREAM) -> list[tuple[dt.datetime, dt.datetime]]:
    sent = [q["params"] for q in queries(sim, stream) if q["params"]["current"] == 1]
    return [
        (dt.datetime.fromisoformat(p["strTime"]), dt.datetime.fromisoformat(p["endTime"]))
        for p in sent
    ]


def test_windows_never_exceed_31_days_and_tile_the_range() -> None:
    with start(names=("intl",), calls=200, group_calls=20, days=50) as sim:
        run = run_tap(tap_config(sim, days=50, window_hours=24 * 40))
        assert_complete(sim, run)
        sent = spans(sim)
    assert len(sent) == 2
    assert all(end - begin <= dt.timedelta(days=31) for begin, end in sent)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(sent)), "no gap, no overlap"
    assert sent[0][0].utcoffset() == dt.timedelta(hours=8), "sent in the account's zone"


def test_start_before_the_horizon_is_clamped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with start(names=("intl",), calls=300, group_calls=30, days=70) as sim:
        with caplog.at_level(logging.WARNING):
            run = run_tap(tap_config(sim, days=365, window_hours=24 * 31))
        oldest = dt.datetime.now(dt.UTC) - dt.timedelta(days=58)
        assert_complete(sim, run, since=oldest + dt.timedelta(seconds=5))
        assert spans(sim)[0][0] >= oldest - dt.timedelta(seconds=5)
    assert "are gone from the vendor and cannot be extracted" in caplog.text
    assert "account 'intl'" in caplog.text


def test_bookmark_is_per_account_and_state_follows_records(sim: Simulator) -> None:
    run = run_tap(tap_config(sim))
    partitions = run.last_state["bookmarks"][SIP_STREAM]["partitions"]
    assert {p["context"]["account"] for p in partitions} == {"intl", "latam"}
    seen: set[tuple[str, str]] = set()
    for message in run.messages:  # a STATE never claims a window whose records are unsent
        if message["type"] == "RECORD" and message["stream"] == SIP_STREAM:
            seen.add((message["record"]["account"], message["record"]["voiceId"]))
        if message["type"] == "STATE":
            for partition in message["value"]["bookmarks"].get(SIP_STREAM, {}).get(
                "partitions", []
            ):
                mark, account = partition["replication_key_value"], partition["context"]["account"]
                truth = expected(sim, SIP_STREAM, account)
                assert {k for k, v in truth.items() if v["callTime"] < mark} <= seen


def test_second_run_reads_from_bookmark_minus_lookback_and_gets_new_calls(one: Simulator) -> None:
    config = tap_config(one, lookback_minutes=60)
    first = run_tap(config)
    mark = dt.datetime.fromisoformat(bookmark(first, SIP_STREAM, "intl"))
    one.clear_requests()
    late = one.itnio.add_calls("intl", 3, mark - dt.timedelta(minutes=50), mark)
    second = run_tap(config, state=first.last_state)
    got = set(keys(second.records(SIP_STREAM)))
    assert {("intl", c["voiceId"]) for c in late} <= got
    assert spans(one)[0][0] == mark - dt.timedelta(minutes=60)
    assert len(got & set(keys(first.records(SIP_STREAM)))) < len(first.records(SIP_STREAM)) / 10


def test_far_future_state_returns_nothing(one: Simulator) -> None:
    state = state_for(SIP_STREAM, "intl", "2099-01-01T00:00:00Z")
    run = run_tap(tap_config(one), state=state)  # raises if the run did not finish cleanly
    assert run.records(SIP_STREAM) == [] and queries(one, SIP_STREAM) == []
    assert bookmark(run, SIP_STREAM, "intl") == "2099-01-01T00:00:00Z"
    # the group stream, with no bookmark, still read everything
    assert len(run.records(GROUP_STREAM)) == len(one.itnio.truth("intl", GROUP))


def test_settle_lag_defers_the_newest_calls(one: Simulator) -> None:
    run = run_tap(tap_config(one, settle_lag_minutes=24 * 60))
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run.records(SIP_STREAM)
    assert all(r["callTime"] < cutoff for r in run.records())


# -- the property: no window the tap sends trips the vendor's limits ----------------------------

NOW = st.datetimes(
    min_value=dt.datetime(2026, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    now=NOW,
    start_days=st.integers(min_value=0, max_value=800),
    bookmark_days=st.none() | st.integers(min_value=-5, max_value=400),
    lookback=st.integers(min_value=0, max_value=60 * 24 * 90),
    window_hours=st.integers(min_value=1, max_value=24 * 400),
    settle=st.integers(min_value=0, max_value=600),
)
def test_every_window_sent_is_within_31_days_and_the_horizon(
    now: dt.datetime,
    start_days: int,
    bookmark_days: int | None,
    lookback: int,
    window_hours: int,
    settle: int,
) -> None:
    account = {"name": "intl", "api_url": "http://127.0.0.1:9/", "api_key": "k", "api_secret": "s"}
    config = {
        "start_date": (now - dt.timedelta(days=start_days, seconds=7)).isoformat(),
        "lookback_minutes": lookback,
        "window_hours": window_hours,
        "settle_lag_minutes": settle,
        "itnio_accounts": [account],
    }
    mark = None if bookmark_days is None else now - dt.timedelta(days=bookmark_days, seconds=3)
    state = None if mark is None else state_for(SIP_STREAM, "intl", mark.isoformat())
    stream = TapCallCDR(config=config, state=state).streams[SIP_STREAM]
    stream.now = lambda: now  # type: ignore[method-assign]
    sent: list[dict[str, t.Any]] = []

    def capture(account: t.Any, window: t.Any) -> Iterator[dict]:
        sent.append(stream.prepare_request_payload({**account.context, WINDOW_KEY: window}, None))
        yield from ()

    stream.records_in_window = capture  # type: ignore[method-assign]
    list(stream.get_records({"account": "intl"}))
    for body in sent:
        query = Query.from_body(json.dumps(body).encode())
        query.check_range(now)  # the simulator's own -22/-25 rules
        assert query.end - query.start <= dt.timedelta(days=31)
        assert query.start >= horizon_start(now)
    ends = [Query.from_body(json.dumps(b).encode()).end for b in sent]
    assert ends == sorted(ends)


# -- config and what a user sees ------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["api_key", "api_secret"])
def test_missing_credentials_name_the_setting(one: Simulator, setting: str) -> None:
    config = tap_config(one)
    del config["itnio_accounts"][0][setting]
    with pytest.raises(ConfigError, match=rf"itnio_accounts\[0\]\.{setting}"):
        TapCallCDR(config=config, validate_config=False).discover_streams()


def test_secret_is_declared_secret() -> None:
    schema = TapCallCDR.config_jsonschema["properties"]["itnio_accounts"]["items"]["properties"]
    assert schema["api_secret"].get("secret") is True


def test_cli_reports_a_vendor_error_as_one_line_without_traceback(one: Simulator) -> None:
    one.faults.add("vendor_error", vendor="itnio", code=-2)
    run = run_cli(tap_config(one))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "IP whitelist" in line]
    assert len(lines) == 1 and "itnio_group_cdr account 'intl'" in lines[0]


def test_secrets_and_signatures_never_reach_logs_or_records(one: Simulator) -> None:
    one.faults.add("http_500", vendor="itnio", after=1)
    config = tap_config(one)
    run = run_cli(config, env={"LOGLEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr
    assert " DEBUG " in run.stderr
    output = run.stderr + "\n".join(map(str, run.messages))
    assert config["itnio_accounts"][0]["api_secret"] not in output
    assert "Sign" not in output
    assert not {"api_secret", "Sign"} & {k for r in run.records() for k in r}


def test_api_url_defaults_to_the_public_endpoint() -> None:
    account = {"name": "hq", "api_key": "k", "api_secret": "s"}
    tap = TapCallCDR(config={"start_date": "2026-01-01T00:00:00Z", "itnio_accounts": [account]})
    urls = {tap.streams[name].get_url({"account": "hq"}) for name in ("itnio_sip_cdr", "itnio_group_cdr")}
    assert urls == {
        "https://api.itniotech.com/voice/recordSipQuery",
        "https://api.itniotech.com/voice/recordGroupQuery",
    }


# -- pages asked ahead (fastpath/pageahead.py) -------------------------------------------------


class PagesInFlight:
    """Wraps requests.Session.send: counts the tap's requests in flight (`most`: the most at
    once) and holds the first `together` requests for pages after the first until all of them
    are sent. A tap that asks that many pages ahead is held only until it has; one that does
    not shows as a smaller `most` (the hold gives up after 10 s). No timing is measured."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, together: int) -> None:
        self.together, self.held, self.now, self.most = together, 0, 0, 0
        self._changed = threading.Condition()
        send = requests.Session.send

        def counted(session: requests.Session, request: t.Any, **kwargs: t.Any) -> t.Any:
            self._arrive(json.loads(request.body or b"{}").get("current", 1))
            try:
                return send(session, request, **kwargs)
            finally:
                with self._changed:
                    self.now -= 1

        monkeypatch.setattr(requests.Session, "send", counted)

    def _arrive(self, page: int) -> None:
        with self._changed:
            self.now += 1
            self.most = max(self.most, self.now)
            if page >= 2 and self.held < self.together:
                self.held += 1
                self._changed.notify_all()
                self._changed.wait_for(lambda: self.held >= self.together, timeout=10)


def test_a_windows_pages_are_asked_ahead_and_read_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """One by one and three at a time: the same pages asked once each, the same records in
    the same order; only the second has requests in flight together."""
    simulator = start(names=("intl",), calls=900, group_calls=0, days=1)
    runs, overlap, pages = {}, {}, {}
    try:
        for in_flight in (1, 3):
            config = tap_config(simulator, days=2, window_hours=48)
            config["itnio_accounts"][0]["pages_in_flight"] = in_flight
            simulator.clear_requests()
            counter = PagesInFlight(monkeypatch, together=in_flight)
            runs[in_flight] = run_tap(config)
            overlap[in_flight] = counter.most
            pages[in_flight] = [q["params"]["current"] for q in queries(simulator, SIP_STREAM)]
    finally:
        simulator.stop()
    assert runs[1].error is None and runs[3].error is None
    assert sorted(pages[3]) == sorted(pages[1]) and max(pages[1]) >= 8  # the same requests
    assert overlap == {1: 1, 3: 3}
    ids = {n: [r["voiceId"] for r in run.records(SIP_STREAM)] for n, run in runs.items()}
    assert ids[3] == ids[1] and len(ids[1]) == len(set(ids[1]))


def test_pages_in_flight_must_be_a_whole_number(one: Simulator) -> None:
    for bad in (0, -2):  # what the JSON schema lets through
        config = tap_config(one)
        config["itnio_accounts"][0]["pages_in_flight"] = bad
        with pytest.raises(ConfigError, match=r"itnio_accounts\[0\]\.pages_in_flight"):
            TapCallCDR(config=config, validate_config=False).discover_streams()
    config = tap_config(one)
    config["itnio_accounts"][0]["pages_in_flight"] = "4"
    run = run_cli(config)
    assert run.returncode == 1 and "pages_in_flight" in run.stderr.strip().splitlines()[-1]


@given(
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)),
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)),
    st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
)
def test_text_before_the_end_is_before_it_in_time(call: dt.datetime, end: dt.datetime, zone: str) -> None:
    """records_in_window keeps a callTime by its text only when it is truly before the end."""
    tz = ZoneInfo(zone)
    sent = end.replace(microsecond=0, tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="seconds")
    raw = call.replace(microsecond=0, tzinfo=tz).isoformat(timespec="seconds")
    if text_before(raw, sent):
        assert dt.datetime.fromisoformat(raw) < dt.datetime.fromisoformat(sent)
