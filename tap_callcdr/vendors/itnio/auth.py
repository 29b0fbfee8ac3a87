"""ITNIO request signing: `Api-Key`, `Timestamp`, `Sign` = md5(apiKey + apiSecret + Timestamp).

There is no session: every request (and every retry of it) is signed afresh, because the
vendor refuses a Timestamp outside its tolerance with status -16.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import typing as t
from email.utils import parsedate_to_datetime

import requests

from tap_callcdr.core.account import Account
from tap_callcdr.core.auth import RenewOnceAuthenticator
from tap_callcdr.core.errors import RenewalRejectedError, TokenRejectedError

SKEW_WORTH_CORRECTING = 2.0  # seconds; the HTTP Date header only has whole seconds


def epoch_seconds() -> float:
    """This host's clock (a function, so tests can skew it)."""
    return time.time()


def sign(api_key: str, api_secret: str, timestamp: str) -> str:
    return hashlib.md5((api_key + api_secret + timestamp).encode()).hexdigest()


class TimestampExpiredError(TokenRejectedError):
    """Status -16: the signature's Timestamp is outside the vendor's tolerance."""


class ItnioSignAuthenticator(RenewOnceAuthenticator):
    """Signs each request with the account's key and secret (the SDK calls it per attempt)."""

    def __init__(self, account: Account[t.Any], *, logger: logging.Logger) -> None:
        super().__init__()
        self.api_key = str(account.settings["api_key"])
        self._secret = str(account.settings["api_secret"])
        self.logger = logger
        self.clock_offset = 0.0  # vendor clock minus ours, learnt from a -16 answer

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        timestamp = str(int(epoch_seconds() + self.clock_offset))
        request.headers["Api-Key"] = self.api_key
        request.headers["Timestamp"] = timestamp
        request.headers["Sign"] = sign(self.api_key, self._secret, timestamp)
        return request

    def timestamp_expired(self, response: requests.Response, error: TimestampExpiredError) -> None:
        """Re-sign on the vendor's clock when its answer shows it: retried at once the first
        time, after a backoff wait when the re-signed request was refused too (auth.py)."""
        skew = clock_skew(response)
        if skew is not None and abs(skew) >= SKEW_WORTH_CORRECTING:
            self.clock_offset = skew
        if self.rejected_again():  # `error` already names stream and account
            raise RenewalRejectedError(
                f"{error} again after re-signing; {describe_skew(skew)}: "
                "check this host's clock (NTP)"
            )
        self.logger.warning("%s; %s; re-signing and retrying once", error, describe_skew(skew))


def clock_skew(response: requests.Response) -> float | None:
    """Vendor clock minus ours in seconds, from the answer's HTTP Date header; None if absent."""
    try:
        server = parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.UTC)
    # The header has whole seconds: the vendor's time lies in [Date, Date + 1s).
    return round(server.timestamp() + 0.5 - epoch_seconds())


def describe_skew(skew: float | None) -> str:
    margin = SKEW_WORTH_CORRECTING
    if skew is None:
        return "clock skew unknown (the answer carries no Date header)"
    if abs(skew) < margin:
        return f"this host's clock agrees with the vendor's (HTTP Date) within {margin:.0f}s"
    side = "behind" if skew > 0 else "ahead of"
    return f"this host's clock is {abs(skew):.0f}s {side} the vendor's (HTTP Date)"
