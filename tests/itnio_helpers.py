"""Config and expectations for the ITNIO streams against the simulator."""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t
from pathlib import Path

from callcdr_simulator import Simulator
from callcdr_simulator.itnio import GROUP, SIP
from harness import TapRun, run_tap
from landed import LandedStream, Raw, iso_to_utc

SIP_STREAM = "itnio_sip_cdr"
GROUP_STREAM = "itnio_group_cdr"
STREAMS = {SIP_STREAM: SIP, GROUP_STREAM: GROUP}
TIME_FIELDS = ("submitTime", "callTime", "ringingTime", "answerTime", "hangupTime")
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}


FAKE_ACCOUNT = {"api_key": "k", "api_secret": "s"}  # well-formed, not valid (tests/vendors.py)


def account_config(sim: Simulator, name: str, **overrides: t.Any) -> dict[str, t.Any]:
    account = sim.itnio.account(name)
    config = {
        "name": account.name,
        "api_url": f"{sim.url}/itnio/voice/",
        "api_key": account.api_key,
        "api_secret": account.api_secret,
    }
    config.update(overrides)
    return config


def tap_config(sim: Simulator, *names: str, days: int = 4, **overrides: t.Any) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "start_date": (sim.anchor - dt.timedelta(days=days)).isoformat(),
        "settle_lag_minutes": 0,
        **FAST_RETRIES,
        "itnio_accounts": [account_config(sim, n) for n in names or sim.itnio.accounts()],
    }
    config.update(overrides)
    return config


def utc(value: str) -> str | None:
    """What the tap must emit for a vendor time (ISO 8601 with offset; "" = null)."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected(
    sim: Simulator, stream: str, *names: str, since: dt.datetime | None = None
) -> dict[tuple[str, str], dict[str, t.Any]]:
    """Ground truth keyed by primary key, times as the tap must emit them."""
    rows = {}
    for name in names or sim.itnio.accounts():
        for raw in sim.itnio.truth(name, STREAMS[stream]):
            times = {field: utc(raw[field]) for field in TIME_FIELDS}
            if since is None or times["callTime"] >= since.strftime("%Y-%m-%dT%H:%M:%SZ"):
                rows[(name, raw["voiceId"])] = times
    return rows


def keys(records: list[dict[str, t.Any]]) -> list[tuple[str, str]]:
    return [(r["account"], r["voiceId"]) for r in records]


def queries(sim: Simulator, stream: str | None = None) -> list[dict[str, t.Any]]:
    """The data requests the simulator saw (params flattened, Sign masked)."""
    wanted = {STREAMS[stream]} if stream else set(STREAMS.values())
    return [r for r in sim.requests if r["vendor"] == "itnio" and r["service"] in wanted]


def run_exact(config: dict, state: dict | None = None) -> TapRun:
    """Like harness.run_tap, but reads numbers as Decimal, the way SDK targets do."""
    return run_tap(config, state, parse_float=decimal.Decimal)


def state_for(stream: str, account: str, bookmark: str) -> dict[str, t.Any]:
    partition = {
        "context": {"account": account},
        "replication_key": "callTime",
        "replication_key_value": bookmark,
    }
    return {"bookmarks": {stream: {"partitions": [partition]}}}


def bookmark(run: TapRun, stream: str, account: str) -> str:
    assert run.last_state is not None
    for partition in run.last_state["bookmarks"][stream]["partitions"]:
        if partition["context"]["account"] == account:
            return str(partition["replication_key_value"])
    raise AssertionError(f"no bookmark for {account}")


# ------------------------------------------------------- end to end (tests/landed.py)


def _is_group(raw: Raw) -> bool:
    return "baseCost" in raw  # the truth holds both endpoints; group records carry baseCost


E2E_CREDENTIALS = ("api_key", "api_secret")
E2E_STREAMS = (
    LandedStream(SIP_STREAM, ("account", "voiceId"), "callTime", TIME_FIELDS,
                 money=("cost", "rate"), holds=lambda raw: not _is_group(raw)),
    # the control API adds ITNIO calls to the SIP endpoint only
    LandedStream(GROUP_STREAM, ("account", "voiceId"), "callTime", TIME_FIELDS,
                 money=("cost", "rate", "baseCost"), gets_added_calls=False, holds=_is_group),
)  # fmt: skip


def e2e_accounts(days: int) -> list[dict[str, t.Any]]:
    return [
        {"name": "intl", "api_key": "intl-apikey", "api_secret": "intl-secret-S3cr3t",
         "timezone": "Asia/Shanghai", "calls": 300, "group_calls": 100, "days": days, "seed": 7},
        {"name": "latam", "api_key": "latam-apikey", "api_secret": "latam-secret-S3cr3t",
         "timezone": "America/Sao_Paulo", "currency": "USD", "calls": 200, "group_calls": 80,
         "days": days, "seed": 8},
    ]  # fmt: skip


def e2e_tap_account(account: dict[str, t.Any], api_url: str, ca_file: Path | None) -> dict[str, t.Any]:
    return {"name": account["name"], "api_url": api_url, "api_key": account["api_key"],
            "api_secret": account["api_secret"]}  # fmt: skip


def e2e_fields(raw: Raw) -> Raw:
    return dict(raw)


def e2e_instant(account: dict[str, t.Any], value: str | None) -> dt.datetime | None:
    return iso_to_utc(value or "")  # ISO 8601 with offset
