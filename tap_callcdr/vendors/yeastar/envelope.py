"""The PBX's answer envelope: always HTTP 200, `{"status": "Success", ...}` or
`{"status": "Failed", "errno": "..."}`.

Every errno maps to one policy: back off and retry, log in again (token), get a new random,
an empty window (20021), or stop with a hint. Codes are the S-Series API error table.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Callable

import requests

from tap_callcdr.core import answers
from tap_callcdr.core.errors import (
    MalformedResponseError,
    TokenRejectedError,
    TransientVendorError,
    VendorError,
)

Describe = Callable[[str], str]

TOKEN_ERRNOS = {20004: "no such token", 20005: "token is blank", 20006: "token timed out"}
TRANSIENT_ERRNOS = {
    10025: "the PBX is busy applying new configuration",
    20010: "the PBX's API service failed to take the request",
    30001: "the PBX could not allocate memory for the answer",
    30003: "the PBX's API service (apisrv) is not running",
}
RANDOM_INVALID = 20020
NO_CDR = 20021
FATAL_ERRNOS = {
    20002: "API logins from this host are locked for 10 minutes after 5 failed logins: fix "
    "'username'/'password' of this account, then wait or unblock the IP in the PBX web interface",
    20003: "wrong 'username' or 'password' of this account (not retried: 5 failed logins in a "
    "row lock the PBX API for 10 minutes)",
    20019: "the PBX rejected the CDR time format (a tap bug, please report it)",
    20000: "the PBX wants a JSON body here (a tap bug, please report it)",
    20001: "the PBX wants POST here (a tap bug, please report it)",
    10003: "the PBX does not support this request: check 'api_version' of this account "
    "(v1.1.0; OEM boxes use v0.0.1)",
    10004: "the PBX says a required parameter is blank (at login, some firmware wants "
    "'login_port' set)",
}


class RandomRejectedError(TransientVendorError):
    """20020: the download random expired (30 s) or was used; retry with a new one."""


class NoCallsInRange(Exception):
    """20021: the PBX has no CDR in the asked range, i.e. an empty window, not an error."""


LACKS = "answer has no 'status'"


def payload(response: requests.Response, describe: Describe) -> dict[str, t.Any]:
    """The JSON body, parsed once per response (answers.payload)."""
    return answers.payload(response, describe, _json, "status", LACKS)


def parse(body: bytes, describe: Describe, status: int, where: str) -> dict[str, t.Any]:
    """The JSON answer of `where` (the endpoint's path) that came instead of a CDR file."""
    try:
        parsed = json.loads(body)
    except ValueError:
        raise answers.not_a_value(body, status, where, describe) from None
    return answers.enveloped(parsed, "status", LACKS, describe)


def _json(response: requests.Response) -> t.Any:
    return json.loads(response.content)


def check(body: dict[str, t.Any], describe: Describe) -> dict[str, t.Any]:
    """Return a successful body; raise the error policy's exception otherwise."""
    if body.get("status") == "Success":
        return body
    raw = body.get("errno")
    try:
        errno = int(str(raw))
    except ValueError:
        raise MalformedResponseError(describe(f"failed answer without errno: {body}")) from None
    if errno in TOKEN_ERRNOS:
        raise TokenRejectedError(describe(f"{TOKEN_ERRNOS[errno]} (errno {errno})"))
    if errno in TRANSIENT_ERRNOS:
        raise TransientVendorError(describe(f"{TRANSIENT_ERRNOS[errno]} (errno {errno})"))
    if errno == RANDOM_INVALID:
        raise RandomRejectedError(describe("download random expired or used (errno 20020)"))
    if errno == NO_CDR:
        raise NoCallsInRange
    hint = FATAL_ERRNOS.get(errno, "unexpected error")
    raise VendorError(describe(f"{hint} (errno {errno})"))
