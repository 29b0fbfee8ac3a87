"""Config and expectations for generic_cdr runs against the simulator."""

from __future__ import annotations

import datetime as dt
import typing as t
from pathlib import Path
from zoneinfo import ZoneInfo

from callcdr_simulator import Simulator
from landed import LandedStream, Raw, local_to_utc

STREAM = "generic_cdr"
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}


FAKE_ACCOUNT = {"appid": "a", "accesskey": "k"}  # well-formed, not valid (tests/vendors.py)


def account_config(sim: Simulator, name: str, **overrides: t.Any) -> dict[str, t.Any]:
    account = sim.generic.account(name)
    config = {
        "name": account.name,
        "api_url": f"{sim.url}/generic/",
        "appid": account.appid,
        "accesskey": account.accesskey,
        "timezone": account.timezone,
    }
    config.update(overrides)
    return config


def tap_config(sim: Simulator, *names: str, days: int = 8, **overrides: t.Any) -> dict[str, t.Any]:
    names = names or tuple(sim.generic.accounts())
    config: dict[str, t.Any] = {
        "start_date": (sim.anchor - dt.timedelta(days=days)).isoformat(),
        "settle_lag_minutes": 0,
        **FAST_RETRIES,
        "generic_accounts": [account_config(sim, name) for name in names],
    }
    config.update(overrides)
    return config


def utc(local: str | None, zone: str) -> str | None:
    """What the tap must emit for a vendor local time."""
    if not local:
        return None
    moment = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected(sim: Simulator, *names: str) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Ground truth keyed by primary key, times as the tap must emit them."""
    rows = {}
    for name in names or sim.generic.accounts():
        zone = sim.generic.account(name).timezone
        for raw in sim.generic.truth(name):
            rows[(name, raw["id"])] = {
                "starttime": utc(raw["starttime"], zone),
                "answertime": utc(raw["answertime"], zone),
                "endtime": utc(raw["endtime"], zone),
            }
    return rows


def keys(records: list[dict[str, t.Any]]) -> list[tuple[str, int]]:
    return [(r["account"], r["id"]) for r in records]


def bill_requests(sim: Simulator) -> list[dict[str, t.Any]]:
    return [r for r in sim.requests if r["service"] == "App.Sip_Cdr.GetBill"]


def logins(sim: Simulator) -> list[dict[str, t.Any]]:
    return [r for r in sim.requests if r["service"] == "App.Sip_Auth.Login"]


# ------------------------------------------------------- end to end (tests/landed.py)

E2E_CREDENTIALS = ("appid", "accesskey")
E2E_STREAMS = (
    LandedStream("generic_cdr", ("account", "id"), "starttime", ("starttime", "answertime", "endtime")),
)


def e2e_accounts(days: int) -> list[dict[str, t.Any]]:
    """Zones differ on purpose; branch speaks doc v1."""
    return [
        {"name": "hq", "appid": "hq-appid", "accesskey": "hq-accesskey-S3cr3t",
         "timezone": "Asia/Shanghai", "calls": 300, "days": days, "seed": 7},
        {"name": "branch", "appid": "branch-appid", "accesskey": "branch-accesskey-S3cr3t",
         "timezone": "America/Sao_Paulo", "doc_version": "v1", "calls": 200, "days": days, "seed": 8},
    ]  # fmt: skip


def e2e_tap_account(account: dict[str, t.Any], api_url: str, ca_file: Path | None) -> dict[str, t.Any]:
    return {"name": account["name"], "api_url": api_url, "appid": account["appid"],
            "accesskey": account["accesskey"], "timezone": account["timezone"]}  # fmt: skip


def e2e_fields(raw: Raw) -> Raw:
    fields = dict(raw)
    if "displaynumber" in fields:  # doc v1's name for disnumber
        fields["disnumber"] = fields.pop("displaynumber")
    return fields


def e2e_instant(account: dict[str, t.Any], value: str | None) -> dt.datetime | None:
    return local_to_utc(value, account["timezone"])
