"""Every speed shortcut emits exactly what the safe path emits, byte for byte.

Safe path: the SDK's per-record type conformance on, one account at a time.
Fast path: conformance skipped (`trust_record_types`) and four accounts read in parallel.
Compared on the real console script's stdout, for every vendor's streams.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import typing as t
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import generic_helpers
import pytest
import yeastar_helpers
from callcdr_simulator import Simulator, simulator_tls
from harness import run_cli
from singer_sdk.singerlib.messages import RecordMessage
from singer_sdk.streams.core import Stream
from vendors import TESTED, VENDOR_NAMES

from tap_callcdr.fastpath import writer as writer_module
from tap_callcdr.fastpath.emitting import LeanRecordPath
from tap_callcdr.fastpath.writer import BufferedMsgspecWriter
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.vendors.generic.stream import GenericCDRStream

SAFE = {"trust_record_types": False, "parallel_accounts": 1}
FAST = {"trust_record_types": True, "parallel_accounts": 4}
NAMES = ["hq", "branch", "east", "west"]
TIME_EXTRACTED = re.compile(rb',"time_extracted":"[^"]*"')


@pytest.fixture(scope="module")
def http_sim() -> Iterator[Simulator]:
    """Every vendor of tests/vendors.py reached over plain HTTP."""
    accounts = [a for v in TESTED if not v.https for a in v.demo_accounts(NAMES, calls=150, days=3)]
    sim = Simulator(accounts, anchor=yeastar_helpers.ANCHOR).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def https_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Path]]:
    """Every vendor reached over HTTPS (Yeastar), with the CA its accounts trust."""
    tls = simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")
    accounts = [a for v in TESTED if v.https for a in v.demo_accounts(NAMES, calls=150, days=3)]
    sim = Simulator(accounts, anchor=yeastar_helpers.ANCHOR, ssl_context=tls.context).start()
    yield sim, tls.ca_file
    sim.stop()


def configs(http_sim: Simulator, https_sim: tuple[Simulator, Path]) -> dict[str, dict[str, t.Any]]:
    secure, ca_file = https_sim
    return {
        v.name: v.tap_config(secure if v.https else http_sim, days=4, ca_file=ca_file) for v in TESTED
    }


def output_lines(config: dict[str, t.Any]) -> list[bytes]:
    """Every line of stdout (SCHEMA, RECORD, STATE, in order), minus the extraction time."""
    run = run_cli(config, raw=True)
    assert run.returncode == 0, run.stderr
    return normalized(run.stdout_bytes.splitlines())


def normalized(lines: list[bytes]) -> list[bytes]:
    assert any(line.startswith(b'{"type":"RECORD"') for line in lines), "no records: proves nothing"
    # Each stream's last window ends at "now" (minus the settle lag): the values that differ by run.
    lasts = {b'"%s"' % value.encode() for value in last_window_ends(lines).values()}
    normalized = [TIME_EXTRACTED.sub(b"", line) for line in lines]
    for last in lasts:
        normalized = [line.replace(last, b'"<now>"') for line in normalized]
    return normalized


def last_window_ends(lines: list[bytes]) -> dict[str, str]:
    ends: dict[str, str] = {}
    for line in lines:
        if line.startswith(b'{"type":"STATE"'):
            for stream, bookmark in json.loads(line)["value"]["bookmarks"].items():
                for partition in bookmark.get("partitions", []):
                    value = partition.get("replication_key_value") or ""
                    ends[stream] = max(ends.get(stream, ""), value)
    return ends


def records(lines: list[bytes]) -> list[dict[str, t.Any]]:
    return [json.loads(line)["record"] for line in lines if line.startswith(b'{"type":"RECORD"')]


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_fast_path_output_is_byte_identical_to_the_safe_path(
    vendor: str, http_sim: Simulator, https_sim: tuple[Simulator, Path]
) -> None:
    config = configs(http_sim, https_sim)[vendor]
    safe = output_lines({**config, **SAFE})
    fast = output_lines({**config, **FAST})
    assert fast == safe
    assert {record["account"] for record in records(safe)} == set(NAMES)


def test_both_paths_write_records_straight_to_the_writer(http_sim: Simulator) -> None:
    """The safe path checks each record first (ConformanceCheck); the fast path trusts it."""
    config = generic_helpers.tap_config(http_sim, days=4)
    fast, safe = TapCallCDR(config={**config, **FAST}), TapCallCDR(config={**config, **SAFE})
    assert fast.streams["generic_cdr"]._direct_writer is fast.message_writer
    assert fast.streams["generic_cdr"]._conformance is None
    assert safe.streams["generic_cdr"]._direct_writer is safe.message_writer
    assert safe.streams["generic_cdr"]._conformance is not None


def in_process_lines(config: dict[str, t.Any]) -> list[bytes]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallCDR(config=config)
        tap.sync_all()
        tap.message_writer.flush()
    return normalized(out.getvalue().encode().splitlines())


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_the_direct_writer_writes_what_the_sdk_writes(
    vendor: str, http_sim: Simulator, https_sim: tuple[Simulator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own path: conformance, message objects, its writer, for every record."""
    config = {**configs(http_sim, https_sim)[vendor], **SAFE}
    direct = in_process_lines(config)
    monkeypatch.setattr(LeanRecordPath, "_direct_writer", property(lambda self: None))
    assert in_process_lines(config) == direct


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_the_batch_loop_writes_what_the_sdk_loop_writes(
    vendor: str, http_sim: Simulator, https_sim: tuple[Simulator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our record loop against the SDK's: the same lines, and the same steps in the same order.

    With a STATE every 7 records. Those periodic STATEs are written only when the state
    changed (here they never add a line), so the calls are compared too."""
    config = {**configs(http_sim, https_sim)[vendor], **SAFE}
    monkeypatch.setattr(Stream, "STATE_MSG_FREQUENCY", 7)
    steps: list[str] = []

    def spy(cls: type, method: str, step: t.Callable[..., str]) -> None:
        real = getattr(cls, method)
        monkeypatch.setattr(cls, method, lambda self, *a, **k: steps.append(step(*a)) or real(self, *a, **k))

    spy(BufferedMsgspecWriter, "_add", lambda line: line[9:15].decode())  # RECORD, STATE, SCHEMA
    spy(Stream, "_write_state_message", lambda: "write_state")
    spy(LeanRecordPath, "_sync_in_batches", lambda: "batch loop")
    lines = in_process_lines(config)
    batched, steps[:] = list(steps), []
    assert "batch loop" in batched, "the batch loop did not run: this compares nothing"
    assert batched.count("write_state") > batched.count("RECORD") // 7
    monkeypatch.setattr(LeanRecordPath, "_sync_records", Stream._sync_records)
    assert in_process_lines(config) == lines
    assert steps == [step for step in batched if step != "batch loop"]



@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_each_state_write_finds_the_same_mark_in_both_loops(
    vendor: str, http_sim: Simulator, https_sim: tuple[Simulator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's loop marks a STATE due after each RECORD; the batch loop only where a STATE
    may follow. Every STATE write (one every 7 records, and those of windows and partitions)
    must find the same mark, whether or not the state writer then drops a repeated STATE."""
    config = {**configs(http_sim, https_sim)[vendor], **SAFE}
    monkeypatch.setattr(Stream, "STATE_MSG_FREQUENCY", 7)
    marks: list[str] = []
    write_state = Stream._write_state_message

    def spy(self: Stream) -> None:
        marks.append("due" if not self.state_manager.is_flushed else "written")
        write_state(self)

    monkeypatch.setattr(Stream, "_write_state_message", spy)
    batch_loop = LeanRecordPath._sync_in_batches
    monkeypatch.setattr(
        LeanRecordPath, "_sync_in_batches", lambda self: marks.append("batch loop") or batch_loop(self)
    )
    count = len(records(in_process_lines(config)))
    batched, marks[:] = list(marks), []
    assert "batch loop" in batched, "the batch loop did not run: this compares nothing"
    assert batched.count("due") > count // 7
    monkeypatch.setattr(LeanRecordPath, "_sync_records", Stream._sync_records)
    in_process_lines(config)
    assert marks == [mark for mark in batched if mark != "batch loop"]


def test_the_safe_path_still_conforms_a_record_that_needs_it(http_sim: Simulator) -> None:
    config = {**generic_helpers.tap_config(http_sim, days=4), **SAFE}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallCDR(config=config)
        stream = tap.streams["generic_cdr"]
        moment = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        stream._write_record_message({"account": "hq", "id": 1, "starttime": moment, "junk": "x"})
        tap.message_writer.flush()
    record = json.loads(out.getvalue())["record"]
    # the datetime in the SDK's form, the unknown property dropped
    assert record == {"account": "hq", "id": 1, "starttime": "2025-01-01T00:00:00.000000+00:00"}


def test_fast_path_still_applies_stream_maps(http_sim: Simulator) -> None:
    """A user's stream map must not be skipped by the shortcut."""
    config = {**generic_helpers.tap_config(http_sim, days=4), **FAST}
    mapped = {**config, "stream_maps": {"generic_cdr": {"answertime": "__NULL__", "tag": "'x'"}}}
    assert TapCallCDR(config=mapped).streams["generic_cdr"]._direct_writer is None
    rows = records(output_lines(mapped))
    assert rows and all("answertime" not in row and row["tag"] == "x" for row in rows)


@pytest.mark.parametrize("version", [None, 1764000000])
def test_batch_record_lines_are_the_sdks_record_messages(
    version: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    monkeypatch.setattr(writer_module, "utc_now", lambda: moment)
    record = {"account": "hq", "id": 7, "text": 'a "quoted" 张三\n', "none": None, "n": Decimal("1.50")}
    writer, out = BufferedMsgspecWriter(), io.StringIO()
    with contextlib.redirect_stdout(out):
        writer.record_writer("cdr", version)(record)
        sdk_message = RecordMessage(stream="cdr", record=record, version=version, time_extracted=moment)
        writer.write_message(sdk_message)
        writer.flush()
    ours, sdks = out.getvalue().splitlines()
    assert ours == sdks and '"time_extracted":"2026-01-02T03:04:05.678901' in ours


class EvenIdsOnly(GenericCDRStream):
    """A stream class that overrides the SDK's documented `get_records` hook."""

    def get_records(self, context: t.Any) -> t.Iterator[dict[str, t.Any]]:
        return (row for row in super().get_records(context) if int(row["id"]) % 2 == 0)


class EvenIdsTap(TapCallCDR):
    def discover_streams(self) -> list[t.Any]:
        return [EvenIdsOnly(tap=self)]


def test_a_stream_overriding_get_records_gets_exactly_its_records_emitted(http_sim: Simulator) -> None:
    """The batch loop reads the base's batches, not `get_records`: a subclass overriding it
    must not be skipped silently (it gets the SDK's loop, which reads it)."""
    config = {**generic_helpers.tap_config(http_sim, days=4), **FAST}
    every = records(in_process_lines(config))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = EvenIdsTap(config=config)
        tap.sync_all()
        tap.message_writer.flush()
    even = records(normalized(out.getvalue().encode().splitlines()))
    assert even == [record for record in every if record["id"] % 2 == 0]
    assert 0 < len(even) < len(every)
