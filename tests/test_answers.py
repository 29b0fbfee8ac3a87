"""answers.payload, the one way every vendor's envelope reads an answer: decoded once per
response, a body that is no value is the transport fault, a value without the envelope's key
is fatal and never kept."""

from __future__ import annotations

import json
import typing as t

import pytest
import requests

from tap_callcdr.core import answers
from tap_callcdr.core.errors import IncompleteAnswerError, MalformedResponseError


def response(body: bytes, status: int = 200) -> requests.Response:
    answer = requests.Response()
    answer._content = body
    answer.status_code = status
    answer.url = "https://pbx.example/api/v1/login?token=secret"
    return answer


def describe(cause: str) -> str:
    return f"stream account 'a': {cause}"


class Counted:
    """A decoder that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, answer: requests.Response) -> t.Any:
        self.calls += 1
        return json.loads(answer.content)


def test_an_answer_is_decoded_once() -> None:
    answer, decode = response(b'{"status": "Success", "n": 1}'), Counted()
    first = answers.payload(answer, describe, decode, "status", "answer has no 'status'")
    again = answers.payload(answer, describe, decode, "status", "answer has no 'status'")
    assert first == {"status": "Success", "n": 1} and again is first and decode.calls == 1


@pytest.mark.parametrize(
    ("body", "status", "error", "says"),
    [
        (b"", 200, IncompleteAnswerError, "empty answer (HTTP 200, 0 bytes)"),
        (b'{"status": "Succ', 200, IncompleteAnswerError, "answer cut short inside its JSON value"),
        (b"<html>404</html>", 404, MalformedResponseError, "answer is not JSON"),
    ],
)
def test_a_body_that_is_no_value_is_the_transport_fault(
    body: bytes, status: int, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as raised:
        answers.payload(response(body, status), describe, Counted(), "status", "answer has no 'status'")
    line = str(raised.value)
    assert line.startswith(describe("/api/v1/login: ")) and says in line and "secret" not in line


def test_where_names_the_service_instead_of_the_path() -> None:
    with pytest.raises(IncompleteAnswerError) as raised:
        answers.payload(response(b""), describe, Counted(), "ret", "no ret", lambda _: "App.Sip_Cdr.GetBill")
    assert str(raised.value) == describe("App.Sip_Cdr.GetBill: empty answer (HTTP 200, 0 bytes)")


def test_a_decoder_may_raise_the_fault_itself() -> None:
    """Tencent's knows a cut zlib stream: its own line stands."""

    def decode(answer: requests.Response) -> t.Any:
        raise answers.not_a_value(answer.content, 200, "getCdr", describe, "zlib answer ends early")

    with pytest.raises(IncompleteAnswerError) as raised:
        answers.payload(response(b"x\x9c"), describe, decode, "errorCode", "answer has no errorCode")
    assert str(raised.value).startswith(describe("getCdr: zlib answer ends early (HTTP 200, 2 bytes)"))


@pytest.mark.parametrize("body", [b'{"hello": "world"}', b"[1, 2]", b"null"])
def test_a_value_without_the_envelope_is_fatal_and_not_kept(body: bytes) -> None:
    answer, decode = response(body), Counted()
    for _ in range(2):
        with pytest.raises(MalformedResponseError) as raised:
            answers.payload(answer, describe, decode, "ret", "answer has no 'ret' envelope")
        assert str(raised.value) == describe(f"answer has no 'ret' envelope: {json.loads(body)}")
    assert decode.calls == 2
