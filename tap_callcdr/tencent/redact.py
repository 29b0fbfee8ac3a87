"""Keep the credential Tencent wants in the query string (`?id=`) out of every log line.

urllib3 quotes request URLs in its DEBUG lines and in connection errors, which the
retry log and the final error message repeat.
"""

from __future__ import annotations

import logging
import re

URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")  # the ones that quote URLs
SECRET_QUERY = re.compile(r"([?&]id=)[^&\s'\")]*")


def redact(text: str) -> str:
    return SECRET_QUERY.sub(r"\1***", text)


class RedactFilter(logging.Filter):
    """Rewrites a record's message with the secret masked (the logger's args quote URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True


FILTER = RedactFilter()


def install() -> None:
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(FILTER)  # idempotent for the same filter
