"""The PBX API token: `login` with the password's MD5, kept alive with `heartbeat`.

A refused login (20003, 20002) is never retried: five failures in a row lock the API for
ten minutes. A token the PBX rejects (20004-20006) is dropped so the retry logs in again,
once; a second rejection right after a fresh login stops the run.
"""

from __future__ import annotations

import hashlib
import time
import typing as t
from collections.abc import Callable

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_callcdr.core.account import Account
from tap_callcdr.core.auth import RenewOnceAuthenticator
from tap_callcdr.core.errors import (
    IncompleteAnswerError,
    MalformedResponseError,
    RenewalRejectedError,
    TokenRejectedError,
    VendorError,
)
from tap_callcdr.vendors.yeastar import envelope
from tap_callcdr.vendors.yeastar.transport import api_base, with_query

Send = Callable[[requests.PreparedRequest], requests.Response]


# The PBX locks its API for 10 minutes after 5 failed logins; a login whose answer was lost
# (cut, a proxy's page, a timeout) may have been one, so a 5th such login in a row is not sent.
UNANSWERED_LOGINS = 4
LOST = (RetriableAPIError, requests.RequestException, ConnectionResetError)
# A login answer that says something, only not now: the PBX's "busy" code in a whole envelope,
# or 429. No failed login and nothing lost: retried, never counted as unanswered. (5xx stay
# counted: a gateway's 502/504 or the PBX failing mid-login may hide a failed login.)
ANSWERED_STATUSES = range(200, 500)


class YeastarTokenAuthenticator(RenewOnceAuthenticator):
    """Adds `?token=` to every request of one PBX."""

    # The PBX drops a token after 30 idle minutes; past this, a heartbeat checks it first.
    keepalive_after: t.ClassVar[float] = 20 * 60

    def __init__(
        self, account: Account[t.Any], *, send: Send, validate: Callable[[requests.Response], None]
    ) -> None:
        """`send`: the stream's way to the PBX (its TLS policy, counted); `validate`: its
        check of an answer."""
        super().__init__()
        settings = account.settings
        self.base = api_base(settings)
        self.username = str(settings.get("username") or "")
        self.password = str(settings.get("password") or "")
        self.login_port = settings.get("login_port")
        self.send = send
        self.validate = validate
        self.describe = account.describe
        self._token: str | None = None
        self._last_used = 0.0
        self._unanswered = 0  # logins in a row whose answer was lost

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.url = with_query(str(request.url), {"token": self.token()})
        return request

    def token(self) -> str:
        now = time.monotonic()
        if self._token is not None and now - self._last_used > self.keepalive_after:
            self._heartbeat()
        if self._token is None:
            self._token = self._login()
        self._last_used = now
        return self._token

    def rejected(self, error: TokenRejectedError) -> None:
        """Drop the token so the retry logs in again: at once the first time, after a backoff
        wait when the new token was rejected too (auth.py)."""
        self._token = None
        if self.rejected_again():
            raise RenewalRejectedError(self.describe(f"token rejected again after a new login: {error}"))

    def _login(self) -> str:
        """A new token; a lost answer is retried by the caller, but never up to the lock."""
        try:
            token = self._login_once()
        except LOST as error:
            if getattr(error, "login_answered", False):
                raise  # the PBX said "not now": retried by the caller, nothing counted
            self._unanswered += 1
            if self._unanswered >= UNANSWERED_LOGINS:
                raise VendorError(self.describe(
                    f"login: {self._unanswered} logins in a row got no answer from the PBX; not "
                    "sending a 5th (5 failed logins lock its API for 10 minutes): check the "
                    "network to the PBX and this account's 'username'/'password', then run again"
                )) from None  # fmt: skip
            raise
        self._unanswered = 0
        return token

    def _login_once(self) -> str:
        body: dict[str, str] = {
            "username": self.username,
            "password": hashlib.md5(self.password.encode()).hexdigest(),  # the API's scheme
        }
        if self.login_port:
            body["port"] = str(self.login_port)
        response = self.send(requests.Request("POST", self.base + "login", json=body).prepare())
        try:
            self.validate(response)
        except TokenRejectedError as error:  # nonsense at login; do not loop on it
            raise VendorError(self.describe(f"login: {error}")) from None
        except RetriableAPIError as error:
            complete = not isinstance(error, IncompleteAnswerError)  # not cut, empty or a page
            error.login_answered = complete and response.status_code in ANSWERED_STATUSES  # type: ignore[attr-defined]
            raise
        token = envelope.payload(response, self.describe).get("token")
        if not token:
            raise MalformedResponseError(self.describe("login answer carries no token"))
        return str(token)

    def _heartbeat(self) -> None:
        """Keep the idle token alive; if it already died, forget it and log in again."""
        assert self._token is not None
        url = with_query(self.base + "heartbeat", {"token": self._token})
        try:
            self.validate(self.send(requests.Request("POST", url, json={}).prepare()))
        except TokenRejectedError:
            self._token = None
