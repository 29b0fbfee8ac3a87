"""The answer `{"cdr", "errorCode", "offset", "result"}`, as JSON or zlib-compressed JSON.

Every documented error code is mapped to the policy the issue sets: retry, a tap bug,
or something the user must fix (with what to fix).
"""

from __future__ import annotations

import json
import typing as t
import zlib
from collections.abc import Callable

import requests

from tap_callcdr.core import answers
from tap_callcdr.core.errors import MalformedResponseError, TransientVendorError, VendorError

Describe = Callable[[str], str]

TRANSIENT = {"-203": "Tencent network error", "-501": "Tencent server error"}
BUGS = {
    "-1": "version not supported",
    "-2": "parameter error",
    "-201": "callId error",
    "-202": "timestamp parameter error",
}
FATAL = {
    "-401": "Tencent rejected the appId: check the account's 'app_id'",
    "-402": "Tencent says the URL does not match: check the account's 'id' and 'api_url'",
    "-403": "this host's IP is not on Tencent's whitelist: ask Tencent to add its public IP",
    "-423": "Tencent blocks calls from this account (intrusion or abnormal use suspected): "
    "contact Tencent support",
}
ZLIB_OR_GZIP = zlib.MAX_WBITS | 32  # zlib's own header (what "zlib 压缩" means) or gzip's


def payload(response: requests.Response, describe: Describe) -> dict[str, t.Any]:
    """The decoded answer, decoded once per response (answers.payload)."""

    def decoded(response: requests.Response) -> t.Any:
        return decode(response.content, describe, response.status_code, answers.endpoint(response))

    return answers.payload(response, describe, decoded, "errorCode", "answer has no errorCode")


def decode(content: bytes, describe: Describe, status: int = 200, where: str = "getCdr") -> t.Any:
    """JSON first: errors may come uncompressed, and a server may ignore `compress`. What is
    neither (cut JSON, a page) or a zlib stream cut short is a transport fault (answers.py)."""
    try:
        return json.loads(content)
    except ValueError:
        pass
    inflater = zlib.decompressobj(ZLIB_OR_GZIP)
    try:
        text = inflater.decompress(content)
    except zlib.error:
        raise answers.not_a_value(content, status, where, describe) from None
    if not inflater.eof and not content:
        raise answers.not_a_value(content, status, where, describe)
    if not inflater.eof:  # cut in transit: quote what it inflates to
        raise answers.not_a_value(text, status, where, describe, "zlib answer ends early; inflated so far")
    try:
        return json.loads(text)
    except ValueError:
        what = "zlib answer holds no complete JSON value"
        raise answers.not_a_value(text, status, where, describe, what) from None


def check(body: dict[str, t.Any], describe: Describe) -> None:
    """Raise the error policy's exception unless errorCode is "0"."""
    code, result = str(body["errorCode"]), body.get("result") or ""
    if code == "0":
        return
    said = f"(errorCode {code}: {result})"
    if code in TRANSIENT:
        raise TransientVendorError(describe(f"{TRANSIENT[code]} {said}"))
    if code in BUGS:
        raise VendorError(
            describe(
                f"Tencent rejected the request: {BUGS[code]} {said}; a tap-callcdr bug, please report it"
            )
        )
    if code in FATAL:
        raise VendorError(describe(f"{FATAL[code]} {said}"))
    raise VendorError(describe(f"unexpected errorCode {code}: {result}"))


def calls(body: dict[str, t.Any], describe: Describe) -> tuple[list[dict[str, t.Any]], int]:
    """The records of a successful answer and its offset (0: the answer is whole)."""
    cdr = body.get("cdr") or []
    if not isinstance(cdr, list) or not all(isinstance(row, dict) for row in cdr):
        raise MalformedResponseError(describe(f"'cdr' is not a list of records: {str(cdr)[:120]}"))
    offset = str(body.get("offset", ""))
    if not (offset.isascii() and offset.isdigit()):
        raise MalformedResponseError(
            describe(f"answer has no numeric offset ({body.get('offset')!r}): cannot tell if it was cut")
        )
    return cdr, int(offset)
