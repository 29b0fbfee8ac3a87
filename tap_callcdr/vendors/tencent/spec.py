"""The tencent vendor's settings and their checks (VENDOR, for the tap's config schema)."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_callcdr.core.errors import ConfigError
from tap_callcdr.core.vendor import VendorSpec
from tap_callcdr.vendors.tencent.calls import to_call
from tap_callcdr.vendors.tencent.stream import TencentCDRStream

CREDENTIALS = {"id": "the id of the getCdr URL", "app_id": "the appId"}


def check_account(where: str, account: t.Mapping[str, t.Any]) -> None:
    for setting, what in CREDENTIALS.items():
        if not account.get(setting):
            raise ConfigError(
                f"{where}.{setting}", f"account {account.get('name')!r} needs {what} Tencent issued"
            )
    url = str(account.get("api_url", ""))
    if "?" in url or "getCdr" in url:  # not echoed: a pasted URL carries the secret id
        raise ConfigError(
            f"{where}.api_url", "give the base URL (https://HOST), without /201511v3/getCdr?id=…"
        )


VENDOR = VendorSpec(
    key="tencent",
    title="Tencent callback (201511v3/getCdr)",
    streams=(TencentCDRStream,),
    account_properties=(
        th.Property("id", th.StringType, secret=True,
                    description="Required: the `id` Tencent assigned for the getCdr URL"),
        th.Property("app_id", th.StringType, secret=True,
                    description="Required: the appId Tencent issued offline"),
        th.Property("src", th.StringType, description="Only calls placed by this caller number"),
        th.Property("compress", th.BooleanType, default=True,
                    description="Ask for zlib-compressed answers (CDR pulls are large)"),
    ),
    check_account=check_account,
    wire_secrets=("appId",),  # the app_id, as the request body names it
    calls=to_call,
)  # fmt: skip
