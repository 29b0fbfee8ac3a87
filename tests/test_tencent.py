"""Tencent callback CDRs (`tencent_cdr`) against the simulator, over real sockets: the
simulated protocol, completeness in UTC, typing, cut answers, windows and bookmarks,
every error code, faults, config and secrets."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import socket
import typing as t
import zlib
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.cli import build_parser, build_simulator
from callcdr_simulator.tencent import TIME_FIELDS, TencentAccount, tencent_demo_accounts
from harness import assert_matches_truth, assert_retried, run_cli, run_tap
from singer_sdk.exceptions import RetriableAPIError
from tencent_helpers import (
    SHANGHAI,
    STREAM,
    bookmarks,
    cdr_requests,
    decoded,
    epoch,
    expected,
    get_cdr,
    keys,
    state,
    tap_config,
    utc,
)

from tap_callcdr.core.errors import (
    ConfigError,
    IncompleteAnswerError,
    MalformedResponseError,
    PaginationError,
    VendorError,
)
from tap_callcdr.core.windows import iso_utc
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.vendors.tencent import envelope

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
WIDE = {"startTimeStamp": "0", "endTimeStamp": "9999999999"}


def start(accounts: list[TencentAccount]) -> Simulator:
    return Simulator(accounts, anchor=ANCHOR).start()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start(tencent_demo_accounts(calls=300, days=3))
    yield simulator
    simulator.stop()


@pytest.fixture
def capped() -> Iterator[Simulator]:
    """One empty account whose answers hold at most 50 calls."""
    simulator = start(tencent_demo_accounts(["hq"], calls=0, cap=50))
    yield simulator
    simulator.stop()


def assert_complete(sim: Simulator, records: list[dict[str, t.Any]], *names: str) -> None:
    """Every call exactly once, with the right instants."""
    assert_matches_truth(records, expected(sim, *names), "callId")


def config(sim: Simulator, *names: str, **overrides: t.Any) -> dict[str, t.Any]:
    return tap_config(sim, *names, **{"days": 4, "window_hours": 24, **overrides})


# == the simulated API ==========================================================================


def test_sim_answer_has_the_documented_shape(sim: Simulator) -> None:
    body = decoded(get_cdr(sim, **WIDE))
    assert (body["errorCode"], body["offset"], body["result"]) == ("0", "0", "Call Details")
    rows = body["cdr"]
    assert rows == sim.tencent.truth("hq") and len(rows) == 300
    assert all(isinstance(v, str) for row in rows for v in row.values())
    assert all(list(row) == sorted(row) for row in rows)  # the example's (alphabetical) order
    assert {row["callEndStatus"] for row in rows} == {"0", "1", "2", "3", "4", "5"}
    assert any("callType" not in row for row in rows) and any("orderId" in row for row in rows)
    assert all(row["src"].startswith("0086") and row["dst"].startswith("0086") for row in rows)
    for row in rows:
        answered = row["callEndStatus"] == "1"
        assert (row["dstAcceptTime"] != "0") == answered and (int(row["duration"]) > 0) == answered
        times = [int(row[f]) for f in TIME_FIELDS if row[f] != "0"]
        assert times == sorted(times) and int(row["endCallTime"]) <= ANCHOR.timestamp()


def test_sim_compresses_with_zlib_when_asked(sim: Simulator) -> None:
    packed = get_cdr(sim, compress="1", **WIDE)
    assert packed.headers["Content-Type"] == "application/octet-stream"
    assert json.loads(zlib.decompress(packed.content)) == get_cdr(sim, compress="0", **WIDE).json()
    assert get_cdr(sim, **WIDE).json()["errorCode"] == "0"  # compress absent: plain
    assert decoded(get_cdr(sim, appId="nope", compress="1")) == {
        "errorCode": "-401",
        "result": "appId illegal",
    }


def test_sim_account_may_ignore_compress() -> None:
    with start(tencent_demo_accounts(["hq"], calls=5, compress_supported=False)) as sim:
        assert len(get_cdr(sim, compress="1", **WIDE).json()["cdr"]) == 5


def test_sim_range_is_inclusive_on_caller_start_and_src_filters(sim: Simulator) -> None:
    call = sim.tencent.truth("hq")[100]
    at = call["startSrcCallTime"]
    exact = decoded(get_cdr(sim, startTimeStamp=at, endTimeStamp=at))["cdr"]
    assert call in exact and all(row["startSrcCallTime"] == at for row in exact)
    mine = decoded(get_cdr(sim, src=call["src"], **WIDE))["cdr"]
    assert call in mine and {row["src"] for row in mine} == {call["src"]}
    assert 0 < len(mine) < 300


def test_sim_cuts_answers_at_the_cap_and_says_so_in_offset() -> None:
    with start(tencent_demo_accounts(["hq"], calls=120, cap=50)) as sim:
        body = decoded(get_cdr(sim, **WIDE))
        assert (len(body["cdr"]), body["offset"]) == (50, "50")
        assert body["cdr"] == sim.tencent.truth("hq")[:50]  # in start order
        last = body["cdr"][-1]["startSrcCallTime"]
        upto = [row for row in sim.tencent.truth("hq") if int(row["startSrcCallTime"]) <= int(last)]
        again = decoded(get_cdr(sim, startTimeStamp="0", endTimeStamp=last))
        assert again["offset"] == ("50" if len(upto) > 50 else "0")


def test_sim_call_id_fetches_one_call(sim: Simulator) -> None:
    call = sim.tencent.truth("hq")[7]
    assert decoded(get_cdr(sim, callId=call["callId"]))["cdr"] == [call]
    assert decoded(get_cdr(sim, callId="12-000000-none"))["errorCode"] == "-201"


@pytest.mark.parametrize(
    ("request_args", "code", "result"),
    [
        ({"version": "201411v2"}, "-1", "version not supported"),
        ({"startTimeStamp": 0, "endTimeStamp": "9"}, "-2", "parameter error"),
        ({"compress": "yes", **WIDE}, "-2", "parameter error"),
        ({"endTimeStamp": "9"}, "-202", "timestamp parameter error"),
        ({"startTimeStamp": "2025-10-01", "endTimeStamp": "9"}, "-202", "timestamp parameter error"),
        ({"startTimeStamp": "9", "endTimeStamp": "8"}, "-202", "timestamp parameter error"),
        ({"appId": "hq-appId-wrong", **WIDE}, "-401", "appId illegal"),
        ({"url_id": "unknown", **WIDE}, "-402", "URL mismatch"),
    ],
)
def test_sim_rejects_bad_requests_with_the_documented_codes(
    sim: Simulator, request_args: dict[str, t.Any], code: str, result: str
) -> None:
    assert decoded(get_cdr(sim, **request_args)) == {"errorCode": code, "result": result}


def test_sim_ip_whitelist_blocked_accounts_and_bad_paths() -> None:
    accounts = [
        *tencent_demo_accounts(["walled"], calls=1, ip_whitelist=["10.9.8.7"]),
        *tencent_demo_accounts(["banned"], calls=1, blocked=True),
    ]
    with start(accounts) as sim:
        assert decoded(get_cdr(sim, "walled", **WIDE))["errorCode"] == "-403"
        assert decoded(get_cdr(sim, "banned", **WIDE))["errorCode"] == "-423"
        assert get_cdr(sim, "banned", version="201511v3/getCdr/x").status_code == 404


@pytest.mark.parametrize("code", [-203, -501, -423])
def test_sim_vendor_error_faults(sim: Simulator, code: int) -> None:
    sim.faults.add("vendor_error", vendor="tencent", code=code)
    body = get_cdr(sim, **WIDE).json()
    assert body["errorCode"] == str(code) and body["result"]
    assert decoded(get_cdr(sim, **WIDE))["errorCode"] == "0"


def test_sim_request_log_masks_id_and_app_id(sim: Simulator) -> None:
    get_cdr(sim, compress="1", **WIDE)
    [entry] = sim.requests
    assert (entry["vendor"], entry["service"]) == ("tencent", "getCdr")
    assert entry["params"]["id"] == entry["params"]["appId"] == "***"
    assert entry["params"]["compress"] == "1"


def test_sim_truth_is_deterministic_and_new_calls_can_be_added() -> None:
    def truth(seed: int) -> list[dict[str, str]]:
        accounts = tencent_demo_accounts(["a"], calls=20, seed=seed)
        return Simulator(accounts, anchor=ANCHOR).tencent.truth("a")

    assert truth(1) == truth(1) != truth(2)
    with start(tencent_demo_accounts(["a"], calls=20)) as sim:
        nine = dt.datetime(2026, 11, 20, 9, 0)  # naive: Shanghai wall time
        [added] = sim.tencent.add_calls("a", 1, nine, nine)
        assert added["startSrcCallTime"] == epoch(nine.replace(tzinfo=SHANGHAI))
        assert added["callId"].split("-")[1] == "261120" and len(sim.tencent.truth("a")) == 21
        assert decoded(get_cdr(sim, "a", callId=added["callId"]))["cdr"] == [added]


def test_sim_datetime_variant_sends_local_times() -> None:
    with start(tencent_demo_accounts(["a"], calls=5, time_format="datetime")) as sim:
        row = get_cdr(sim, "a", **WIDE).json()["cdr"][0]
        local = dt.datetime.strptime(row["startSrcCallTime"], "%Y-%m-%d %H:%M:%S")
        assert local <= ANCHOR.astimezone(SHANGHAI).replace(tzinfo=None)


def test_sim_cli_flags_and_config_file(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--accounts", "", "--tencent-accounts", "x,y", "--tencent-cap", "7", "--calls", "9"]
    )
    built = build_simulator(args)
    assert built.generic.accounts() == [] and built.tencent.accounts() == ["x", "y"]
    assert built.tencent.account("y").cap == 7 and len(built.tencent.truth("y")) == 9
    path = tmp_path / "sim.json"
    account = {"name": "c", "id": "i", "app_id": "k", "calls": 3}
    path.write_text(json.dumps({"generic": [], "tencent": [account]}))
    from_file = build_simulator(build_parser().parse_args(["--config", str(path)]))
    assert from_file.tencent.accounts() == ["c"] and len(from_file.tencent.truth("c")) == 3
    assert build_simulator(build_parser().parse_args([])).tencent.accounts() == []  # opt-in


# == the tap: completeness and shape ============================================================


def test_every_call_of_every_account_lands_once_in_utc(sim: Simulator) -> None:
    run = run_tap(config(sim))
    assert run.error is None, run.error
    assert_complete(sim, run.records(STREAM))
    assert {r["account"] for r in run.records(STREAM)} == {"hq", "branch"}
    assert set(bookmarks(run.last_state)) == {"hq", "branch"}


def test_nine_oclock_shanghai_is_one_oclock_utc() -> None:
    with start(tencent_demo_accounts(["hq"], calls=0)) as sim:
        nine = dt.datetime(2026, 11, 20, 9)
        sim.tencent.add_calls("hq", 1, nine, nine)
        [record] = run_tap(tap_config(sim, start_date="2026-11-19T00:00:00Z")).records(STREAM)
    assert record["startSrcCallTime"] == "2026-11-20T01:00:00Z"


def test_fields_are_typed_zero_times_are_null_numbers_kept_as_sent(sim: Simulator) -> None:
    records = {r["callId"]: r for r in run_tap(config(sim, "hq")).records(STREAM)}
    truth = {row["callId"]: row for row in sim.tencent.truth("hq")}
    assert records.keys() == truth.keys()
    for call_id, raw in truth.items():
        record = records[call_id]
        for field in TIME_FIELDS:
            assert (record[field] is None) == (raw[field] == "0"), f"{field} of {call_id}"
        assert (record["src"], record["dst"]) == (raw["src"], raw["dst"])  # "0086…" as sent
        assert record["duration"] == int(raw["duration"])
        assert record["callEndStatus"] == int(raw["callEndStatus"])
        assert record["callType"] == int(raw.get("callType", "3"))  # absent means 3
        assert record["orderId"] == raw.get("orderId") and record["recordUrl"] == raw["recordUrl"]
    unanswered = [r for r in records.values() if r["callEndStatus"] == 2]
    assert unanswered and all(r["srcAcceptTime"] is None for r in unanswered)
    assert all(str(r["startSrcCallTime"]).endswith("Z") for r in records.values())


def test_local_datetime_strings_are_read_in_the_account_zone() -> None:
    """The doc's table says yyyy-MM-dd HH:mm:ss while its example has epoch seconds."""
    zone = "America/New_York"
    with start(tencent_demo_accounts(["ny"], calls=40, days=3, time_format="datetime", timezone=zone)) as sim:
        cfg = config(sim)
        cfg["tencent_accounts"][0]["timezone"] = zone
        run = run_tap(cfg)
        truth = sim.tencent.truth("ny")
    want = {row["callId"]: [_local_utc(row[f], zone) for f in TIME_FIELDS] for row in truth}
    assert {r["callId"]: [r[f] for f in TIME_FIELDS] for r in run.records(STREAM)} == want


def _local_utc(value: str, zone: str) -> str | None:
    if value == "0":
        return None
    return iso_utc(dt.datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone)))


def test_requests_are_json_strings_compressed_by_default(sim: Simulator) -> None:
    run_tap(config(sim, "hq"))
    requests_ = cdr_requests(sim)
    assert requests_ and all(r["path"] == "/tencent/201511v3/getCdr" for r in requests_)
    for request in requests_:
        params = request["params"]
        assert set(params) == {"id", "appId", "src", "startTimeStamp", "endTimeStamp", "compress"}
        assert all(isinstance(v, str) for v in params.values())
        assert (params["compress"], params["src"]) == ("1", "")
    # Consecutive windows share their boundary second: the tap drops calls at a window's end.
    spans = [(int(r["params"]["startTimeStamp"]), int(r["params"]["endTimeStamp"])) for r in requests_]
    assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


@pytest.mark.parametrize("compress", [False, True])
def test_plain_answers_work_too(compress: bool) -> None:
    with start(tencent_demo_accounts(["hq"], calls=100, days=3, compress_supported=False)) as sim:
        cfg = config(sim)
        cfg["tencent_accounts"][0]["compress"] = compress
        run = run_tap(cfg)
        assert_complete(sim, run.records(STREAM))
        assert {r["params"]["compress"] for r in cdr_requests(sim)} == {"1" if compress else "0"}


def test_src_filter_is_passed_through(sim: Simulator) -> None:
    caller = sim.tencent.truth("hq")[0]["src"]
    cfg = config(sim, "hq")  # one account: with two, the request log interleaves them
    cfg["tencent_accounts"][0]["src"] = caller
    records = run_tap(cfg).records(STREAM)
    assert {r["src"] for r in records if r["account"] == "hq"} == {caller}
    assert cdr_requests(sim)[0]["params"]["src"] == caller


def test_call_on_a_window_boundary_lands_once(capped: Simulator) -> None:
    boundary = ANCHOR - dt.timedelta(hours=5)
    capped.tencent.add_calls("hq", 1, boundary, boundary)
    cfg = config(capped, start_date=iso_utc(boundary - dt.timedelta(hours=1)), window_hours=1)
    run = run_tap(cfg)
    assert_complete(capped, run.records(STREAM))
    spans = [(r["params"]["startTimeStamp"], r["params"]["endTimeStamp"]) for r in cdr_requests(capped)]
    assert spans[0][1] == spans[1][0] == epoch(boundary)  # asked for twice, emitted once


# == answers cut at the cap =====================================================================


def test_window_of_three_times_the_cap_lands_every_call_exactly_once(
    capped: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    busy = ANCHOR - dt.timedelta(hours=30)
    capped.tencent.add_calls("hq", 150, busy, busy + dt.timedelta(hours=2))
    caplog.set_level(logging.INFO)
    run = run_tap(config(capped))
    assert run.error is None, run.error
    records = run.records(STREAM)
    assert len(records) == 150 and len(set(keys(records))) == 150
    assert_complete(capped, records)
    cuts = [m for m in caplog.messages if "Tencent cut its answer" in m]
    assert cuts and all("offset 50 after 50 calls" in m and "account 'hq'" in m for m in cuts)
    assert len(cdr_requests(capped)) > 5, "the cut windows were read again as halves"


def test_bookmark_never_passes_a_window_that_cannot_be_read_whole(capped: Simulator) -> None:
    dense = ANCHOR - dt.timedelta(hours=30, seconds=17)
    capped.tencent.add_calls("hq", 60, dense, dense)  # 60 calls in one second, cap 50
    early = ANCHOR - dt.timedelta(hours=60)
    capped.tencent.add_calls("hq", 3, early, early + dt.timedelta(minutes=5))
    run = run_tap(config(capped), expect_error=PaginationError)
    assert isinstance(run.error, PaginationError)
    message = str(run.error)
    assert "cannot be split" in message and "\n" not in message
    assert iso_utc(dense) in message or iso_utc(dense + dt.timedelta(seconds=1)) in message
    assert run.states, "the windows before the dense second were saved"
    assert all(mark <= iso_utc(dense) for s in run.states for mark in bookmarks(s).values())
    emitted = {r["startSrcCallTime"] for r in run.records(STREAM)}
    assert iso_utc(dense) not in emitted, "no record of a cut answer is emitted"
    assert len(run.records(STREAM)) == 3


def test_a_half_failing_keeps_the_bookmark_before_the_cut_window(capped: Simulator) -> None:
    busy = ANCHOR - dt.timedelta(hours=30)
    capped.tencent.add_calls("hq", 120, busy, busy + dt.timedelta(hours=2))
    capped.faults.add("vendor_error", vendor="tencent", code=-403, after=3)
    run = run_tap(config(capped), expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    cut_window_start = iso_utc(ANCHOR - dt.timedelta(days=2))  # the third 24-hour window
    assert bookmarks(run.last_state)["hq"] == cut_window_start
    assert all(mark <= cut_window_start for s in run.states for mark in bookmarks(s).values())


# == runs, lookback, state ======================================================================


def test_second_run_reads_from_bookmark_minus_lookback_and_gets_new_calls(sim: Simulator) -> None:
    cfg = config(sim, lookback_minutes=60)
    first = run_tap(cfg)
    mark = dt.datetime.fromisoformat(bookmarks(first.last_state)["hq"])
    sim.clear_requests()
    late = sim.tencent.add_calls("hq", 3, mark - dt.timedelta(minutes=50), mark - dt.timedelta(minutes=1))
    second = run_tap(cfg, state=first.last_state)
    got = set(keys(second.records(STREAM)))
    assert {("hq", c["callId"]) for c in late} <= got
    first_start = min(int(r["params"]["startTimeStamp"]) for r in cdr_requests(sim))
    assert first_start == int(epoch(mark - dt.timedelta(minutes=60)))
    old = set(keys(first.records(STREAM)))
    assert len(got & old) < len(old) / 10, "only the lookback hour is re-read"


def test_far_future_state_returns_nothing(sim: Simulator) -> None:
    run = run_tap(config(sim), state=state("2099-01-01T00:00:00Z", "hq", "branch"))
    assert run.error is None and run.records(STREAM) == []
    assert cdr_requests(sim) == []
    assert bookmarks(run.last_state) == dict.fromkeys(("hq", "branch"), "2099-01-01T00:00:00Z")


def test_settle_lag_defers_the_newest_calls(sim: Simulator) -> None:
    run = run_tap(config(sim, settle_lag_minutes=24 * 60))
    cutoff = iso_utc(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert run.records(STREAM) and all(r["startSrcCallTime"] < cutoff for r in run.records(STREAM))


# == error codes ================================================================================


@pytest.mark.parametrize("code", [-203, -501])
def test_transient_codes_are_retried_and_lose_nothing(sim: Simulator, code: int) -> None:
    sim.faults.add("vendor_error", vendor="tencent", code=code, times=2, after=1)
    run = run_tap(config(sim))
    assert run.error is None, run.error
    assert_complete(sim, run.records(STREAM))


def test_persistent_transient_errors_give_up_after_max_retries(sim: Simulator) -> None:
    sim.faults.add("vendor_error", vendor="tencent", code=-501, times=-1)
    # one account: others read in parallel
    run = run_tap(config(sim, "hq", max_retries=2), expect_error=RetriableAPIError)
    assert isinstance(run.error, RetriableAPIError)
    assert "errorCode -501" in str(run.error) and "account 'hq'" in str(run.error)
    assert len(cdr_requests(sim)) == 3


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (-1, "a tap-callcdr bug"),
        (-2, "a tap-callcdr bug"),
        (-201, "a tap-callcdr bug"),
        (-202, "a tap-callcdr bug"),
        (-401, "check the account's 'app_id'"),
        (-402, "check the account's 'id' and 'api_url'"),
        (-403, "ask Tencent to add its public IP"),
        (-423, "contact Tencent support"),
    ],
)
def test_fatal_codes_stop_at_once_with_a_hint(sim: Simulator, code: int, hint: str) -> None:
    sim.faults.add("vendor_error", vendor="tencent", code=code, after=1)
    # one account: the fault must not hit another one's thread
    run = run_tap(config(sim, "hq"), expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    message = str(run.error)
    assert hint in message and f"errorCode {code}" in message and "tencent_cdr account 'hq'" in message
    assert len(cdr_requests(sim)) == 2, "a fatal code must not be retried"
    assert bookmarks(run.last_state)["hq"] == iso_utc(ANCHOR - dt.timedelta(days=3))


@pytest.mark.parametrize(("setting", "value", "code"), [("app_id", "wrong", "-401"), ("id", "wrong", "-402")])
def test_wrong_credentials_name_the_setting(sim: Simulator, setting: str, value: str, code: str) -> None:
    cfg = config(sim)
    cfg["tencent_accounts"][0][setting] = value
    run = run_tap(cfg, expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert f"errorCode {code}" in str(run.error) and f"'{setting}'" in str(run.error)


def test_ip_not_whitelisted_is_reported_by_the_real_protocol() -> None:
    with start(tencent_demo_accounts(["hq"], calls=5, ip_whitelist=["10.0.0.1"])) as sim:
        run = run_tap(config(sim), expect_error=VendorError)
    assert isinstance(run.error, VendorError) and "whitelist" in str(run.error)


# == faults =====================================================================================


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_429", "truncate"])
def test_transient_faults_are_retried_and_lose_nothing(sim: Simulator, kind: str) -> None:
    sim.faults.add(kind, vendor="tencent", after=1, times=2, retry_after=0)
    run = run_tap(config(sim))
    assert run.error is None, run.error
    assert_complete(sim, run.records(STREAM))
    assert len([r for r in sim.requests if r["fault"] == kind]) == 2


def test_slow_answers_time_out_and_are_retried(sim: Simulator) -> None:
    """The answer would come after 60 s: only the tap's own 1 s timeout gets the run on."""
    sim.faults.add("slow", vendor="tencent", seconds=60)  # the simulator's stop() wakes it early
    # one account: the log masks the id and appId, so two accounts' requests look the same
    run = run_tap(config(sim, "hq", request_timeout_seconds=1))
    assert_complete(sim, run.records(STREAM), "hq")
    assert_retried(cdr_requests(sim), "slow")


def test_a_gateway_page_that_persists_stops_with_one_line_and_keeps_the_bookmark(sim: Simulator) -> None:
    sim.faults.add("malformed", vendor="tencent", after=1, times=-1)  # a 2xx HTML page: retried
    # one account: the fault must not hit another one's thread
    run = run_tap(config(sim, "hq"), expect_error=IncompleteAnswerError)
    assert isinstance(run.error, IncompleteAnswerError)
    assert "not JSON" in str(run.error) and "\n" not in str(run.error)
    first = cdr_requests(sim)[0]["params"]
    assert bookmarks(run.last_state)["hq"] == utc(first["endTimeStamp"])


def test_answer_decoding() -> None:
    def describe(cause: str) -> str:
        return cause

    answer = {"cdr": [], "errorCode": "0", "offset": "0", "result": "Call Details"}
    packed = zlib.compress(json.dumps(answer).encode())
    assert envelope.decode(packed, describe) == answer
    assert envelope.decode(json.dumps(answer).encode(), describe) == answer
    with pytest.raises(IncompleteAnswerError, match="ends early"):
        envelope.decode(packed[: len(packed) // 2], describe)
    with pytest.raises(IncompleteAnswerError, match="not JSON"):
        envelope.decode(b"<html>502</html>", describe)
    with pytest.raises(IncompleteAnswerError, match="cut short inside its JSON"):
        envelope.decode(json.dumps(answer).encode()[:-1], describe)
    with pytest.raises(IncompleteAnswerError, match="no complete JSON"):
        envelope.decode(zlib.compress(b'{"cdr": ['), describe)
    with pytest.raises(MalformedResponseError, match="offset"):
        envelope.calls({"errorCode": "0", "cdr": []}, describe)


# == config and secrets =========================================================================


@pytest.mark.parametrize(
    ("setting", "value"),
    [("id", None), ("app_id", ""), ("api_url", "https://host/201511v3/getCdr?id=S3cr3t-id")],
)
def test_bad_account_config_names_the_setting(sim: Simulator, setting: str, value: str | None) -> None:
    cfg = config(sim)
    account = cfg["tencent_accounts"][1]
    if value is None:
        del account[setting]
    else:
        account[setting] = value
    run = run_tap(cfg, expect_error=ConfigError)
    assert isinstance(run.error, ConfigError)
    assert run.error.setting == f"tencent_accounts[1].{setting}"
    assert "S3cr3t" not in str(run.error)
    assert cdr_requests(sim) == []


def test_credentials_are_declared_secret_and_the_stream_keyed() -> None:
    items = TapCallCDR.config_jsonschema["properties"]["tencent_accounts"]["items"]["properties"]
    assert {name for name, spec in items.items() if spec.get("secret")} == {"id", "app_id"}
    assert items["compress"]["default"] is True


def test_discover_declares_keys_and_replication_key(sim: Simulator) -> None:
    entries = {e["tap_stream_id"]: e for e in TapCallCDR(config=config(sim)).catalog_dict["streams"]}
    assert set(entries) == {STREAM, "calls"}  # calls: the unified stream (docs/calls.md)
    entry = entries[STREAM]
    assert list(entry["key_properties"]) == ["account", "callId"]
    assert entry["replication_key"] == "startSrcCallTime"


def test_secrets_never_reach_logs_or_records(sim: Simulator) -> None:
    sim.faults.add("http_500", vendor="tencent", after=1)
    sim.faults.add("vendor_error", vendor="tencent", code=-401, after=3)
    cfg = config(sim)
    run = run_cli(cfg, env={"LOGLEVEL": "DEBUG"})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if "check the account's 'app_id'" in line]) == 1
    output = run.stderr + json.dumps(run.messages)
    for account in cfg["tencent_accounts"]:
        assert account["id"] not in output and account["app_id"] not in output


def test_connection_errors_do_not_quote_the_id_in_the_url(sim: Simulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config(sim, max_retries=1)
    cfg["tencent_accounts"] = cfg["tencent_accounts"][:1]
    cfg["tencent_accounts"][0]["api_url"] = f"http://127.0.0.1:{port}/tencent"
    run = run_cli(cfg)
    assert run.returncode == 1
    assert "hq-id" not in run.stderr  # errors give urllib3's reason, never the URL
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line and "ConnectionError" in line]
    assert errors and all("tencent_cdr account 'hq'" in line for line in errors)
    assert all("Connection refused" in line for line in errors)
