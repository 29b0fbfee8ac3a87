"""The generic vendor's settings and their checks (VENDOR, for the tap's config schema)."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_callcdr.core.errors import ConfigError
from tap_callcdr.core.vendor import VendorSpec
from tap_callcdr.vendors.generic.calls import to_call
from tap_callcdr.vendors.generic.stream import GenericCDRStream


def check_account(where: str, account: t.Mapping[str, t.Any]) -> None:
    if not account.get("token") and not (account.get("appid") and account.get("accesskey")):
        raise ConfigError(
            where, f"account {account.get('name')!r} needs appid + accesskey, or a token"
        )


VENDOR = VendorSpec(
    key="generic",
    title="the generic call-center API (App.Sip_Cdr.GetBill)",
    streams=(GenericCDRStream,),
    account_properties=(
        th.Property("appid", th.StringType, description="Login appid (with accesskey)"),
        th.Property("accesskey", th.StringType, secret=True, description="Login access key"),
        th.Property("token", th.StringType, secret=True,
                    description="Static token from the vendor console, not appid/accesskey"),
        th.Property("extnumber", th.StringType, description="Only these extensions (comma list)"),
        th.Property("destnumber", th.StringType, description="Only calls to this number"),
    ),
    check_account=check_account,
    calls=to_call,
)  # fmt: skip
