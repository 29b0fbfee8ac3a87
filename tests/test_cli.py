"""The console script as Meltano runs it: config errors, about/discover, and a run
killed mid-way that resumes from its last STATE without losing a call."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tempfile
import typing as t
from collections.abc import Iterator
from pathlib import Path

import itnio_helpers
import pytest
import tencent_helpers
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from generic_helpers import STREAM, bill_requests, expected, keys, tap_config
from harness import parse_messages, run_cli, tap_executable, write_json

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(demo_accounts(calls=600, days=10), anchor=ANCHOR).start()
    yield simulator
    simulator.stop()


def broken(config: dict[str, t.Any], path: str, value: t.Any) -> dict[str, t.Any]:
    """A copy of config with one setting changed (None deletes it)."""
    config = json.loads(json.dumps(config))
    *parents, last = path.split(".")
    target = config
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "names"),
    [
        ("start_date", None, "start_date"),
        ("start_date", "last tuesday", "start_date"),
        ("generic_accounts.0.timezone", "Mars/Olympus", "generic_accounts[0].timezone"),
        ("generic_accounts.0.api_url", "ftp://pbx", "generic_accounts[0].api_url"),
        ("generic_accounts.0.accesskey", None, "generic_accounts[0]"),
        ("generic_accounts.1.name", "hq", "generic_accounts[1].name"),
        ("window_hours", 0, "window_hours"),
        ("lookback_minutes", -5, "lookback_minutes"),
        ("generic_accounts", [], "generic_accounts"),
    ],
)
def test_bad_config_is_one_line_naming_the_setting_before_any_request(
    sim: Simulator, path: str, value: t.Any, names: str
) -> None:
    run = run_cli(broken(tap_config(sim), path, value))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert names in errors[0] or names.replace("[0]", "") in errors[0]
    assert sim.requests == []


def test_about_declares_secrets_secret() -> None:
    done = subprocess.run(
        [tap_executable(), "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    account = json.loads(done.stdout)["settings"]["properties"]["generic_accounts"]["items"]
    secret = {name for name, spec in account["properties"].items() if spec.get("secret")}
    assert secret == {"accesskey", "token"}


def test_discover_lists_the_configured_streams(sim: Simulator) -> None:
    """The vendor's streams, and the unified `calls` (its vendor has a mapping), which is
    not selected unless asked for."""
    catalog = json.loads(run_cli_stdout(tap_config(sim), "--discover"))
    entries = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert set(entries) == {STREAM, "calls"}
    calls = entries["calls"]
    assert calls["key_properties"] == ["vendor", "account", "call_id"]
    [root] = [m["metadata"] for m in calls["metadata"] if m["breadcrumb"] == []]
    assert root["selected-by-default"] is False
    entry = entries[STREAM]
    assert entry["key_properties"] == ["account", "id"]
    assert entry["replication_key"] == "starttime"
    assert entry["schema"]["properties"]["starttime"]["format"] == "date-time"


def run_cli_stdout(config: dict[str, t.Any], *args: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_json(Path(tmp, "config.json"), config)
        done = subprocess.run(
            [tap_executable(), "--config", path, *args], capture_output=True, text=True, check=True
        )
    return done.stdout


def test_run_killed_mid_way_resumes_from_its_last_state_without_a_gap(sim: Simulator) -> None:
    config = tap_config(sim, "hq", days=11, window_hours=12)
    sim.faults.add("slow", times=-1, after=6, seconds=0.2)  # time to kill it mid-run
    lines = run_until_killed(config, after_records=300)
    first = parse_messages("\n".join(lines))
    states = [m["value"] for m in first if m["type"] == "STATE"]
    assert states, "the run was killed before its first complete window"
    sim.faults.clear()
    sim.clear_requests()
    second = run_cli(config, state=states[-1])
    assert second.returncode == 0, second.stderr
    emitted = keys([m["record"] for m in first if m["type"] == "RECORD"])
    emitted += keys(second.records(STREAM))
    assert set(emitted) == set(expected(sim, "hq")), "a call was lost across the kill"
    # The resumed run went on from the bookmark (minus lookback), not from start_date.
    starts = [dt.datetime.fromisoformat(r["params"]["starttime"]) for r in bill_requests(sim)]
    earliest_mark = min(
        dt.datetime.fromisoformat(p["replication_key_value"])
        for p in states[-1]["bookmarks"][STREAM]["partitions"]
    )
    floor = (earliest_mark - dt.timedelta(hours=2)).astimezone(SHANGHAI).replace(tzinfo=None)
    assert min(starts) >= floor


def run_until_killed(config: dict[str, t.Any], after_records: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_json(Path(tmp, "config.json"), config)
        proc = subprocess.Popen(
            [tap_executable(), "--config", path],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        lines, records = [], 0
        for line in proc.stdout:
            lines.append(line)
            records += line.startswith('{"type":"RECORD"') or '"type": "RECORD"' in line
            if records >= after_records:
                break
        proc.kill()
        proc.wait()
        proc.stdout.close()
    return lines


# -- a failing stream does not stop the others ----------------------------------------------


@pytest.fixture
def two_vendors() -> Iterator[Simulator]:
    simulator = Simulator(
        [
            *demo_accounts(["hq"], calls=50, days=3),
            *tencent_demo_accounts(["callback"], calls=60, days=3),
            *itnio_demo_accounts(["intl"], calls=40, group_calls=0, days=3),
        ],
        anchor=ANCHOR,
    ).start()
    yield simulator
    simulator.stop()


def two_vendor_config(sim: Simulator) -> dict[str, t.Any]:
    generic = tap_config(sim, days=4)
    generic["generic_accounts"][0]["accesskey"] = "wrong"  # every generic account fails
    itnio = itnio_helpers.tap_config(sim, days=4)
    return {**generic, **tencent_helpers.tap_config(sim, days=4), "itnio_accounts": itnio["itnio_accounts"]}


def test_a_failing_stream_does_not_keep_the_others_from_running(two_vendors: Simulator) -> None:
    """generic_cdr runs first and fails; tencent and ITNIO still land, bookmarks and all,
    and the run fails at the end with one line naming generic_cdr."""
    run = run_cli(two_vendor_config(two_vendors))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [error] = [line for line in run.stderr.splitlines() if " ERROR " in line and "tap-callcdr" in line]
    assert "generic_cdr account 'hq'" in error and "wrong credentials" in error
    assert not run.records(STREAM)
    tencent = tencent_helpers.expected(two_vendors)
    assert sorted(tencent_helpers.keys(run.records(tencent_helpers.STREAM))) == sorted(tencent)
    assert len(run.records("itnio_sip_cdr")) == len(two_vendors.itnio.truth("intl"))
    bookmarks = run.last_state["bookmarks"]
    assert bookmarks[tencent_helpers.STREAM]["partitions"][0]["replication_key_value"]
    assert bookmarks["itnio_sip_cdr"]["partitions"][0]["replication_key_value"]


def test_every_failing_stream_is_named_in_one_line(two_vendors: Simulator) -> None:
    config = two_vendor_config(two_vendors)
    config["tencent_accounts"][0]["app_id"] = "wrong-app-id"
    run = run_cli(config)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [error] = [line for line in run.stderr.splitlines() if "2 streams failed" in line]
    assert "generic_cdr account 'hq'" in error and "tencent_cdr account 'callback'" in error
    assert len(run.records("itnio_sip_cdr")) == len(two_vendors.itnio.truth("intl"))
