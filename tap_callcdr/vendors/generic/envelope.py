"""The vendor's answer envelope `{"ret", "data": {"status", "errors", "result"}, "msg"}`.

Nothing but `ret` 200 with `data.status` 0 is data. The codes beyond the published
docs (login, 600-604, 1001/1010/1002) are the ones this API family is known to send;
docs/vendors.md lists them.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from urllib.parse import parse_qsl

import requests

from tap_callcdr.core import answers
from tap_callcdr.core.errors import (
    MalformedResponseError,
    TokenRejectedError,
    TransientVendorError,
    VendorError,
)
from tap_callcdr.fastpath.jsonbody import response_json

FATAL_RET = {
    400: "the vendor rejected the request as invalid",
    # 601 is read both ways in public sources (the seed docs do not list it): name both.
    601: "not authorized: whitelist this host's IP in the vendor console, or (if it is) ask "
    "the vendor to authorize this appid/accesskey for the API",
    602: "the vendor account is disabled",
    603: "the account may not call this API: ask the vendor to enable it",
    604: "the vendor account is in arrears",
}
TOKEN_INVALID_RET = 600
TRANSIENT_RET = 500
TOKEN_EXPIRED_CODE = 1010
BUSY_CODE = 1001
BAD_CREDENTIALS_CODE = 1002


def payload(response: requests.Response, describe: Callable[[str], str]) -> dict[str, t.Any]:
    """The JSON body, parsed once per response (answers.payload)."""
    return answers.payload(response, describe, response_json, "ret", "answer has no 'ret' envelope", service)


def service(response: requests.Response) -> str:
    """The service asked for (the form field; the path is the same for every service)."""
    body = response.request.body if response.request is not None else None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return dict(parse_qsl(text)).get("service") or answers.endpoint(response)


def check(body: dict[str, t.Any], describe: Callable[[str], str]) -> dict[str, t.Any]:
    """Return `data` of a successful envelope; raise the error policy's exception otherwise."""
    ret, msg = body.get("ret"), body.get("msg", "")
    if ret == TRANSIENT_RET:
        raise TransientVendorError(describe(f"vendor server error (ret 500): {msg}"))
    if ret == TOKEN_INVALID_RET:
        raise TokenRejectedError(describe(f"token invalid (ret 600): {msg}"))
    if ret in FATAL_RET:
        raise VendorError(describe(f"{FATAL_RET[ret]} (ret {ret}: {msg})"))
    if ret != 200:
        raise VendorError(describe(f"unexpected ret {ret}: {msg}"))
    data = body.get("data")
    if not isinstance(data, dict):
        raise MalformedResponseError(describe("answer has no 'data' object"))
    if data.get("status") != 0:
        check_errors(data, describe)
    return data


def check_errors(data: dict[str, t.Any], describe: Callable[[str], str]) -> t.NoReturn:
    errors = data["errors"] if isinstance(data.get("errors"), dict) else {}
    code, text = errors.get("code"), errors.get("msg") or data.get("desc", "")
    if code == TOKEN_EXPIRED_CODE:
        raise TokenRejectedError(describe(f"token expired (code 1010): {text}"))
    if code == BUSY_CODE:
        raise TransientVendorError(describe(f"vendor busy (code 1001): {text}"))
    if code == BAD_CREDENTIALS_CODE:
        raise VendorError(
            describe(
                f"wrong credentials: check the account's appid and accesskey (code 1002: {text})"
            )
        )
    raise VendorError(describe(f"vendor error status {data.get('status')} code {code}: {text}"))
