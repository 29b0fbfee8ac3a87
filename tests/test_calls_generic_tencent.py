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
from generic_helpers import tap_config as generic_config
from harness import run_tap
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_callcdr.core.calls import DIRECTIONS, MAPPED_FIELDS, STATUSES
from tap_callcdr.vendors.generic import records as generic_records
from tap_callcdr.vendors.generic.spec import VENDOR as GENERIC

SHANGHAI = ZoneInfo("Asia/Shanghai")
GENERIC_STREAM = "generic_cdr"


def generic_record(row: dict[str, t.Any], zone: ZoneInfo = SHANGHAI) -> dict[str, t.Any]:
    """The record the tap emits for a GetBill row of an account in `zone`."""
    return generic_records.build_record(dict(row), "hq", generic_records.converters(zone))


def generic_call(row: dict[str, t.Any], zone: ZoneInfo = SHANGHAI) -> dict[str, t.Any]:
    assert GENERIC.calls is not None, "generic VENDOR has no calls mapping"
    call = GENERIC.calls(GENERIC_STREAM, generic_record(row, zone))
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


# -- light: the mappings run in row workers too -------------------------------------------


@pytest.mark.parametrize("vendor", ["generic"])
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
