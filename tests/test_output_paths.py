"""Every command path of the console script, every vendor configured at once: the output is
complete, and a STATE never comes before the RECORD or BATCH messages it covers.

The Yeastar PBX has extra CSV columns (records the SDK's conformance rebuilds, so they take
the SDK's write path), and start_date lies before the first call (the first windows are
empty): the case in which `--test` lost Yeastar's record.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import typing as t
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import generic_helpers
import itnio_helpers
import pytest
import tencent_helpers
import yeastar_helpers
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from callcdr_simulator.yeastar import yeastar_demo_accounts
from harness import TapRun, run_cli, tap_executable, write_json

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
STREAMS = ("generic_cdr", "itnio_group_cdr", "itnio_sip_cdr", "tencent_cdr", "yeastar_cdr")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(
        [
            *demo_accounts(["hq", "branch"], calls=150, days=3),
            *tencent_demo_accounts(["callback"], calls=150, days=3),
            *itnio_demo_accounts(["intl"], calls=150, group_calls=60, days=3),
            *yeastar_demo_accounts(["pbx1", "pbx2"], calls=150, extra_columns=["callername"]),
        ],
        anchor=ANCHOR,
    ).start()
    yield simulator
    simulator.stop()


def every_vendor(sim: Simulator) -> dict[str, t.Any]:
    return {
        "start_date": (ANCHOR - dt.timedelta(days=10)).isoformat(),
        "settle_lag_minutes": 0,
        "window_hours": 24,
        **yeastar_helpers.FAST_RETRIES,
        "generic_accounts": generic_helpers.tap_config(sim)["generic_accounts"],
        "tencent_accounts": tencent_helpers.tap_config(sim)["tencent_accounts"],
        "itnio_accounts": itnio_helpers.tap_config(sim)["itnio_accounts"],
        "yeastar_accounts": yeastar_helpers.tap_config(sim, ca_file=None)["yeastar_accounts"],
    }


def primary_keys(sim: Simulator) -> dict[str, tuple[t.Callable[[dict[str, t.Any]], t.Any], set[t.Any]]]:
    """Per stream: a record's primary key, and every key the simulator holds."""

    def by(field: str) -> t.Callable[[dict[str, t.Any]], t.Any]:
        return lambda record: (record["account"], record[field])

    return {
        "generic_cdr": (by("id"), set(generic_helpers.expected(sim))),
        "tencent_cdr": (by("callId"), set(tencent_helpers.expected(sim))),
        "itnio_sip_cdr": (by("voiceId"), set(itnio_helpers.expected(sim, "itnio_sip_cdr"))),
        "itnio_group_cdr": (by("voiceId"), set(itnio_helpers.expected(sim, "itnio_group_cdr"))),
        "yeastar_cdr": (yeastar_helpers.key, set(yeastar_helpers.expected(sim))),
    }


def delivered(run: TapRun) -> list[tuple[int, str, dict[str, t.Any]]]:
    """(position of the message that delivered it, stream, record) for every record: RECORD
    messages, and the records in the files of BATCH messages, each file read as its message
    says (a target reads it so: the SDK's opens it as gzip only when `compression` says gzip)."""
    out = []
    for position, message in enumerate(run.messages):
        if message["type"] == "RECORD":
            out.append((position, message["stream"], message["record"]))
        elif message["type"] == "BATCH":
            opener = gzip.open if message["encoding"].get("compression") == "gzip" else open
            for url in message["manifest"]:
                with opener(Path(urlparse(url).path), "rt") as lines:
                    out += [(position, message["stream"], json.loads(line)) for line in lines]
    return out


def assert_states_follow_what_they_cover(run: TapRun) -> None:
    """For every STATE: each record below a bookmark in it (its window was read completely)
    was delivered before that STATE."""
    schemas = [m for m in run.messages if m["type"] == "SCHEMA"]
    replication_keys = {m["stream"]: m["bookmark_properties"][0] for m in schemas}
    records = delivered(run)
    states = [(i, m["value"]) for i, m in enumerate(run.messages) if m["type"] == "STATE"]
    assert states
    for position, state in states:
        for stream, bookmark in state.get("bookmarks", {}).items():
            for partition in bookmark.get("partitions", []):
                mark = instant(partition.get("replication_key_value"))
                account = partition["context"]["account"]
                late = [
                    record for at, name, record in records
                    if name == stream and record["account"] == account and at > position
                    and mark is not None and instant(record[replication_keys[stream]]) < mark
                ]  # fmt: skip
                assert not late, f"STATE #{position} covers {stream}/{account} records delivered after it"


def instant(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def assert_complete(sim: Simulator, run: TapRun) -> None:
    """Every call of every vendor delivered exactly once."""
    records = delivered(run)
    for stream, (key, truth) in primary_keys(sim).items():
        got = [key(record) for _, name, record in records if name == stream]
        assert len(got) == len(set(got)), f"{stream}: a call delivered twice"
        assert set(got) == truth, f"{stream}: calls missing"


def test_sync_delivers_every_call_and_states_after_their_records(sim: Simulator) -> None:
    run = run_cli(every_vendor(sim))
    assert run.returncode == 0, run.stderr
    assert_complete(sim, run)
    assert_states_follow_what_they_cover(run)


def batch_config(root: Path) -> dict[str, t.Any]:
    return {
        "encoding": {"format": "jsonl"},
        "storage": {"root": root.as_uri()},
        "batch_size": 100,  # several batches a stream, windows ending inside them
    }


def test_discover_lists_every_stream(sim: Simulator, tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", every_vendor(sim))
    done = subprocess.run(
        [tap_executable(), "--config", config, "--discover"], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    catalog = json.loads(done.stdout)
    assert sorted(entry["tap_stream_id"] for entry in catalog["streams"]) == sorted([*STREAMS, "calls"])


@pytest.mark.parametrize("batch", [False, True], ids=["records", "batch_config"])
def test_test_mode_emits_one_record_of_every_stream(sim: Simulator, tmp_path: Path, batch: bool) -> None:
    """With batch_config too: the SDK's dry run would stop before writing any batch file,
    after a STATE covering records it never sent."""
    config = every_vendor(sim)
    if batch:
        config["batch_config"] = batch_config(tmp_path)
    run = run_cli(config, extra=["--test"])
    assert run.returncode == 0, run.stderr
    for stream in STREAMS:
        assert len(run.records(stream)) == 1, f"--test emitted no record of {stream}"
    assert_states_follow_what_they_cover(run)


def test_test_mode_reports_every_failed_account_and_tests_every_stream(sim: Simulator) -> None:
    """One generic account unreachable (the other one gives the stream its test record) and
    ITNIO's key wrong: the test fails naming both, and the other streams are still tested."""
    config = {**every_vendor(sim), "max_retries": 0}
    config["generic_accounts"][0]["api_url"] = "http://127.0.0.1:9/generic"
    for account in config["itnio_accounts"]:
        account["api_secret"] = "wrong"
    run = run_cli(config, extra=["--test"])
    assert run.returncode == 1
    [line] = [line for line in run.stderr.splitlines() if "| ERROR" in line and "failed" in line]
    assert "generic_cdr account 'hq'" in line and "itnio_sip_cdr account" in line, line
    for stream in ("generic_cdr", "tencent_cdr", "yeastar_cdr"):
        assert len(run.records(stream)) == 1, f"--test emitted no record of {stream}"


def test_test_schema_prints_the_schema_of_every_stream(sim: Simulator) -> None:
    run = run_cli(every_vendor(sim), extra=["--test=schema"])
    assert run.returncode == 0, run.stderr
    schemas = sorted(m["stream"] for m in run.messages if m["type"] == "SCHEMA")
    assert schemas == sorted([*STREAMS, "calls"])  # calls too: the SDK selects every stream here
    assert all(m["type"] == "SCHEMA" for m in run.messages)


def test_batch_mode_delivers_every_call_and_states_after_their_batches(
    sim: Simulator, tmp_path: Path
) -> None:
    config = every_vendor(sim)
    config["batch_config"] = batch_config(tmp_path)
    run = run_cli(config)
    assert run.returncode == 0, run.stderr
    assert not run.records(), "batch mode sends BATCH messages, not RECORDs"
    assert_complete(sim, run)
    assert_states_follow_what_they_cover(run)
    final = run.last_state
    assert final is not None
    for stream in STREAMS:  # the last STATE holds every account's bookmark
        assert all(p.get("replication_key_value") for p in final["bookmarks"][stream]["partitions"])
