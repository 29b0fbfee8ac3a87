"""The tap's stdout writes: whole lines, atomic on a pipe (at most PIPE_BUF = 4096 bytes, or
one whole line when a line is longer), so a tap killed while blocked in write() never leaves
half a line for the target to fail on."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import signal
import subprocess
import tempfile
import termios
import threading
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import generic_helpers
import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from harness import tap_executable, write_json
from singer_sdk.singerlib.messages import SchemaMessage, StateMessage

from tap_callcdr.fastpath.writer import BufferedMsgspecWriter

ATOMIC = 4096  # POSIX PIPE_BUF on Linux: a pipe write of at most this many bytes is atomic


def write_lines(writer: BufferedMsgspecWriter) -> None:
    """Every way the tap writes a line, > 256 KiB of them (the writer's own batch size), with
    a record longer than PIPE_BUF and STATEs in between."""
    writer.write_message(SchemaMessage("s", {"properties": {"n": {"type": "integer"}}}, ["n"]))
    write = writer.record_writer("s", None)
    encoded = writer.encoded_record_writer("s", None)
    for n in range(3000):
        write({"n": n, "pad": "x" * (n % 300)})
        encoded(json.dumps({"n": n, "pad": "y" * (n % 50)}).encode())
        if n % 700 == 0:
            writer.write_record("s", {"n": n, "long": "z" * 3 * ATOMIC}, None)
            writer.write_message(StateMessage({"bookmarks": {"s": {"n": n}}}))
    writer.write_record("s", {"n": -1}, 7)  # left pending: only the final flush writes it


@contextlib.contextmanager
def stdout_to_pipe() -> Iterator[bytearray]:
    """sys.stdout on a real pipe; yields what the pipe carried (complete once closed)."""
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_fd, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        with open(write_fd, "w") as out, contextlib.redirect_stdout(out):
            yield received
    finally:
        reader.join()
        os.close(read_fd)


def recording_writes(monkeypatch: pytest.MonkeyPatch, most: int | None = None) -> list[bytes]:
    """Every os.write call's bytes; `most`: write at most that many (a socket, a file)."""
    writes: list[bytes] = []
    real = os.write

    def write(fd: int, data: t.Any) -> int:
        data = bytes(data)[:most]
        writes.append(data)
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return writes


def test_every_write_to_a_pipe_is_whole_lines_atomic_or_one_long_line(monkeypatch) -> None:
    writes = recording_writes(monkeypatch)
    with stdout_to_pipe() as received:
        writer = BufferedMsgspecWriter()
        write_lines(writer)
        writer.flush()
    assert bytes(received) == b"".join(writes), "bytes reached stdout by another way than write()"
    for data in writes:
        assert data.endswith(b"\n")
        assert len(data) <= ATOMIC or data.count(b"\n") == 1, f"a {len(data)}-byte write of several lines"
    assert any(len(data) > ATOMIC for data in writes)  # the long records went out whole
    lines = [json.loads(line) for line in received.splitlines()]
    assert len(lines) == 1 + 2 * 3000 + 2 * 5 + 1 and lines[-1]["version"] == 7


def test_partial_writes_go_on_where_they_stopped(monkeypatch) -> None:
    """On a file or a socket a write may take only part of its bytes: none is lost or doubled."""
    expected = io.StringIO()
    with contextlib.redirect_stdout(expected):  # a text-only stdout: the same lines
        write_lines(writer := BufferedMsgspecWriter())
        writer.flush()
    recording_writes(monkeypatch, most=1000)
    with stdout_to_pipe() as received:
        write_lines(writer := BufferedMsgspecWriter())
        writer.flush()
    got, want = received.decode().splitlines(), expected.getvalue().splitlines()
    assert [json.loads(line)["type"] for line in got] == [json.loads(line)["type"] for line in want]
    strip = [line.split('"time_extracted"')[0] for line in got]  # each writer stamps its own time
    assert strip == [line.split('"time_extracted"')[0] for line in want]


# -- a real tap on a pipe, killed while blocked in write() --------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    anchor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    simulator = Simulator(demo_accounts(["hq"], calls=8000, days=4), anchor=anchor).start()
    yield simulator
    simulator.stop()


@pytest.mark.parametrize("read_first", [0, 200_000, 900_000])
def test_a_tap_killed_while_blocked_in_write_leaves_only_whole_lines(sim: Simulator, read_first: int) -> None:
    """The reader is slow: it reads `read_first` bytes, then nothing until the tap has filled
    the pipe and blocks in write(); then the tap is killed (SIGKILL) and the pipe drained."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_json(Path(tmp, "config.json"), generic_helpers.tap_config(sim, days=5))
        command = [tap_executable(), "--config", config]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        output = bytearray()
        while len(output) < read_first and (chunk := os.read(fd, min(65536, read_first - len(output)))):
            output.extend(chunk)
        wait_until_blocked(fd, proc)
        proc.kill()
        assert proc.wait() == -9, "the tap ended before it was killed: no blocked write was tested"
        while chunk := os.read(fd, 65536):
            output.extend(chunk)
        proc.stdout.close()
    assert len(output) > read_first
    assert output.endswith(b"\n"), f"half a line left on the pipe: ...{bytes(output[-80:])!r}"
    for line in output.splitlines():
        json.loads(line)


def wait_until_blocked(fd: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the pipe holds at least half its capacity and has stopped filling: the tap is
    blocked in write() (output is many times the pipe's size, so it must block)."""
    capacity = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    last, steady = -1, 0
    while proc.poll() is None and steady < 5:
        held = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
        steady = steady + 1 if held == last and held >= capacity // 2 else 0
        last = held
        time.sleep(0.05)


def test_a_tap_stopped_with_sigterm_while_blocked_in_write_ends_cleanly(sim: Simulator) -> None:
    """SIGTERM while blocked in write(): the SDK's handler (a STATE, then exit) runs inside that
    write; the exit writes the rest of what was pending, whole lines to the end."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_json(Path(tmp, "config.json"), generic_helpers.tap_config(sim, days=5))
        command = [tap_executable(), "--config", config]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        fd = proc.stdout.fileno()
        wait_until_blocked(fd, proc)
        proc.send_signal(signal.SIGTERM)
        output = bytearray()
        while chunk := os.read(fd, 65536):
            output.extend(chunk)
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
    assert "Gracefully shutting down" in stderr and "Traceback" not in stderr
    assert output.endswith(b"\n")
    for line in output.splitlines():
        json.loads(line)
