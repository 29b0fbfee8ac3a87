"""Errors the tap reports as one clear line, naming the setting, account or field.

Fatal vendor errors subclass the SDK's FatalAPIError and transient ones its
RetriableAPIError, so the SDK's retry machinery treats them as intended.
"""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class CallCDRError(Exception):
    """Anything the tap stops on with a one-line message for the user."""


class ConfigError(CallCDRError):
    """A setting is missing or wrong; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"config error in '{setting}': {problem}")
        self.setting = setting


class StateError(CallCDRError):
    """The --state input cannot be used; the message names the file, or stream and account."""


class VendorError(FatalAPIError, CallCDRError):
    """The vendor refused the request for a reason retrying cannot fix."""


class AccountsFailedError(VendorError):
    """Several accounts failed; the others were read to the end."""


class StreamsFailedError(VendorError):
    """Several streams failed; the others were read to the end."""


class MalformedResponseError(VendorError):
    """The vendor answered something that is not its documented format."""


class PaginationError(VendorError):
    """The vendor's paging misbehaved (e.g. served the same page twice)."""


class TransientVendorError(RetriableAPIError):
    """The vendor said "try again later" in its own envelope."""


class IncompleteAnswerError(TransientVendorError):
    """A 2xx answer that is no complete value: empty, cut short in transit with its length
    framed right (so the HTTP client saw nothing wrong), or a gateway's page in its place."""


class RenewalRejectedError(TransientVendorError):
    """The credential was rejected again right after it was renewed. A vendor that expires
    tokens in a burst does this too, so it is retried with backoff (a new login each time),
    not at once, and the account stops only after `max_retries`."""


class TokenRejectedError(RetriableAPIError):
    """The vendor rejected the session token: log in again and retry the request."""


URL_STATUSES = frozenset({404, 405, 501})  # no such path or method there: a wrong URL, not a fault


def url_hint(setting: str, what: str = "no such API at this URL") -> str:
    """Where to look when the account's URL cannot be right (`setting`: its full path)."""
    return f"{what}: is '{setting}' right?"


def raise_collected(failures: t.Sequence[Exception], kind: type[Exception], counted: str) -> None:
    """Raise what a loop that went on past failures collected: the one failure as it is, or
    one `kind` error saying how many (`counted`, e.g. "2 of 3 accounts") and each message."""
    if failures:
        raise collected(failures, kind, counted)


def collected(failures: t.Sequence[Exception], kind: type[Exception], counted: str) -> Exception:
    """The one error `raise_collected` raises for `failures` (at least one)."""
    if len(failures) == 1:
        return failures[0]
    return kind(f"{counted} failed: " + "; ".join(str(error) for error in failures))


def one_line(text: str, limit: int = 300) -> str:
    """Fold a vendor message to a single bounded line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
