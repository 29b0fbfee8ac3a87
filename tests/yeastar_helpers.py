"""Config and expectations for yeastar_cdr runs against the simulator, served over HTTPS."""

from __future__ import annotations

import datetime as dt
import typing as t
from pathlib import Path
from zoneinfo import ZoneInfo

from callcdr_simulator import Simulator, SimulatorTLS
from callcdr_simulator.yeastar import CSV_COLUMNS, YeastarAccount
from landed import LandedStream, Raw, local_to_utc

STREAM = "yeastar_cdr"
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 5}
INTEGERS = ("callduraction", "talkduraction")
ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
HTTPS = True  # tests reach PBXs over HTTPS, as real ones are, TLS verified (ca_bundle): vendors.py
STANDARD_DEMO = {"extra_columns": ["crm_customer"]}  # newer firmware: `extra` carries a value


FAKE_ACCOUNT = {"username": "u", "password": "p"}  # well-formed, not valid (tests/vendors.py)


def start(tls: SimulatorTLS, accounts: list[YeastarAccount]) -> Simulator:
    return Simulator(accounts, anchor=ANCHOR, ssl_context=tls.context).start()


def account_config(
    sim: Simulator, name: str, ca_file: Path | None, **overrides: t.Any
) -> dict[str, t.Any]:
    pbx = sim.yeastar.account(name)
    config: dict[str, t.Any] = {
        "name": name,
        "api_url": f"{sim.url}/yeastar/{name}",
        "api_version": pbx.api_version,
        "username": pbx.username,
        "password": pbx.password,
        "timezone": pbx.timezone,
    }
    if ca_file is not None:
        config["ca_bundle"] = str(ca_file)
    config.update(overrides)
    return config


def tap_config(
    sim: Simulator,
    *names: str,
    ca_file: Path | None,
    days: int = 8,
    account: dict[str, t.Any] | None = None,
    **overrides: t.Any,
) -> dict[str, t.Any]:
    """Tap config for these PBXs (all by default); `account` overrides every account."""
    names = names or tuple(sim.yeastar.accounts())
    config: dict[str, t.Any] = {
        "start_date": (sim.anchor - dt.timedelta(days=days)).isoformat(),
        "settle_lag_minutes": 0,
        "window_hours": 24 * 9,  # one window: each request costs, tests about windows set this
        **FAST_RETRIES,
        "yeastar_accounts": [
            account_config(sim, name, ca_file, **(account or {})) for name in names
        ],
    }
    config.update(overrides)
    return config


def utc(local: str, zone: str) -> str:
    moment = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key(record: dict[str, t.Any]) -> tuple[str, str, str]:
    """What tells the simulator's rows apart: the legs of a transfer share the callid."""
    return record["account"], record["callid"], record["timestart"]


def expected_record(sim: Simulator, name: str, row: dict[str, str]) -> dict[str, t.Any]:
    """What the tap must emit for one raw CSV row (without row_id)."""
    record: dict[str, t.Any] = {column: row.get(column) for column in CSV_COLUMNS}
    record["timestart"] = utc(row["timestart"], sim.yeastar.account(name).timezone)
    for column in INTEGERS:
        record[column] = int(row[column]) if column in row else None
    record["account"] = name
    record["extra"] = {k: v for k, v in row.items() if k not in CSV_COLUMNS} or None
    return record


def expected(sim: Simulator, *names: str) -> dict[tuple[str, str, str], dict[str, t.Any]]:
    rows = {}
    for name in names or sim.yeastar.accounts():
        for row in sim.yeastar.truth(name):
            record = expected_record(sim, name, row)
            rows[key(record)] = record
    return rows


def assert_complete(sim: Simulator, records: list[dict[str, t.Any]], *names: str) -> None:
    """Every CSV row exactly once, every field as the PBX wrote it (times in UTC)."""
    truth = expected(sim, *names)
    assert sorted(map(key, records)) == sorted(truth), "missing or duplicated rows"
    assert len({r["row_id"] for r in records}) == len(records), "row_id is not unique"
    for record in records:
        got = {k: v for k, v in record.items() if k != "row_id"}
        assert got == truth[key(record)], f"wrong fields for {key(record)}"


def requests_to(sim: Simulator, service: str) -> list[dict[str, t.Any]]:
    return [r for r in sim.requests if r["vendor"] == "yeastar" and r["service"] == service]


def bookmark(state: dict[str, t.Any] | None, account: str) -> str | None:
    partitions = (state or {}).get("bookmarks", {}).get(STREAM, {}).get("partitions", [])
    for partition in partitions:
        if partition["context"]["account"] == account:
            return partition.get("replication_key_value")
    return None


# ------------------------------------------------------- end to end (tests/landed.py)

EXTRA_COLUMNS = ["crm_customer", "坐席组"]  # pbx1's newer firmware: the `extra` JSON column
E2E_CREDENTIALS = ("username", "password")
# The primary key (account, row_id) is a hash the tap makes; the PBX's own identity of a CSV
# row is (callid, timestart): legs of a transferred call share the callid.
E2E_STREAMS = (
    LandedStream(STREAM, ("account", "callid", "timestart"), "timestart", ("timestart",),
                 primary_key=("account", "row_id"), made_by_tap=frozenset({"row_id"})),
)  # fmt: skip


def e2e_accounts(days: int) -> list[dict[str, t.Any]]:
    return [
        {"name": "pbx1", "password": "pbx1-S3cr3t", "timezone": "Asia/Shanghai", "calls": 300,
         "days": days, "seed": 7, "extra_columns": EXTRA_COLUMNS},
        {"name": "pbx2", "password": "pbx2-S3cr3t", "timezone": "Asia/Kolkata", "calls": 200,
         "days": days, "seed": 8},
    ]  # fmt: skip


def e2e_tap_account(account: dict[str, t.Any], api_url: str, ca_file: Path | None) -> dict[str, t.Any]:
    config = {"name": account["name"], "api_url": api_url, "username": "api",
              "password": account["password"], "timezone": account["timezone"]}  # fmt: skip
    return config | ({"ca_bundle": str(ca_file)} if ca_file is not None else {})


def e2e_fields(raw: Raw) -> Raw:
    fields = dict(raw)  # newer firmware's columns, by their CSV name
    fields["extra"] = {c: fields.pop(c) for c in EXTRA_COLUMNS if c in fields} or None
    return fields


def e2e_instant(account: dict[str, t.Any], value: str | None) -> dt.datetime | None:
    return local_to_utc(value, account["timezone"])
