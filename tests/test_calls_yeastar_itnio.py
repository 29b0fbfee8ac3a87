"""The unified-call mappings of Yeastar and ITNIO (vendors/*/calls.py, docs/calls.md).

The code tables below are read from the vendors' documents (Yeastar's published CDR
parameters; ITNIO's recordSipQuery doc), not from the code. A property test checks the
unified instants and durations against the raw row, and real runs against the simulators
check every emitted record's call against the simulator's own truth.
"""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t
from collections.abc import Iterator

import pytest
from callcdr_simulator import Simulator, SimulatorTLS, simulator_tls
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.yeastar import yeastar_demo_accounts
from harness import run_tap
from hypothesis import given, settings
from hypothesis import strategies as st
from itnio_helpers import GROUP_STREAM, SIP_STREAM, STREAMS, run_exact
from itnio_helpers import tap_config as itnio_config
from itnio_helpers import utc as itnio_utc
from yeastar_helpers import ANCHOR
from yeastar_helpers import STREAM as YEASTAR
from yeastar_helpers import key as yeastar_key
from yeastar_helpers import start as start_yeastar
from yeastar_helpers import tap_config as yeastar_config
from yeastar_helpers import utc as yeastar_utc

from tap_callcdr.core.calls import DIRECTIONS, MAPPED_FIELDS, STATUSES
from tap_callcdr.vendors.itnio.calls import to_call as itnio_call
from tap_callcdr.vendors.yeastar.calls import to_call as yeastar_call

SECOND = dt.timedelta(seconds=1)

# ------------------------------------------------------------ tables, from the vendors' docs

# Yeastar NewCdr `status` (S-Series/Cloud PBX API pages, both spellings they print), FAILED
# (the S-Series CDR's Asterisk disposition), P-Series' lower case, and values no page lists.
YEASTAR_STATUS = [
    ("ANSWERED", "answered"),
    ("ANSWERD", "answered"),
    ("NO ANSWER", "no_answer"),
    ("NO ANSWERED", "no_answer"),
    ("BUSY", "busy"),
    ("VOICEMAIL", "no_answer"),
    ("FAILED", "failed"),
    ("answered", "answered"),
    ("no answer", "no_answer"),
    ("CONGESTION", "unknown"),
    ("应答", "unknown"),
]
YEASTAR_TYPE = [
    ("Inbound", "inbound"),
    ("Outbound", "outbound"),
    ("Internal", "internal"),
    ("inbound", "inbound"),
    ("outbound", "outbound"),
    ("internal", "internal"),
    ("Transfer", "unknown"),
    ("Callback", "unknown"),
]
# ITNIO terminationCode: "0 success, any other a failure" (table), "1000"/"success" (example);
# the reason refines a failure. Not a number: not a code the doc describes.
ITNIO_STATUS = [
    ("0", "success", "answered"),
    ("1000", "success", "answered"),
    ("1001", "no answer", "no_answer"),
    ("1002", "Busy", "busy"),
    ("1003", "rejected", "failed"),
    ("1004", "invalid number", "failed"),
    ("-1", "", "failed"),
    ("2001", None, "failed"),
    ("OK", "success", "unknown"),
    ("-", "", "unknown"),
]


def yeastar_record(**values: t.Any) -> dict[str, t.Any]:
    """A yeastar_cdr record as the tap emits it (an answered inbound call by default)."""
    record: dict[str, t.Any] = {
        "account": "pbx1", "row_id": "9f" * 16, "callid": "1571897930.5",
        "timestart": "2019-10-23T14:18:50Z", "callfrom": "13800138000", "callto": "1023",
        "callduraction": 19, "talkduraction": 14, "srctrunkname": "China Unicom SIP",
        "dsttrunkname": "", "status": "ANSWERED", "type": "Inbound", "pincode": "",
        "recording": "20191024201242-1571897930.5-203-201-Internal.wav",
        "didnumber": "075512345678", "sn": "369451090405", "extra": None,
    }  # fmt: skip
    return record | values


def itnio_record(**values: t.Any) -> dict[str, t.Any]:
    """The doc's example record as the tap emits it (UTC instants, integers, Decimals)."""
    record: dict[str, t.Any] = {
        "account": "intl", "voiceId": "2203031113381000002", "sipGroupName": "group1",
        "phoneName": "sipName8555", "callee": "91856321412", "displayNum": "1008122211",
        "code": "Afghanistan(Kandahar)", "submitTime": "2022-02-18T06:42:40Z",
        "callTime": "2022-02-18T06:45:42Z", "ringingTime": "2022-02-18T06:42:47Z",
        "answerTime": "2022-02-18T06:42:50Z", "hangupTime": "2022-02-18T06:42:55Z",
        "callDuration": 5, "chargedDuration": 5, "terminationCode": "1000",
        "terminationReason": "success", "cost": decimal.Decimal("2"), "billPeriod": "20+20",
        "rate": decimal.Decimal("1.2"),
        "recordingFileId": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3", "currency": "EUR",
    }  # fmt: skip
    return record | values


def check_shape(call: dict[str, t.Any]) -> None:
    assert tuple(call) == MAPPED_FIELDS
    assert call["status"] in STATUSES and call["direction"] in DIRECTIONS


@pytest.mark.parametrize(("code", "status"), YEASTAR_STATUS)
def test_every_yeastar_status_maps_as_documented(code: str, status: str) -> None:
    call = yeastar_call(YEASTAR, yeastar_record(status=code))
    check_shape(call)
    assert (call["status"], call["vendor_status"]) == (status, code)


@pytest.mark.parametrize(("code", "direction"), YEASTAR_TYPE)
def test_every_yeastar_type_maps_as_documented(code: str, direction: str) -> None:
    assert yeastar_call(YEASTAR, yeastar_record(type=code))["direction"] == direction


def test_a_yeastar_row_maps_field_by_field() -> None:
    record = yeastar_record()
    assert yeastar_call(YEASTAR, record) == {
        "call_id": record["row_id"], "source_key": record["row_id"],
        "vendor_call_id": "1571897930.5", "started_at": "2019-10-23T14:18:50Z",
        "answered_at": "2019-10-23T14:18:55Z", "ended_at": "2019-10-23T14:19:09Z",
        "duration_seconds": 19, "talk_seconds": 14, "direction": "inbound",
        "caller": "13800138000", "callee": "1023", "status": "answered",
        "vendor_status": "ANSWERED", "extension": "1023", "agent": None,
        "trunk": "China Unicom SIP", "recording": record["recording"], "cost": None,
        "currency": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "extension", "trunk"),
    [("Inbound", "1023", "in"), ("Outbound", "13800138000", "out"),
     ("Internal", "13800138000", None), ("Transfer", None, None)],
)  # fmt: skip
def test_yeastar_extension_is_the_pbx_side_and_trunk_the_one_used(
    kind: str, extension: str | None, trunk: str | None
) -> None:
    trunks = {"Inbound": ("in", ""), "Outbound": ("", "out")}.get(kind, ("", ""))
    record = yeastar_record(type=kind, srctrunkname=trunks[0], dsttrunkname=trunks[1])
    call = yeastar_call(YEASTAR, record)
    assert (call["extension"], call["trunk"]) == (extension, trunk)


@pytest.mark.parametrize("code", ["NO ANSWER", "BUSY", "FAILED", "VOICEMAIL"])
def test_a_yeastar_call_nobody_answered_has_no_answer_time_nor_talk(code: str) -> None:
    call = yeastar_call(YEASTAR, yeastar_record(status=code, talkduraction=7))
    assert (call["answered_at"], call["talk_seconds"], call["ended_at"]) == (
        None, 0, "2019-10-23T14:19:09Z"
    )  # fmt: skip


def test_yeastar_columns_older_firmware_lacks_stay_unknown() -> None:
    missing = dict.fromkeys(("callduraction", "talkduraction", "status", "type", "recording"))
    call = yeastar_call(YEASTAR, yeastar_record(**missing))
    check_shape(call)
    assert [call[k] for k in ("ended_at", "answered_at", "duration_seconds", "talk_seconds")] == [None] * 4
    assert (call["status"], call["vendor_status"], call["direction"], call["recording"]) == (
        "unknown", None, "unknown", None
    )  # fmt: skip


def test_yeastar_legs_of_one_transferred_call_stay_apart() -> None:
    later = "2019-10-23T14:19:00Z"
    legs = [yeastar_record(row_id="a" * 32), yeastar_record(row_id="b" * 32, timestart=later)]
    calls = [yeastar_call(YEASTAR, leg) for leg in legs]
    assert {c["vendor_call_id"] for c in calls} == {"1571897930.5"}
    assert len({c["call_id"] for c in calls}) == 2


@pytest.mark.parametrize(("code", "reason", "status"), ITNIO_STATUS)
@pytest.mark.parametrize("stream", [SIP_STREAM, GROUP_STREAM])
def test_every_itnio_code_maps_as_documented(stream: str, code: str, reason: str | None, status: str) -> None:
    call = itnio_call(stream, itnio_record(terminationCode=code, terminationReason=reason))
    check_shape(call)
    assert (call["status"], call["vendor_status"]) == (status, code)


@pytest.mark.parametrize("code", ["", None])
def test_an_itnio_record_without_a_code_is_unknown(code: str | None) -> None:
    call = itnio_call(SIP_STREAM, itnio_record(terminationCode=code))
    assert (call["status"], call["vendor_status"]) == ("unknown", None)


def test_the_itnio_docs_example_maps_field_by_field() -> None:
    """Its callTime is 3 minutes after its hangupTime: instants kept, no negative duration."""
    assert itnio_call(SIP_STREAM, itnio_record()) == {
        "call_id": "sip:2203031113381000002", "source_key": "2203031113381000002",
        "vendor_call_id": "2203031113381000002", "started_at": "2022-02-18T06:45:42Z",
        "answered_at": "2022-02-18T06:42:50Z", "ended_at": "2022-02-18T06:42:55Z",
        "duration_seconds": None, "talk_seconds": 5, "direction": "outbound",
        "caller": "1008122211", "callee": "91856321412", "status": "answered",
        "vendor_status": "1000", "extension": "sipName8555", "agent": None, "trunk": None,
        "recording": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
        "cost": decimal.Decimal("2"), "currency": "EUR",
    }  # fmt: skip


def test_itnio_sip_and_group_records_of_one_voice_id_are_two_calls() -> None:
    sip, group = (itnio_call(stream, itnio_record()) for stream in (SIP_STREAM, GROUP_STREAM))
    assert sip["call_id"] != group["call_id"]
    assert sip["vendor_call_id"] == group["vendor_call_id"] == sip["source_key"]


@pytest.mark.parametrize(
    ("currency", "cost", "expected"),
    [("EUR", decimal.Decimal("0.0210"), "EUR"), ("", decimal.Decimal("1"), "USD"),
     ("", "0.5", "USD"), ("", None, None)],
)  # fmt: skip
def test_itnio_currency_is_usd_when_the_doc_says_it_is_left_empty(
    currency: str, cost: t.Any, expected: str | None
) -> None:
    call = itnio_call(SIP_STREAM, itnio_record(currency=currency, cost=cost))
    assert (call["cost"], call["currency"]) == (cost, expected)


def test_an_unanswered_itnio_group_call() -> None:
    record = itnio_record(phoneName="", recordingFileId="", answerTime=None, callDuration=None,
                          terminationCode="1001", terminationReason="no answer")  # fmt: skip
    call = itnio_call(GROUP_STREAM, record)
    assert [call[k] for k in ("answered_at", "talk_seconds", "extension", "recording", "status")] == [
        None, 0, None, None, "no_answer"
    ]  # fmt: skip


def test_a_stream_of_another_vendor_is_refused() -> None:
    with pytest.raises(ValueError, match="itnio has no stream 'yeastar_cdr'"):
        itnio_call(YEASTAR, itnio_record())
    with pytest.raises(ValueError, match="yeastar has no stream 'itnio_sip_cdr'"):
        yeastar_call(SIP_STREAM, yeastar_record())


# ---------------------------------------------- property: unified times agree with the row

INSTANTS = st.datetimes(dt.datetime(2015, 1, 1), dt.datetime(2035, 1, 1)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=dt.UTC)
)
SECONDS = st.integers(0, 3 * 86400)


def text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@settings(max_examples=300, deadline=None)
@given(INSTANTS, SECONDS, SECONDS, st.sampled_from([code for code, _ in YEASTAR_STATUS]))
def test_yeastar_instants_and_durations_agree_with_the_row(
    start: dt.datetime, total: int, talk: int, status: str
) -> None:
    talk = min(talk, total)
    call = yeastar_call(YEASTAR, yeastar_record(timestart=text(start), callduraction=total,
                                                talkduraction=talk, status=status))  # fmt: skip
    assert call["started_at"] == text(start) and call["duration_seconds"] == total
    assert instant(call["ended_at"]) == start + total * SECOND
    if call["answered_at"] is None:
        assert call["talk_seconds"] == 0
    else:
        assert instant(call["answered_at"]) + call["talk_seconds"] * SECOND == instant(call["ended_at"])
        assert call["talk_seconds"] == talk and start <= instant(call["answered_at"])


@settings(max_examples=300, deadline=None)
@given(INSTANTS, SECONDS, SECONDS, st.booleans(), st.sampled_from([SIP_STREAM, GROUP_STREAM]))
def test_itnio_instants_and_durations_agree_with_the_row(
    start: dt.datetime, ring: int, talk: int, answered: bool, stream: str
) -> None:
    answer = start + ring * SECOND if answered else None
    end = start + (ring + (talk if answered else 0)) * SECOND
    record = itnio_record(callTime=text(start), answerTime=answer and text(answer),
                          hangupTime=text(end), callDuration=talk if answered else 0)  # fmt: skip
    call = itnio_call(stream, record)
    assert (call["started_at"], call["ended_at"]) == (text(start), text(end))
    assert instant(call["started_at"]) + call["duration_seconds"] * SECOND == instant(call["ended_at"])
    if answered:
        assert instant(call["answered_at"]) + call["talk_seconds"] * SECOND == instant(call["ended_at"])
    else:
        assert (call["answered_at"], call["talk_seconds"]) == (None, 0)


# --------------------------------------------- real runs: every call's instants are the truth


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SimulatorTLS:
    return simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")


@pytest.fixture(scope="module")
def pbxs(tls: SimulatorTLS) -> Iterator[Simulator]:
    accounts = yeastar_demo_accounts(["pbx1"], calls=150, days=3, transfer_share=0.4)
    accounts += yeastar_demo_accounts(["pbx2"], calls=100, days=3, timezone="Asia/Kolkata")
    simulator = start_yeastar(tls, accounts)
    yield simulator
    simulator.stop()


def yeastar_truth(sim: Simulator) -> dict[tuple[str, str, str], dict[str, t.Any]]:
    """Each leg's instants from what the PBX wrote: it starts at timestart, rings, talks."""
    truth = {}
    for name in sim.yeastar.accounts():
        zone = sim.yeastar.account(name).timezone
        for row in sim.yeastar.truth(name):
            start = instant(yeastar_utc(row["timestart"], zone))
            talk, total = int(row["talkduraction"]), int(row["callduraction"])
            end = start + total * SECOND
            truth[(name, row["callid"], text(start))] = {
                "started_at": text(start), "ended_at": text(end),
                "answered_at": text(end - talk * SECOND) if row["status"] == "ANSWERED" else None,
                "duration_seconds": total, "talk_seconds": talk, "vendor_call_id": row["callid"],
            }  # fmt: skip
    return truth


def test_every_yeastar_record_of_a_run_maps_to_the_pbxs_truth(pbxs: Simulator, tls: SimulatorTLS) -> None:
    records = run_tap(yeastar_config(pbxs, ca_file=tls.ca_file, days=4)).records(YEASTAR)
    truth = yeastar_truth(pbxs)
    assert sorted(map(yeastar_key, records)) == sorted(truth)
    calls = {yeastar_key(r): yeastar_call(YEASTAR, r) for r in records}
    for key, call in calls.items():
        check_shape(call)
        assert {k: call[k] for k in truth[key]} == truth[key], key
    ids = [(key[0], call["call_id"]) for key, call in calls.items()]
    assert len(set(ids)) == len(ids), "call_id is not unique per account"
    legs = len({(key[0], call["vendor_call_id"]) for key, call in calls.items()})
    assert legs < len(calls), "no transferred call in the run: the legs went untested"
    assert {call["status"] for call in calls.values()} == {"answered", "no_answer", "busy", "failed"}


@pytest.fixture(scope="module")
def voice() -> Iterator[Simulator]:
    accounts = itnio_demo_accounts(("intl", "latam"), calls=150, group_calls=60, days=3)
    simulator = Simulator(accounts, anchor=ANCHOR).start()
    yield simulator
    simulator.stop()


def test_every_itnio_record_of_a_run_maps_to_the_vendors_truth(voice: Simulator) -> None:
    run = run_exact(itnio_config(voice, days=4))
    ids: list[tuple[str, str]] = []
    for stream, endpoint in STREAMS.items():
        truth = {(name, raw["voiceId"]): raw for name in voice.itnio.accounts()
                 for raw in voice.itnio.truth(name, endpoint)}  # fmt: skip
        records = run.records(stream)
        assert sorted((r["account"], r["voiceId"]) for r in records) == sorted(truth)
        for record in records:
            raw, call = truth[(record["account"], record["voiceId"])], itnio_call(stream, record)
            check_shape(call)
            start, end = itnio_utc(raw["callTime"]), itnio_utc(raw["hangupTime"])
            assert (call["started_at"], call["answered_at"], call["ended_at"]) == (
                start, itnio_utc(raw["answerTime"]), end
            )  # fmt: skip
            assert call["duration_seconds"] == (instant(end) - instant(start)) // SECOND
            assert (call["talk_seconds"], call["cost"]) == (raw["callDuration"], decimal.Decimal(raw["cost"]))
            ids.append((record["account"], call["call_id"]))
    assert len(set(ids)) == len(ids), "call_id is not unique per account across both streams"
