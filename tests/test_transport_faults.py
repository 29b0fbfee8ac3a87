"""A 2xx answer that is no complete value (empty, cut short with its length framed right, a
gateway's HTML page) is a transport fault: retried like any other, for every vendor and every
request type; past max_retries it stops the account with one line naming the account, the
endpoint and an excerpt. Complete JSON that is not the vendor's envelope stays fatal at once."""

from __future__ import annotations

import logging
import re
import typing as t
from dataclasses import dataclass

import generic_helpers
import itnio_helpers
import pytest
import tencent_helpers
import yeastar_helpers
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from callcdr_simulator.yeastar import yeastar_demo_accounts
from harness import TapRun, assert_matches_truth, run_tap

from tap_callcdr.core import answers
from tap_callcdr.core.errors import IncompleteAnswerError, MalformedResponseError
from tap_callcdr.vendors.yeastar import csvfile

TRANSPORT_FAULTS = ("cut", "empty", "malformed")  # malformed: a 2xx gateway HTML page
NOT_THE_ENVELOPE = '{"hello": "world"}'  # complete JSON, no vendor's envelope


@dataclass(frozen=True)
class Case:
    """One vendor's request type, as the simulator's request log names it (`service`)."""

    vendor: str
    service: str
    account: str
    cut_says: str  # what the line for a persistently cut answer quotes of the body
    compress: bool = True  # Tencent only

    def __str__(self) -> str:
        return f"{self.vendor}:{self.service}" + ("" if self.compress else ":plain")


CASES = [
    Case("generic", "App.Sip_Auth.Login", "hq", '{"ret": 200'),
    Case("generic", "App.Sip_Cdr.GetBill", "hq", '{"ret": 200'),
    Case("yeastar", "login", "pbx1", '{"status": "Success"'),
    Case("yeastar", "cdr/get_random", "pbx1", '{"status": "Success"'),
    Case("yeastar", "cdr/download", "pbx1", "ends inside a row"),
    Case("tencent", "getCdr", "hq", "zlib"),
    Case("tencent", "getCdr", "hq", '{"', compress=False),
    Case("itnio", "recordSipQuery", "intl", '{"status": "0"'),
    Case("itnio", "recordGroupQuery", "intl", '{"status": "0"'),
]


@pytest.fixture
def sim() -> t.Iterator[Simulator]:
    """Every vendor, one small account each, over plain HTTP."""
    simulator = Simulator(
        [
            *demo_accounts(["hq"], calls=150, days=3),
            *tencent_demo_accounts(["hq"], calls=150, days=3),
            *itnio_demo_accounts(["intl"], calls=60, group_calls=30, days=3),
            *yeastar_demo_accounts(["pbx1"], calls=100),
        ],
    ).start()
    yield simulator
    simulator.stop()


def config(sim: Simulator, case: Case, **overrides: t.Any) -> dict[str, t.Any]:
    if case.vendor == "generic":
        return generic_helpers.tap_config(sim, case.account, days=4, window_hours=24, **overrides)
    if case.vendor == "yeastar":
        return yeastar_helpers.tap_config(sim, case.account, ca_file=None, **overrides)
    if case.vendor == "tencent":
        made = tencent_helpers.tap_config(sim, case.account, days=4, window_hours=24, **overrides)
        made["tencent_accounts"][0]["compress"] = case.compress
        return made
    return itnio_helpers.tap_config(sim, case.account, **overrides)


def assert_every_call(sim: Simulator, case: Case, run: TapRun) -> None:
    assert run.error is None, run.error
    if case.vendor == "generic":
        truth = generic_helpers.expected(sim, case.account)
        assert_matches_truth(run.records(generic_helpers.STREAM), truth, "id")
    elif case.vendor == "yeastar":
        yeastar_helpers.assert_complete(sim, run.records(yeastar_helpers.STREAM), case.account)
    elif case.vendor == "tencent":
        truth = tencent_helpers.expected(sim, case.account)
        assert_matches_truth(run.records(tencent_helpers.STREAM), truth, "callId")
    else:
        for stream in (itnio_helpers.SIP_STREAM, itnio_helpers.GROUP_STREAM):
            truth = itnio_helpers.expected(sim, stream, case.account)
            assert_matches_truth(run.records(stream), truth, "voiceId")


def sent(sim: Simulator, case: Case, fault: str | None = None) -> list[dict[str, t.Any]]:
    return [
        r for r in sim.requests
        if r["vendor"] == case.vendor and r["service"] == case.service
        and (fault is None or r["fault"] == fault)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", TRANSPORT_FAULTS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_transport_fault_is_retried_and_every_call_lands(
    sim: Simulator, case: Case, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults.add(kind, vendor=case.vendor, service=case.service, times=2)
    with caplog.at_level(logging.WARNING):
        run = run_tap(config(sim, case))
    assert_every_call(sim, case, run)
    assert len(sent(sim, case, kind)) == 2  # both faults were sent, and each was asked again
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) >= 2  # every retry is visible


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_cut_that_persists_stops_with_one_line_naming_account_and_endpoint(
    sim: Simulator, case: Case
) -> None:
    sim.faults.add("cut", vendor=case.vendor, service=case.service, times=-1)
    run = run_tap(config(sim, case, max_retries=2), expect_error=IncompleteAnswerError)
    message = str(run.error)
    assert isinstance(run.error, IncompleteAnswerError), message
    assert "\n" not in message and f"'{case.account}'" in message
    assert case.service in message and case.cut_says in message
    assert len(sent(sim, case)) == 3  # the first try and max_retries more
    assert "S3cr3t" not in message and "token=" not in message
    assert re.search(r'"token": "(?!\*\*\*)', message) is None  # a cut login answer's token


@pytest.mark.parametrize("case", CASES, ids=str)
def test_complete_json_that_is_not_the_envelope_stays_fatal_without_retry(
    sim: Simulator, case: Case
) -> None:
    sim.faults.add("malformed", vendor=case.vendor, service=case.service, times=-1, body=NOT_THE_ENVELOPE)
    run = run_tap(config(sim, case), expect_error=MalformedResponseError)
    assert isinstance(run.error, MalformedResponseError), run.error
    assert "\n" not in str(run.error) and f"'{case.account}'" in str(run.error)
    assert len(sent(sim, case)) == 1


def test_the_line_says_what_came_and_quotes_it_without_credentials() -> None:
    def named(cause: str) -> str:
        return f"s account 'a': {cause}"

    cut = answers.not_a_value(b'{"status": "Success", "token": "abc123', 200, "/api/login", named)
    assert isinstance(cut, IncompleteAnswerError)
    assert str(cut) == (
        "s account 'a': /api/login: answer cut short inside its JSON value (HTTP 200, 38 bytes): "
        '{"status": "Success", "token": "***'
    )
    page = answers.not_a_value(b"<html>\r\n<h1>502</h1>\x00", 200, "/x", named)
    assert "not JSON" in str(page) and "\\x00" in str(page) and "\n" not in str(page)
    assert "empty answer (HTTP 204, 0 bytes)" in str(answers.not_a_value(b"", 204, "/x", named))
    wrong_url = answers.not_a_value(b"<html>404</html>", 404, "/x", named)  # does not heal
    assert isinstance(wrong_url, MalformedResponseError) and not isinstance(wrong_url, IncompleteAnswerError)


@pytest.mark.parametrize(
    ("chunks", "whole"),
    [
        ([b"callid,sn\r\n", b"1.1,36", b"31\r\n"], True),
        ([b"callid,sn\n1.1,3631\n", b""], True),  # an empty last chunk says nothing
        ([b"callid,sn\r\n1.1,36", b"31"], False),  # the last row without its line end
        ([b"callid,sn\r\n1.1,3631\r"], False),  # cut between CR and LF
        ([b"callid,s"], False),  # cut inside the header
    ],
)
def test_a_csv_file_whose_last_row_has_no_line_end_was_cut(chunks: list[bytes], whole: bool) -> None:
    first, *rest = chunks
    if whole:
        csvfile.spool(first, iter(rest), str).close()
        return
    with pytest.raises(IncompleteAnswerError, match="ends inside a row"):
        csvfile.spool(first, iter(rest), str)
