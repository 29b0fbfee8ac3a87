"""What every vendor's authenticator shares: a rejected credential is renewed and the
request retried at once; a rejection right after a renewal is retried with backoff
(RenewalRejectedError), so a burst of expiries heals and a credential that never works
stops after `max_retries`."""

from __future__ import annotations

from singer_sdk.authenticators import APIAuthenticatorBase


class RenewOnceAuthenticator(APIAuthenticatorBase):
    """Counts rejections since the vendor last accepted this account's credentials."""

    def __init__(self) -> None:
        super().__init__()
        self._rejections_in_a_row = 0

    def accepted(self) -> None:
        self._rejections_in_a_row = 0

    def rejected_again(self) -> bool:
        """Count a rejection; True when the renewed credential was rejected too (the caller
        then raises RenewalRejectedError, after renewing all the same)."""
        self._rejections_in_a_row += 1
        return self._rejections_in_a_row > 1
