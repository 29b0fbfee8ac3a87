"""The unified `calls` mappings of generic_cdr and tencent_cdr (docs/calls.md).

The tables here are read from the vendor docs (/work/shared/vendor-docs), not from the
mapping code: every documented code maps as docs/calls.md says, an unlisted one is
`unknown` with its raw value kept. Records are built by the tap's own records.py, so they
are what the tap emits; the last tests map a real run against the simulator.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import typing as t
from zoneinfo import ZoneInfo

import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from generic_helpers import tap_config as generic_config
from harness import run_tap
from hypothesis import given, settings
from hypothesis import strategies as st
from tencent_helpers import tap_config as tencent_config

from tap_callcdr.core.calls import DIRECTIONS, MAPPED_FIELDS, STATUSES
from tap_callcdr.vendors.generic import records as generic_records
from tap_callcdr.vendors.generic.spec import VENDOR as GENERIC
from tap_callcdr.vendors.tencent import records as tencent_records
from tap_callcdr.vendors.tencent.spec import VENDOR as TENCENT

SHANGHAI = ZoneInfo("Asia/Shanghai")
GENERIC_STREAM = "generic_cdr"
TENCENT_STREAM = "tencent_cdr"


def generic_record(row: dict[str, t.Any], zone: ZoneInfo = SHANGHAI) -> dict[str, t.Any]:
    """The record the tap emits for a GetBill row of an account in `zone`."""
    return generic_records.build_record(dict(row), "hq", generic_records.converters(zone))


def generic_call(row: dict[str, t.Any], zone: ZoneInfo = SHANGHAI) -> dict[str, t.Any]:
    assert GENERIC.calls is not None, "generic VENDOR has no calls mapping"
    call = GENERIC.calls(GENERIC_STREAM, generic_record(row, zone))
    assert set(call) == set(MAPPED_FIELDS)
    assert call["direction"] in DIRECTIONS and call["status"] in STATUSES
    return call


def tencent_call(row: dict[str, t.Any], zone: ZoneInfo = SHANGHAI) -> dict[str, t.Any]:
    assert TENCENT.calls is not None, "tencent VENDOR has no calls mapping"
    record = tencent_records.build_record(dict(row), "hq", tencent_records.converters(zone))
    call = TENCENT.calls(TENCENT_STREAM, record)
    assert set(call) == set(MAPPED_FIELDS)
    assert call["direction"] in DIRECTIONS and call["status"] in STATUSES
    return call


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def plus(text: str, seconds: int) -> str:
    return (instant(text) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- generic GetBill: the docs' own examples, whole --------------------------------------

# generic-getbill-v2.md, 返回数据结构示例 (the account's zone: Shanghai)
GENERIC_V2_EXAMPLE = {
    "id": 263056202, "companycode": "9513923", "direction": "callout", "type": "callout",
    "callmethod": 6, "starttime": "2025-10-16 17:31:13", "answertime": "",
    "endtime": "2025-10-16 17:31:21", "duration": 8, "billsec": 0, "userid": "0",
    "memberid": "0", "chengshudu": "0", "ext": "0", "disnumber": "219513923001",
    "destnumber": "81351111451", "extnumber": "", "recordfilename": "", "downloadip": "",
    "hangupdirection": 10040, "hangupcause": 10020,
    "uuid": "db4a44cc-aa72-11f0-ad78-1d7ff0749d07", "userkey": "",
    "customuuid": "76c33d997640d36b033d43b1d2d3964e", "taskid": "", "round": 0, "recordurl": "",
}  # fmt: skip
# generic-getbill-v1.html, 返回数据结构示例
GENERIC_V1_EXAMPLE = {
    "id": 22670, "extnumber": "", "destnumber": "13387525701", "displaynumber": "2190170001",
    "starttime": "2019-09-27 14:58:37", "answertime": None, "endtime": "2019-09-27 14:59:05",
    "duration": 28, "billsec": 0, "direction": "callout", "callmethod": 6, "userid": "0",
    "memberid": "0", "chengshudu": "0", "customuuid": "0", "recordfilename": "",
    "downloadip": "", "hangupdirection": 10041, "hangupcause": 10020, "userkey": "#",
}  # fmt: skip
NOTHING = dict.fromkeys(("extension", "agent", "recording", "cost", "currency"))


def test_the_v2_docs_example_maps_whole() -> None:
    assert generic_call(GENERIC_V2_EXAMPLE) == {
        "call_id": "263056202", "source_key": "263056202",
        "vendor_call_id": "db4a44cc-aa72-11f0-ad78-1d7ff0749d07",
        "started_at": "2025-10-16T09:31:13Z", "answered_at": None,
        "ended_at": "2025-10-16T09:31:21Z", "duration_seconds": 8, "talk_seconds": 0,
        "direction": "outbound", "caller": "219513923001", "callee": "81351111451",
        "status": "no_answer", "vendor_status": "10020", "trunk": "219513923001", **NOTHING,
    }  # fmt: skip


def test_the_v1_docs_example_maps_whole() -> None:
    """v1: `displaynumber`, answertime null, no uuid (so no vendor call id besides the id)."""
    assert generic_call(GENERIC_V1_EXAMPLE) == {
        "call_id": "22670", "source_key": "22670", "vendor_call_id": None,
        "started_at": "2019-09-27T06:58:37Z", "answered_at": None,
        "ended_at": "2019-09-27T06:59:05Z", "duration_seconds": 28, "talk_seconds": 0,
        "direction": "outbound", "caller": "2190170001", "callee": "13387525701",
        "status": "no_answer", "vendor_status": "10020", "trunk": "2190170001", **NOTHING,
    }  # fmt: skip


# -- generic GetBill: every documented code -----------------------------------------------

# The request's direction filter: 1 呼入 (in), 2 呼出 (out); records say "callin"/"callout".
GENERIC_DIRECTION_WORDS = {"callin": "inbound", "callout": "outbound"}
# The request's callmethod list: 0 不限, 1 分机互拨, 2 分机直拨(手拨), 3 API呼叫, 4 API双呼,
# 5 预测式外呼, 6 IVR/群呼. Only 1 (extension to extension) says where the call went.
GENERIC_METHODS = {0: None, 1: "internal", 2: None, 3: None, 4: None, 5: None, 6: None}


@pytest.mark.parametrize("word", [*GENERIC_DIRECTION_WORDS, "", "callback", "1", None])
@pytest.mark.parametrize("method", [*GENERIC_METHODS, 7, None])
def test_every_generic_direction_and_callmethod(word: str | None, method: int | None) -> None:
    call = generic_call({**GENERIC_V2_EXAMPLE, "direction": word, "callmethod": method})
    by_word = GENERIC_DIRECTION_WORDS.get(word or "", "unknown")
    assert call["direction"] == (GENERIC_METHODS.get(method) or by_word)  # type: ignore[arg-type]


@pytest.mark.parametrize("cause", [10020, 10016, 10017, 10019, 99999, None])
def test_an_unanswered_call_is_no_answer_whatever_its_undocumented_cause(cause: int | None) -> None:
    """The docs list no hangupcause codes; answertime/billsec say whether it was answered."""
    call = generic_call({**GENERIC_V2_EXAMPLE, "hangupcause": cause})
    assert (call["status"], call["vendor_status"]) == ("no_answer", None if cause is None else str(cause))


def test_an_answered_call_with_its_parties_agent_and_recording() -> None:
    row = {
        **GENERIC_V2_EXAMPLE, "direction": "callin", "callmethod": 0,
        "answertime": "2025-10-16 17:31:20", "endtime": "2025-10-16 17:33:20",
        "duration": 127, "billsec": 120, "disnumber": "13800000000", "destnumber": "2195139230",
        "extnumber": "8001", "userid": "1017", "recordfilename": "20251016/x.wav",
        "recordurl": "http://47.1.2.3/recordings/20251016/x.wav",
    }  # fmt: skip
    call = generic_call(row)
    assert call["status"] == "answered" and call["direction"] == "inbound"
    assert (call["answered_at"], call["ended_at"]) == ("2025-10-16T09:31:20Z", "2025-10-16T09:33:20Z")
    assert (call["duration_seconds"], call["talk_seconds"]) == (127, 120)
    assert (call["caller"], call["callee"], call["trunk"]) == ("13800000000", "2195139230", "2195139230")
    assert (call["extension"], call["agent"]) == ("8001", "1017")
    assert call["recording"] == "http://47.1.2.3/recordings/20251016/x.wav"
    v1 = generic_call({**row, "recordurl": None})  # v1 has the file name only
    assert v1["recording"] == "20251016/x.wav"


def test_missing_instants_come_from_the_durations() -> None:
    """No endtime: start + duration; no answertime but billed seconds: end - billsec."""
    row = {**GENERIC_V2_EXAMPLE, "endtime": "", "duration": 127, "billsec": 120}
    call = generic_call(row)
    assert (call["ended_at"], call["answered_at"]) == ("2025-10-16T09:33:20Z", "2025-10-16T09:31:20Z")
    assert (call["duration_seconds"], call["talk_seconds"], call["status"]) == (127, 120, "answered")


# -- generic GetBill: unified durations and instants agree with the raw row -----------------

ZONES = ("Asia/Shanghai", "America/Sao_Paulo", "UTC", "Asia/Kolkata")  # no DST after 2020


@st.composite
def getbill_rows(draw: st.DrawFn) -> tuple[dict[str, t.Any], str]:
    """A raw GetBill row as the vendor writes it (local wall times), and its zone."""
    zone = draw(st.sampled_from(ZONES))
    start = draw(st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1)))
    start = start.replace(microsecond=0)
    ring, talk = draw(st.integers(0, 300)), draw(st.integers(0, 4 * 3600))
    local = lambda seconds: (start + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    unanswered = draw(st.sampled_from(["", None]))  # v2 writes "", v1 null
    row = {
        **GENERIC_V2_EXAMPLE, "starttime": local(0),
        "answertime": local(ring) if talk else unanswered,
        "endtime": local(ring + talk) if draw(st.booleans()) else "",  # some rows lack it
        "duration": ring + talk, "billsec": talk,
    }  # fmt: skip
    return row, zone


@settings(max_examples=150, deadline=None)
@given(getbill_rows())
def test_generic_durations_and_instants_agree_with_the_row(case: tuple[dict[str, t.Any], str]) -> None:
    row, zone = case
    call = generic_call(row, ZoneInfo(zone))
    start = dt.datetime.fromisoformat(row["starttime"]).replace(tzinfo=ZoneInfo(zone))
    assert instant(call["started_at"]) == start
    assert call["duration_seconds"] == row["duration"] and call["talk_seconds"] == row["billsec"]
    assert call["ended_at"] == plus(call["started_at"], row["duration"])
    if row["billsec"]:
        assert call["status"] == "answered"
        assert plus(call["answered_at"], call["talk_seconds"]) == call["ended_at"]
    else:
        assert (call["status"], call["answered_at"]) == ("no_answer", None)


# -- Tencent getCdr: the doc's example, whole --------------------------------------------

# tencent-callback-getcdr.md, 4. 示例 (epoch seconds; "0": that moment never came)
TENCENT_EXAMPLE = {
    "bizId": "", "callEndStatus": "2", "callId": "12-190123-2773afbbe32943668a2fb98exxxxxx",
    "callType": "3", "dst": "008613631234568", "dstAcceptTime": "0", "duration": "0",
    "endCallTime": "1548235118", "orderId": "", "recordUrl": "", "src": "008613500000000",
    "srcAcceptTime": "0", "startDstCallTime": "0", "startDstRingTime": "0",
    "startSrcCallTime": "1548235059", "startSrcRingTime": "1548235062",
}  # fmt: skip


def test_the_tencent_docs_example_maps_whole() -> None:
    call_id = TENCENT_EXAMPLE["callId"]
    assert tencent_call(TENCENT_EXAMPLE) == {
        "call_id": call_id, "source_key": call_id, "vendor_call_id": call_id,
        "started_at": "2019-01-23T09:17:39Z", "answered_at": None,
        "ended_at": "2019-01-23T09:18:38Z", "duration_seconds": 59, "talk_seconds": 0,
        "direction": "outbound", "caller": "008613500000000", "callee": "008613631234568",
        "status": "no_answer", "vendor_status": "2",
        **dict.fromkeys(("extension", "agent", "trunk", "recording", "cost", "currency")),
    }  # fmt: skip


# -- Tencent getCdr: every documented code ------------------------------------------------

# callEndStatus: 0 未知状态 (unknown), 1 正常通话 (normal call), 2 主叫未接 (caller did not
# pick up), 3 主叫接听,被叫未接 (callee did not pick up), 4 主叫未接通 (caller could not be
# reached), 5 被叫未接通 (callee could not be reached)
TENCENT_END_STATUSES = {
    "0": "unknown", "1": "answered", "2": "no_answer", "3": "no_answer", "4": "failed", "5": "failed",
}  # fmt: skip
# callType: 1 VOIP, 2 IP TO PSTN, 3 PSTN TO PSTN (absent: 3); all callbacks the caller placed
TENCENT_CALL_TYPES = {"1": "outbound", "2": "outbound", "3": "outbound", None: "outbound"}


@pytest.mark.parametrize("code", [*TENCENT_END_STATUSES, "6", "-1", "", None])
def test_every_tencent_end_status(code: str | None) -> None:
    row = {k: v for k, v in TENCENT_EXAMPLE.items() if k != "callEndStatus"}
    call = tencent_call({**row, **({} if code is None else {"callEndStatus": code})})
    assert call["status"] == TENCENT_END_STATUSES.get(code or "", "unknown")  # type: ignore[arg-type]
    assert call["vendor_status"] == (code or None)


@pytest.mark.parametrize("code", [*TENCENT_CALL_TYPES, "4", "0"])
def test_every_tencent_call_type(code: str | None) -> None:
    row = {k: v for k, v in TENCENT_EXAMPLE.items() if k != "callType"}
    call = tencent_call({**row, **({} if code is None else {"callType": code})})
    assert call["direction"] == TENCENT_CALL_TYPES.get(code, "unknown")


def test_a_normal_tencent_call_is_answered_when_the_callee_answers() -> None:
    """The caller's leg is only the way in: talk runs from the callee's answer to the end."""
    row = {
        **TENCENT_EXAMPLE, "callEndStatus": "1", "srcAcceptTime": "1548235070",
        "startDstCallTime": "1548235071", "startDstRingTime": "1548235073",
        "dstAcceptTime": "1548235080", "endCallTime": "1548235200", "duration": "120",
        "recordUrl": "https://record.cloud.example/20190123/x.mp3",
    }  # fmt: skip
    call = tencent_call(row)
    assert (call["status"], call["answered_at"]) == ("answered", "2019-01-23T09:18:00Z")
    assert (call["duration_seconds"], call["talk_seconds"]) == (141, 120)
    assert call["recording"] == "https://record.cloud.example/20190123/x.mp3"
    billed_only = tencent_call({**row, "dstAcceptTime": "0"})  # answer = end - billed seconds
    assert (billed_only["answered_at"], billed_only["talk_seconds"]) == ("2019-01-23T09:18:00Z", 120)


def test_tencent_local_date_times_map_alike() -> None:
    """The doc's table says yyyy-MM-dd HH:mm:ss (the account's zone) where its example has epochs."""
    local = {
        **TENCENT_EXAMPLE, "startSrcCallTime": "2019-01-23 17:17:39",
        "startSrcRingTime": "2019-01-23 17:17:42", "endCallTime": "2019-01-23 17:18:38",
    }  # fmt: skip
    assert tencent_call(local) == tencent_call(TENCENT_EXAMPLE)


# -- Tencent getCdr: unified durations and instants agree with the raw row -----------------


@st.composite
def getcdr_rows(draw: st.DrawFn) -> dict[str, str]:
    """A raw getCdr row of any end status, its moments in the order the callback makes them."""
    status = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
    now = draw(st.integers(1_500_000_000, 1_900_000_000))
    row = {"callId": "12-x", "callEndStatus": str(status), "startSrcCallTime": str(now), "duration": "0"}
    steps = {  # which moments each status reaches
        "startSrcRingTime": status != 4, "srcAcceptTime": status in (1, 3, 5),
        "startDstCallTime": status in (1, 3, 5), "startDstRingTime": status in (1, 3),
        "dstAcceptTime": status == 1,
    }  # fmt: skip
    for name, reached in steps.items():
        if reached:
            now += draw(st.integers(0, 90))
        row[name] = str(now) if reached else "0"
    talk = draw(st.integers(0, 4 * 3600))
    row["endCallTime"] = str(now + (talk if status == 1 else draw(st.integers(0, 90))))
    if status == 1:
        row["duration"] = str(talk)
    return row


@settings(max_examples=150, deadline=None)
@given(getcdr_rows())
def test_tencent_durations_and_instants_agree_with_the_row(row: dict[str, str]) -> None:
    call = tencent_call(row)
    epoch = lambda name: dt.datetime.fromtimestamp(int(row[name]), dt.UTC)  # noqa: E731
    assert instant(call["started_at"]) == epoch("startSrcCallTime")
    assert instant(call["ended_at"]) == epoch("endCallTime")
    assert call["duration_seconds"] == int(row["endCallTime"]) - int(row["startSrcCallTime"])
    assert call["ended_at"] == plus(call["started_at"], call["duration_seconds"])
    if row["callEndStatus"] == "1":
        assert instant(call["answered_at"]) == epoch("dstAcceptTime")
        assert call["talk_seconds"] == int(row["duration"])
        assert plus(call["answered_at"], call["talk_seconds"]) == call["ended_at"]
    else:
        assert (call["answered_at"], call["talk_seconds"]) == (None, 0)


# -- light: the mappings run in row workers too -------------------------------------------


@pytest.mark.parametrize("vendor", ["generic", "tencent"])
def test_the_mapping_loads_no_sdk(vendor: str) -> None:
    code = (
        "import sys\n"
        f"import tap_callcdr.vendors.{vendor}.calls\n"
        "print(sorted(m for m in ('singer_sdk', 'requests') if m in sys.modules))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"


# -- a real run against the simulator: every call, with the simulator's own instants --------


def utc_of_local(local: str | None, zone: str) -> str | None:
    if not local:
        return None
    moment = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generic_truth(sim: Simulator) -> dict[tuple[str, str], dict[str, t.Any]]:
    """Each simulated call's unified instants and durations, from the simulator's rows."""
    truth = {}
    for name in sim.generic.accounts():
        zone = sim.generic.account(name).timezone
        for raw in sim.generic.truth(name):
            truth[(name, str(raw["id"]))] = {
                "started_at": utc_of_local(raw["starttime"], zone),
                "answered_at": utc_of_local(raw["answertime"], zone),
                "ended_at": utc_of_local(raw["endtime"], zone),
                "duration_seconds": raw["duration"],
                "talk_seconds": raw["billsec"],
                "status": "answered" if raw["billsec"] else "no_answer",
            }
    return truth


def test_a_real_run_maps_every_call_with_the_simulators_instants() -> None:
    anchor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    accounts = [
        *demo_accounts(["hq"], calls=150, days=2, timezone="Asia/Shanghai"),
        *demo_accounts(["branch"], calls=100, days=2, timezone="America/Sao_Paulo", doc_version="v1"),
    ]
    with Simulator(accounts, anchor=anchor).start() as sim:
        run = run_tap(generic_config(sim, days=3))
        want = generic_truth(sim)
    assert GENERIC.calls is not None
    got = {}
    for record in run.records(GENERIC_STREAM):
        call = GENERIC.calls(GENERIC_STREAM, record)
        got[(record["account"], call["call_id"])] = {name: call[name] for name in want[next(iter(want))]}
    assert got == want


def tencent_utc(value: str, zone: str | None) -> str | None:
    """A simulator moment (epoch, or local date-time in `zone`) as the UTC text records carry."""
    if value == "0":
        return None
    if zone is not None:
        return utc_of_local(value, zone)
    return dt.datetime.fromtimestamp(int(value), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tencent_truth(sim: Simulator) -> dict[tuple[str, str], dict[str, t.Any]]:
    truth = {}
    for name in sim.tencent.accounts():
        account = sim.tencent.account(name)
        zone = account.timezone if account.time_format == "datetime" else None
        for raw in sim.tencent.truth(name):
            started, ended = tencent_utc(raw["startSrcCallTime"], zone), tencent_utc(raw["endCallTime"], zone)
            assert started and ended
            truth[(name, raw["callId"])] = {
                "started_at": started,
                "answered_at": tencent_utc(raw["dstAcceptTime"], zone),
                "ended_at": ended,
                "duration_seconds": int((instant(ended) - instant(started)).total_seconds()),
                "talk_seconds": int(raw["duration"]),
                "status": TENCENT_END_STATUSES[raw["callEndStatus"]],
            }
    return truth


def test_a_real_tencent_run_maps_every_call_with_the_simulators_instants() -> None:
    """One account sends epochs, the other local date-times and cut answers."""
    anchor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    accounts = [
        *tencent_demo_accounts(["hq"], calls=150, days=2),
        *tencent_demo_accounts(["branch"], calls=100, days=2, time_format="datetime", cap=40),
    ]
    with Simulator(accounts, anchor=anchor).start() as sim:
        config = tencent_config(sim, days=3)
        config["tencent_accounts"][1]["timezone"] = "Asia/Shanghai"
        run = run_tap(config)
        want = tencent_truth(sim)
    assert TENCENT.calls is not None
    got = {}
    for record in run.records(TENCENT_STREAM):
        call = TENCENT.calls(TENCENT_STREAM, record)
        got[(record["account"], call["call_id"])] = {name: call[name] for name in want[next(iter(want))]}
    assert got == want
