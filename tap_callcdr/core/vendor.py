"""What a vendor package tells the tap: its streams, its account settings, its checks."""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from dataclasses import dataclass

from singer_sdk import typing as th

if t.TYPE_CHECKING:
    from tap_callcdr.core.stream import CDRStream

DEFAULT_ZONE = "Asia/Shanghai"  # where this API family's vendors and most of their PBXs are

ACCOUNT_COMMON = (
    th.Property("name", th.StringType, required=True,
                description="Account name, stored in every record"),
    th.Property("timezone", th.StringType, default=DEFAULT_ZONE,
                description="IANA zone the vendor's local times are in"),
    th.Property("api_url", th.StringType,
                description="The vendor API base URL (required unless the vendor has one default)"),
)  # fmt: skip


@dataclass(frozen=True)
class VendorSpec:
    """One vendor: config key `<key>_accounts` turns its streams on."""

    key: str
    title: str
    streams: tuple[type[CDRStream], ...]
    account_properties: tuple[th.Property, ...]
    check_account: Callable[[str, t.Mapping[str, t.Any]], None]
    # Secrets named only on the wire, not as a setting (query parameters, JSON keys, headers):
    # a session token, a signature. Settings say theirs with `secret=True`.
    wire_secrets: tuple[str, ...] = ()
    # Its calls in the unified shape (core/calls.py): `to_call(stream, record)` from the
    # vendor package's calls.py; None until the vendor has one.
    calls: Callable[[str, t.Mapping[str, t.Any]], dict[str, t.Any]] | None = None

    @property
    def secret_names(self) -> tuple[str, ...]:
        """What this vendor's secrets are called in settings and on the wire: the tap has
        every log line and error mask them (core/redact.py)."""
        settings = (prop.name for prop in self.account_properties if prop.secret)
        return (*settings, *self.wire_secrets)

    @property
    def default_api_url(self) -> str | None:
        """The one public endpoint all the vendor's streams share, if it has one."""
        urls = {stream.default_api_url for stream in self.streams}
        return urls.pop() if len(urls) == 1 else None

    @property
    def setting(self) -> str:
        return f"{self.key}_accounts"

    def accounts_property(self) -> th.Property:
        # closed: a misspelt setting is refused (settings.py), never silently ignored
        account = th.ObjectType(
            *ACCOUNT_COMMON, *self.account_properties, additional_properties=False
        )
        return th.Property(
            self.setting, th.ArrayType(account), description=f"Accounts of {self.title}"
        )
