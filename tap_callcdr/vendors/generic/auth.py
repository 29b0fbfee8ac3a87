"""Session token for the generic API: `App.Sip_Auth.Login`, cached and renewed."""

from __future__ import annotations

import time
import typing as t
from collections.abc import Callable
from urllib.parse import parse_qsl

import requests
from singer_sdk import metrics

from tap_callcdr.core.account import Account
from tap_callcdr.core.auth import RenewOnceAuthenticator
from tap_callcdr.core.errors import (
    URL_STATUSES,
    RenewalRejectedError,
    TokenRejectedError,
    TransientVendorError,
    VendorError,
    url_hint,
)
from tap_callcdr.core.redact import network_cause
from tap_callcdr.vendors.generic import envelope

LOGIN_SERVICE = "App.Sip_Auth.Login"
RENEW_MARGIN = 600  # seconds before expiry to log in again rather than risk a 600 mid-window
DEFAULT_TTL = 12 * 3600
Login = Callable[[], tuple[str, float]]  # a token and its lifetime in seconds


class GetBillTokenAuthenticator(RenewOnceAuthenticator):
    """Puts the account's token into the form body of every request.

    A configured static token is used as is; otherwise it logs in with appid +
    accesskey and renews before expiry or after the vendor rejects the token.
    """

    def __init__(
        self,
        account: Account[t.Any],
        *,
        url: str,
        timeout: float,
        retrying: Callable[[Login], Login],
        request_counter: Callable[[], metrics.Counter] | None = None,
    ) -> None:
        """`account`: whose credentials, session and messages; `url`: where the stream posts
        GetBill (every service goes to one URL); `retrying`: the stream's retry policy
        (`retried_alone`), so a login is retried, waited and logged like any request, and what
        it gives up with is not retried again by the request that needed a new token;
        `request_counter`: the stream's `get_http_request_counter`, so that logins count in its
        METRIC http_request_count like every other request."""
        super().__init__()
        self.url = url
        self.appid = account.settings.get("appid")
        self.accesskey = account.settings.get("accesskey")
        self.static_token = account.settings.get("token")
        self.session = account.session
        self.describe = account.describe
        self.api_url_setting = account.setting("api_url")
        self.timeout = timeout
        self.retrying = retrying
        self.request_counter = request_counter
        self.context = account.context
        self._token: str | None = None
        self._expires_at = 0.0

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        fields = dict(parse_qsl(str(request.body or ""), keep_blank_values=True))
        fields["token"] = self.token()
        request.prepare_body(data=fields, files=None)
        return request

    def token(self) -> str:
        if self.static_token:
            return str(self.static_token)
        if self._token is None or time.monotonic() >= self._expires_at:
            self._login()
        assert self._token is not None
        return self._token

    def rejected(self, error: TokenRejectedError) -> None:
        """Drop the token so the retry logs in again: at once the first time, after a backoff
        wait when the new token was rejected too (auth.py)."""
        again = self.rejected_again()
        if self.static_token:
            if not (self.appid and self.accesskey):
                raise VendorError(
                    self.describe(
                        f"the configured token was rejected ({error}): "
                        "set a valid 'token' or appid + accesskey"
                    )
                ) from None
            self.static_token = None  # fall back to logging in
            return
        self._token = None
        if again:
            raise RenewalRejectedError(self.describe(f"token rejected again after a new login: {error}"))

    def _login(self) -> None:
        token, ttl = self.retrying(self._login_once)()
        self._token = token
        # Renew ahead of expiry so a token never dies in the middle of a window.
        self._expires_at = time.monotonic() + ttl - min(RENEW_MARGIN, ttl / 10)

    def _login_once(self) -> tuple[str, float]:
        form = {"service": LOGIN_SERVICE, "appid": self.appid, "accesskey": self.accesskey}
        # auth=: the shared session's auth is this authenticator; login must not recurse
        self._count_request()
        try:
            response = self.session.post(self.url, data=form, timeout=self.timeout, auth=_as_is)
        except requests.RequestException as exc:  # retried; the message names the account
            raise TransientVendorError(
                self.describe(f"login: {network_cause(exc, self.api_url_setting)}")
            ) from None
        if response.status_code in URL_STATUSES:  # before the 5xx retries: 501 is no fault
            hint = url_hint(self.api_url_setting)
            raise VendorError(self.describe(f"login: HTTP {response.status_code} {response.reason}: {hint}"))
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientVendorError(self.describe(f"login: HTTP {response.status_code}"))
        body = envelope.payload(response, lambda cause: self.describe(f"login: {cause}"))
        data = envelope.check(body, lambda cause: self.describe(f"login: {cause}"))
        result = data.get("result") or {}
        if not result.get("token"):
            raise VendorError(self.describe("login answer carries no token"))
        return str(result["token"]), float(result.get("expire") or DEFAULT_TTL)

    def _count_request(self) -> None:
        if self.request_counter is None:
            return
        with self.request_counter() as counter:  # logged at once: logins are rare
            counter.with_context(self.context)
            counter.increment()


def _as_is(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request
