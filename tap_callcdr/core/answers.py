"""A vendor's answer read once, and the one rule for one that does not parse, for every
vendor's envelope.py.

The paginator, check_response and parse_response each ask for an answer's payload: it is
decoded once and kept on the response (`payload`).

A 2xx body that is not a complete value (empty, cut short by a proxy that framed the cut
body with a matching Content-Length, or a gateway's HTML/text page in its place) is a
transport fault: asking again can help, so it is retried like a 502. Any other status with
such a body stays fatal (a 404 page at a wrong URL does not heal). Complete JSON that is not
the vendor's envelope is each envelope's own business, and fatal.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from urllib.parse import urlsplit

from tap_callcdr.core.errors import CallCDRError, IncompleteAnswerError, MalformedResponseError, one_line
from tap_callcdr.core.redact import scrub

if t.TYPE_CHECKING:
    import requests

Describe = Callable[[str], str]

EXCERPT_BYTES = 80
SPACE_AND_BOM = b"\xef\xbb\xbf \t\r\n"
PARSED = "_callcdr_payload"  # the attribute a response keeps its envelope in


def payload(
    response: requests.Response,
    describe: Describe,
    decode: Callable[[requests.Response], t.Any],
    key: str,
    lacks: str,
    where: Callable[[requests.Response], str] | None = None,
) -> dict[str, t.Any]:
    """The answer's envelope: `decode(response)`, decoded once and kept on the response.

    `decode` raises ValueError for a body that is no complete value: that is the transport
    fault (`not_a_value`, naming `where(response)`, by default the endpoint), unless it raised
    the fault itself, saying better what the body is. A value without the envelope's `key` is
    the vendor's answer to something else, and fatal: `lacks` says so.
    """
    cached: dict[str, t.Any] | None = response.__dict__.get(PARSED)
    if cached is None:
        try:
            value = decode(response)
        except ValueError:
            named = (where or endpoint)(response)
            raise not_a_value(response.content, response.status_code, named, describe) from None
        cached = response.__dict__[PARSED] = enveloped(value, key, lacks, describe)
    return cached


def enveloped(value: t.Any, key: str, lacks: str, describe: Describe) -> dict[str, t.Any]:
    """`value`, if it is an object holding `key`; else the fatal error `lacks` begins."""
    if not isinstance(value, dict) or key not in value:
        raise MalformedResponseError(describe(f"{lacks}: {str(value)[:120]}"))
    return value


def endpoint(response: requests.Response) -> str:
    """The path the answer came from: no query string, so no token or random."""
    return urlsplit(response.url or "").path or "/"


def not_a_value(
    content: bytes, status: int, where: str, describe: Describe, what: str = ""
) -> CallCDRError | IncompleteAnswerError:
    """The error for a body that is not a complete value, naming `where` (the endpoint) and
    quoting its start; `what` overrides what the line says it is."""
    what = what or kind_of(content)
    cause = f"{where}: {what} (HTTP {status}, {len(content)} bytes)"
    cause += f": {excerpt(content)}" if content else ""
    if 200 <= status < 300:
        return IncompleteAnswerError(describe(cause))
    return MalformedResponseError(describe(cause))


def kind_of(content: bytes) -> str:
    head = content.lstrip(SPACE_AND_BOM)[:1]
    if not head:
        return "empty answer"
    if head in (b"{", b"["):
        return "answer cut short inside its JSON value"
    return "answer is not JSON (a gateway's or proxy's page?)"


def excerpt(content: bytes) -> str:
    """The first bytes as one printable line, credentials masked."""
    text = content[:EXCERPT_BYTES].decode("utf-8", "replace")
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return one_line(scrub(shown), limit=EXCERPT_BYTES * 2)
