"""Keep credentials that vendors want in query strings out of every log line and error.

Yeastar puts its token and download random in the URL, Tencent its account `id`; urllib3
quotes request URLs in its DEBUG lines and in connection errors, which the retry log and
the final error repeat. One filter on urllib3's loggers and one scrub for messages.
"""

from __future__ import annotations

import logging
import re

from urllib3.exceptions import NewConnectionError

from tap_callcdr.core.errors import one_line, url_hint

SECRET_NAMES = "token|random|password|accesskey|api_secret|sign"  # what a credential is called
SECRET_PARAM = re.compile(  # in a query string (Tencent's account `id` too)
    rf"(?<![A-Za-z0-9_])((?:id|{SECRET_NAMES})=)[^&\s'\")]*",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(rf'("(?:{SECRET_NAMES})"\s*:\s*")[^"]*', re.IGNORECASE)  # in JSON text
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")  # the ones that quote URLs


def scrub(text: str) -> str:
    """The text with every secret-bearing query value and JSON string value masked (a JSON
    value even cut short: an answer quoted in an error may end inside it)."""
    return SECRET_VALUE.sub(r"\1***", SECRET_PARAM.sub(r"\1***", text))


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
