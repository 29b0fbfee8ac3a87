"""One configured account of a stream, as one object: its name, settings, zone, HTTP session
and authenticator, and how it names itself and its settings in errors.

A stream opens each account once (`CDRStream.open_account`, where a vendor adds its
authenticator and anything else it keeps per account), keeps it (`CDRStream.account`), and
passes it to the code that reads the account's windows. Only the SDK's hooks that get no
context (the paginator, `parse_response`, ...) find it through the reader thread's account
(`CDRStream.reading_account`).
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import requests

from tap_callcdr.core.errors import TransientVendorError, one_line
from tap_callcdr.core.redact import network_cause
from tap_callcdr.core.vendor import DEFAULT_ZONE

AuthT = t.TypeVar("AuthT")


@dataclass(eq=False)
class Account(t.Generic[AuthT]):
    """An account as one stream reads it (a vendor may subclass it to keep more per account)."""

    name: str
    stream: str  # the stream reading it, as its messages name it
    path: str  # where its settings are, e.g. `yeastar_accounts[0]`
    settings: Mapping[str, t.Any]
    session: requests.Session  # its own keep-alive connections: accounts never share one
    zone: ZoneInfo = field(init=False)  # looked up once: post_process asks for it per record
    authenticator: AuthT = field(init=False)  # the vendor's, made with the account (open_account)

    def __post_init__(self) -> None:
        self.zone = account_zone(self.settings)

    @property
    def context(self) -> dict[str, t.Any]:
        """The stream partition it is (the SDK's context of its records, state and metrics)."""
        return {"account": self.name}

    def setting(self, key: str) -> str:
        """A setting's full path, e.g. `yeastar_accounts[0].api_url`, for messages that say
        what to fix."""
        return f"{self.path}.{key}"

    def describe(self, cause: str) -> str:
        """One line naming the stream, this account, and the cause."""
        return described(self.stream, self.name, cause)

    def network_errors(self) -> t.ContextManager[None]:
        """Network failures as retriable errors naming this account, with no URL secret."""
        return network_errors_named(self.describe, self.setting("api_url"))


def described(stream: str, account: str, cause: str) -> str:
    return one_line(f"{stream} account '{account}': {cause}")


@contextmanager
def network_errors_named(describe: Callable[[str], str], api_url_setting: str) -> Iterator[None]:
    """Network failures stay retriable, but say which account failed, and no URL secret."""
    try:
        yield
    except (ConnectionResetError, requests.RequestException) as exc:
        if isinstance(exc, requests.HTTPError):
            raise
        raise TransientVendorError(describe(network_cause(exc, api_url_setting))) from None


def account_zone(settings: Mapping[str, t.Any]) -> ZoneInfo:
    return ZoneInfo(settings.get("timezone") or DEFAULT_ZONE)
