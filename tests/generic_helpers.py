"""Config and expectations for generic_cdr runs against the simulator."""

from __future__ import annotations

import datetime as dt
import typing as t
from zoneinfo import ZoneInfo

from callcdr_simulator import Simulator

STREAM = "generic_cdr"
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}


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
