"""Keep credentials that vendors want in query strings out of every log line and error.

Vendors put secrets in URLs (Yeastar its token and download random, Tencent its account
`id`); urllib3 quotes request URLs in its DEBUG lines and in connection errors, which the
retry log and the final error repeat. One filter on urllib3's loggers and one scrub for
messages. What a secret is called is each vendor's to say (VendorSpec.secret_names); the
tap registers every vendor's here (`register`), so the core names none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from urllib3.exceptions import NewConnectionError

from tap_callcdr.core.errors import one_line, url_hint

URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")  # the ones that quote URLs

_names: frozenset[str] = frozenset()  # what a credential is called (`register`)
_patterns: tuple[re.Pattern[str], ...] = ()  # query values, then JSON string values


def register(names: Iterable[str]) -> None:
    """Mask values named so from now on, in queries and JSON (case ignored); at import time."""
    global _names, _patterns
    _names = _names | {name.lower() for name in names}
    named = "|".join(sorted(map(re.escape, _names)))
    _patterns = (
        re.compile(rf"(?<![A-Za-z0-9_])((?:{named})=)[^&\s'\")]*", re.IGNORECASE),  # a query
        re.compile(rf'("(?:{named})"\s*:\s*")[^"]*', re.IGNORECASE),  # JSON text
    )


def scrub(text: str) -> str:
    """The text with every secret-bearing query value and JSON string value masked (a JSON
    value even cut short: an answer quoted in an error may end inside it)."""
    for pattern in _patterns:
        text = pattern.sub(r"\1***", text)
    return text


def network_reason(exc: BaseException) -> str:
    """urllib3's own reason ("Connection refused"), not its wrapper that quotes the URL."""
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None) or inner
    return scrub(one_line(str(reason) or type(exc).__name__))


def network_cause(exc: BaseException, api_url_setting: str) -> str:
    """A network failure in one line; one that could not connect at all (refused, unknown
    host) says which account setting is most likely wrong."""
    cause = f"{type(exc).__name__}: {network_reason(exc)}"
    return f"{cause} ({url_hint(api_url_setting, 'no connection at all')})" if unreachable(exc) else cause


def unreachable(exc: BaseException) -> bool:
    """No connection was made at all (urllib3's NewConnectionError: refused, no such host)."""
    inner = exc.args[0] if exc.args else exc
    return isinstance(getattr(inner, "reason", None) or inner, NewConnectionError)


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        return True


_FILTER = _ScrubFilter()


def install() -> None:
    """Idempotent: a logger keeps one copy of the same filter."""
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
