"""Config, expectations and raw calls for tencent_cdr runs against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
import zlib

import requests
from callcdr_simulator import Simulator
from callcdr_simulator.tencent import TIME_FIELDS

STREAM = "tencent_cdr"
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


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
