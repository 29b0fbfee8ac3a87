"""The answer envelope `{"status": "0", "reason", "data": {...}}`; `status` is a string.

Status codes (from the vendor doc): 0 success, -1 authentication, -2 IP restriction,
-16 timestamp expired, -18 system error, -22 parameter error, -25 time range exceeded.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Callable

import requests

from tap_callcdr.core import answers
from tap_callcdr.core.errors import MalformedResponseError, TransientVendorError, VendorError
from tap_callcdr.fastpath.jsonbody import response_json
from tap_callcdr.vendors.itnio.auth import TimestampExpiredError

OK = "0"
FATAL_HINTS = {
    "-1": "authentication failed: check the account's api_key and api_secret",
    "-2": "this host's IP is not allowed: add it to the API key's IP whitelist "
    "in the ITNIO console",
}
PAGE_FIELDS = ("total", "current", "pages")


def payload(response: requests.Response, describe: Callable[[str], str]) -> dict[str, t.Any]:
    """The JSON body, parsed once per response (answers.payload)."""
    return answers.payload(response, describe, exact_json, "status", "answer has no 'status'")


def exact_json(response: requests.Response) -> t.Any:
    return response_json(response, exact_decimals=True)  # money keeps its digits


def check(
    body: dict[str, t.Any], describe: Callable[[str], str], sent: requests.PreparedRequest | None = None
) -> dict[str, t.Any]:
    """`data` of a successful answer (`payload`'s body); otherwise raise what the error policy
    says. `sent`: the request answered, quoted by the errors about what the tap asked."""
    status, reason = str(body["status"]).strip(), body.get("reason") or ""
    cause = f"(status {status}: {reason})"
    if status == OK:
        return page_data(body, describe)
    if status == "-16":
        raise TimestampExpiredError(describe(f"vendor says the request timestamp expired {cause}"))
    if status == "-18":
        raise TransientVendorError(describe(f"vendor system error {cause}"))
    if status in FATAL_HINTS:
        raise VendorError(describe(f"{FATAL_HINTS[status]} {cause}"))
    asked = request_body(sent)
    if status == "-22":
        raise VendorError(
            describe(f"vendor rejected the request parameters {cause}; this is a tap bug, please "
                     f"report it with this line. Request body: {json.dumps(asked)}")
        )  # fmt: skip
    if status == "-25":
        params = asked.get("params") or {}
        raise VendorError(
            describe(f"vendor refused the window strTime={params.get('strTime')} endTime="
                     f"{params.get('endTime')} {cause}; the tap keeps windows within 31 days "
                     "and two months, so the vendor's limits differ from its doc: lower "
                     "window_hours and report it")
        )  # fmt: skip
    raise VendorError(describe(f"unexpected vendor status {cause}"))


def page_data(body: dict[str, t.Any], describe: Callable[[str], str]) -> dict[str, t.Any]:
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("records") or [], list):
        raise MalformedResponseError(describe(f"answer has no data.records: {str(data)[:120]}"))
    try:
        for name in PAGE_FIELDS:
            data[name] = int(data[name])
    except (KeyError, TypeError, ValueError):
        raise MalformedResponseError(
            describe(f"answer's data lacks integer {'/'.join(PAGE_FIELDS)}: {str(data)[:120]}")
        ) from None
    data["records"] = data.get("records") or []
    return data


def request_body(request: requests.PreparedRequest | None) -> dict[str, t.Any]:
    """What we sent (our own JSON; no secrets: those travel in headers)."""
    body = request.body if request is not None else None
    try:
        sent = json.loads(body) if isinstance(body, str | bytes) else {}
    except ValueError:
        return {}
    return sent if isinstance(sent, dict) else {}
