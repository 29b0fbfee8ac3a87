"""The yeastar vendor's settings and their checks (VENDOR, for the tap's config schema)."""

from __future__ import annotations

import codecs
import re
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_callcdr.core.errors import ConfigError
from tap_callcdr.core.vendor import VendorSpec
from tap_callcdr.vendors.yeastar.calls import to_call
from tap_callcdr.vendors.yeastar.stream import YeastarCDRStream

EXTID = re.compile(r"all|\d+(,\d+)*")
API_VERSION = re.compile(r"v\d+(\.\d+)*")


def check_account(where: str, account: t.Mapping[str, t.Any]) -> None:
    for key in ("username", "password"):
        if not account.get(key):
            raise ConfigError(f"{where}.{key}", "the PBX API's username and password are needed")
    url = urlsplit(str(account.get("api_url", "")))
    try:
        url.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{where}.api_url", f"{url.netloc!r} has a bad port") from None
    if "/api/" in f"{url.path}/":
        raise ConfigError(
            f"{where}.api_url", "give the PBX only (https://host:8088); the version is api_version"
        )
    version = str(account.get("api_version") or "v1.1.0")
    if not API_VERSION.fullmatch(version):
        raise ConfigError(f"{where}.api_version", f"{version!r} is not like v1.1.0 or v0.0.1")
    extid = "".join(str(account.get("extid") or "all").split())
    if not EXTID.fullmatch(extid):
        raise ConfigError(f"{where}.extid", f"{extid!r}: use all, or extensions like 1000,1001")
    check_tls(where, account)
    encoding = str(account.get("csv_encoding") or "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"{where}.csv_encoding", f"{encoding!r} is not an encoding") from None


def check_tls(where: str, account: t.Mapping[str, t.Any]) -> None:
    bundle = account.get("ca_bundle")
    if bundle and account.get("verify_tls") is False:
        raise ConfigError(f"{where}.verify_tls", "false contradicts ca_bundle: set one of them")
    if bundle and not Path(bundle).is_file():
        raise ConfigError(f"{where}.ca_bundle", f"{bundle!r} is not a readable file")


VENDOR = VendorSpec(
    key="yeastar",
    title="Yeastar S-Series PBXs (CDR CSV download)",
    streams=(YeastarCDRStream,),
    account_properties=(
        th.Property("username", th.StringType, description="PBX API username"),
        th.Property("password", th.StringType, secret=True,
                    description="PBX API password, plain (the tap sends its MD5)"),
        th.Property("api_version", th.StringType, default="v1.1.0",
                    description="API path version; OEM firmware uses v0.0.1"),
        th.Property("extid", th.StringType, default="all",
                    description="Extensions whose calls to read: all, or a comma list"),
        th.Property("ca_bundle", th.StringType,
                    description="PEM file of the CA that signed the PBX's certificate"),
        th.Property("verify_tls", th.BooleanType, default=True,
                    description="false turns TLS verification off (logged as a warning)"),
        th.Property("login_port", th.IntegerType,
                    description="'port' sent at login, for firmware that demands one"),
        th.Property("csv_encoding", th.StringType, default="utf-8",
                    description="Encoding of the CDR file (some firmware writes gbk)"),
    ),
    check_account=check_account,
    wire_secrets=("token", "random"),  # the login token and a download's one-use random, in URLs
    calls=to_call,
)  # fmt: skip
