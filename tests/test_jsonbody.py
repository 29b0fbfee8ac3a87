"""The fast JSON parse gives what `response.json()` gives, fallbacks included."""

from __future__ import annotations

import decimal

import pytest
import requests

from tap_callcdr.fastpath.jsonbody import response_json


def response(body: bytes, content_type: str = "application/json") -> requests.Response:
    answer = requests.Response()
    answer._content = body
    answer.status_code = 200
    answer.headers["Content-Type"] = content_type
    answer.encoding = requests.utils.get_encoding_from_headers(answer.headers)
    return answer


BODIES = [
    b'{"ret": 200, "data": {"list": [{"id": 1, "caller": "\xe5\xbc\xa0\xe4\xb8\x89", "cost": 0.10}]}}',
    b'{"big": 123456789012345678901234567890, "tiny": 1e-400, "huge": 1e400, "same": 1, "same": 2}',
    b'\xef\xbb\xbf{"bom": true}',  # msgspec refuses a BOM; requests strips it
    b"[1.5, -0.0, 2E3]",
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("exact", [False, True])
def test_same_as_requests(body: bytes, exact: bool) -> None:
    want = response(body).json(parse_float=decimal.Decimal) if exact else response(body).json()
    got = response_json(response(body), exact_decimals=exact)
    assert got == want
    assert repr(got) == repr(want)  # same types: Decimal('0.10') stays Decimal('0.10')


def test_a_declared_charset_is_honoured() -> None:
    body = '{"caller": "张三"}'.encode("gbk")
    answer = response(body, "application/json; charset=gbk")
    assert response_json(answer) == {"caller": "张三"}


def test_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        response_json(response(b"<html>502 Bad Gateway</html>"))
