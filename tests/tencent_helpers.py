"""Config, expectations and raw calls for tencent_cdr runs against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
import zlib
from pathlib import Path

import requests
from callcdr_simulator import Simulator
from callcdr_simulator.tencent import TIME_FIELDS
from landed import LandedStream, Raw, epoch_to_utc, local_to_utc

STREAM = "tencent_cdr"
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


FAKE_ACCOUNT = {"id": "i", "app_id": "a"}  # well-formed, not valid (tests/vendors.py)


def account_config(sim: Simulator, name: str, **overrides: t.Any) -> dict[str, t.Any]:
    account = sim.tencent.account(name)
    config = {"name": name, "api_url": f"{sim.url}/tencent", "id": account.id, "app_id": account.app_id}
    config.update(overrides)
    return config


def tap_config(sim: Simulator, *names: str, days: int = 8, **overrides: t.Any) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "start_date": (sim.anchor - dt.timedelta(days=days)).isoformat(),
        "settle_lag_minutes": 0,
        **FAST_RETRIES,
        "tencent_accounts": [account_config(sim, n) for n in names or sim.tencent.accounts()],
    }
    config.update(overrides)
    return config


def utc(epoch: str) -> str | None:
    """What the tap must emit for a vendor epoch-second string ("0": never happened)."""
    if epoch == "0":
        return None
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected(sim: Simulator, *names: str) -> dict[tuple[str, str], dict[str, t.Any]]:
    """Ground truth keyed by primary key, times as the tap must emit them."""
    return {
        (name, raw["callId"]): {field: utc(raw[field]) for field in TIME_FIELDS}
        for name in names or sim.tencent.accounts()
        for raw in sim.tencent.truth(name)
    }


def keys(records: list[dict[str, t.Any]]) -> list[tuple[str, str]]:
    return [(r["account"], r["callId"]) for r in records]


def cdr_requests(sim: Simulator) -> list[dict[str, t.Any]]:
    return [r for r in sim.requests if r["vendor"] == "tencent"]


def epoch(moment: dt.datetime) -> str:
    return str(int(moment.timestamp()))


def state(value: str, *accounts: str) -> dict[str, t.Any]:
    """A STATE with this bookmark for each account."""
    partitions = [
        {"context": {"account": a}, "replication_key": "startSrcCallTime", "replication_key_value": value}
        for a in accounts
    ]
    return {"bookmarks": {STREAM: {"partitions": partitions}}}


def bookmarks(run_state: dict[str, t.Any] | None) -> dict[str, str]:
    partitions = (run_state or {}).get("bookmarks", {}).get(STREAM, {}).get("partitions", [])
    return {p["context"]["account"]: p.get("replication_key_value") for p in partitions}


def get_cdr(
    sim: Simulator, name: str = "hq", *, url_id: str | None = None, version: str = "201511v3", **body: t.Any
) -> requests.Response:
    """One raw getCdr request with the account's credentials unless overridden."""
    account = sim.tencent.account(name)
    payload = {"appId": account.app_id, **body}
    return requests.post(
        f"{sim.url}/tencent/{version}/getCdr",
        params={"id": account.id if url_id is None else url_id},
        data=json.dumps(payload),
        timeout=5,
    )


def decoded(response: requests.Response) -> t.Any:
    """The answer's JSON, inflating a zlib body."""
    try:
        return response.json()
    except ValueError:
        return json.loads(zlib.decompress(response.content))


# ------------------------------------------------------- end to end (tests/landed.py)

E2E_CREDENTIALS = ("id", "app_id")
E2E_STREAMS = (LandedStream(STREAM, ("account", "callId"), "startSrcCallTime", TIME_FIELDS),)


def e2e_accounts(days: int) -> list[dict[str, t.Any]]:
    """branch writes local date-times instead of epochs and cuts answers at 80 calls (the tap
    splits windows)."""
    return [
        {"name": "hq", "id": "hq-id", "app_id": "hq-appId-S3cr3t", "calls": 300, "days": days,
         "seed": 7},
        {"name": "branch", "id": "branch-id", "app_id": "branch-appId-S3cr3t", "calls": 200,
         "days": days, "seed": 8, "time_format": "datetime", "timezone": "Asia/Shanghai", "cap": 80},
    ]  # fmt: skip


def e2e_tap_account(account: dict[str, t.Any], api_url: str, ca_file: Path | None) -> dict[str, t.Any]:
    return {"name": account["name"], "api_url": api_url, "id": account["id"],
            "app_id": account["app_id"],
            **({"timezone": account["timezone"]} if "timezone" in account else {})}  # fmt: skip


def e2e_fields(raw: Raw) -> Raw:
    fields = dict(raw)
    fields.setdefault("callType", "3")  # the doc: a record without callType is type 3
    return fields


def e2e_instant(account: dict[str, t.Any], value: str | None) -> dt.datetime | None:
    """Epoch seconds, or local date-times in the account's zone when it has one."""
    if "timezone" not in account:
        return epoch_to_utc(value or "")
    return None if value in (None, "0") else local_to_utc(value, account["timezone"])
