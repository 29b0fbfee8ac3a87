"""The itnio vendor's settings and their checks (VENDOR, for the tap's config schema)."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_callcdr.core.errors import ConfigError
from tap_callcdr.core.vendor import VendorSpec
from tap_callcdr.vendors.itnio.calls import to_call
from tap_callcdr.vendors.itnio.stream import (
    PAGES_IN_FLIGHT,
    ItnioGroupRecordStream,
    ItnioRecordStream,
    ItnioSipRecordStream,
)

DEFAULT_API_URL = ItnioRecordStream.default_api_url


def check_account(where: str, account: t.Mapping[str, t.Any]) -> None:
    for setting in ("api_key", "api_secret"):
        if not str(account.get(setting) or "").strip():
            raise ConfigError(
                f"{where}.{setting}",
                f"account {account.get('name')!r} needs its ITNIO {setting} (console: API keys)",
            )
    pages = account.get("pages_in_flight")
    if pages is not None and (isinstance(pages, bool) or not isinstance(pages, int) or pages < 1):
        raise ConfigError(f"{where}.pages_in_flight", f"{pages!r}: a whole number, 1 (one by one) or more")


VENDOR = VendorSpec(
    key="itnio",
    title="the ITNIO voice API (recordSipQuery, recordGroupQuery)",
    streams=(ItnioSipRecordStream, ItnioGroupRecordStream),
    account_properties=(
        th.Property("api_key", th.StringType, required=True,
                    description="API key (header Api-Key); api_url defaults to "
                    f"{DEFAULT_API_URL}: set it for a white-label reseller"),
        th.Property("api_secret", th.StringType, required=True, secret=True,
                    description="API secret: signs every request, never sent"),
        th.Property("sip_group_name", th.StringType,
                    description="Only this SIP phone group (exact match; SIP stream)"),
        th.Property("phone_name", th.StringType,
                    description="Only this SIP phone (exact match; SIP stream)"),
        th.Property("pages_in_flight", th.IntegerType, default=PAGES_IN_FLIGHT,
                    description="A window's pages asked at once (1: one by one); lower it "
                    "if the API key is rate limited"),
    ),
    check_account=check_account,
    wire_secrets=("sign",),  # the header signing each request with api_secret
    calls=to_call,
)  # fmt: skip
