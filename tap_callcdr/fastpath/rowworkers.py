"""Row workers: processes (worker.py) that turn what a vendor sent into record lines, so the
conversion runs on several cores (the tap's own process is one core: the GIL).

A vendor's reader thread hands a job (a file to convert, and where to write the lines) to an
idle worker and waits, the GIL free meanwhile; the tap's main thread then only wraps the
finished lines into RECORD messages. A job a worker declines (a Fallback), or any trouble
with the workers, makes the tap convert that input itself: the workers are a shortcut, never
the only way. Which vendor code a job runs is its "task" (module:function, in this package).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import select
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

import msgspec

from tap_callcdr.fastpath.conformance import ConformanceCheck

LOGGER = logging.getLogger(__name__)
COMMAND = (sys.executable, "-m", "tap_callcdr.fastpath.worker")
ANSWER_SECONDS = 900.0  # a job is a file part or a page: seconds of work, never minutes


class Fallback(Exception):
    """Raised by a task: the tap converts this input itself."""


_ENCODE = msgspec.json.Encoder(decimal_format="number").encode  # as the SDK's encoder writes


def line_encoder(job: dict[str, t.Any]) -> t.Callable[[dict[str, t.Any]], bytes]:
    """For a task: a record's JSON as the tap would write it, after the job's conformance
    check (worker_job); a record the SDK's conformance would change is a Fallback."""
    if not job["check"]:
        return _ENCODE
    check = ConformanceCheck.of(job["keys"], job["usable"])

    def encode(record: dict[str, t.Any]) -> bytes:
        if not check.unchanged(record):
            raise Fallback("a record the SDK's conformance would change")
        return _ENCODE(record)

    return encode


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, job: dict[str, t.Any], payload: bytes = b"") -> tuple[dict[str, t.Any], bytes]:
        """Send a job (and its input bytes, if given in the pipe); its answer, and the output
        bytes the task answered with (b"" when it wrote them to job["out"])."""
        assert self.process.stdin is not None and self.process.stdout is not None
        header = {**job, "input_bytes": len(payload)} if payload else job
        self.process.stdin.write(json.dumps(header).encode() + b"\n" + payload)
        self.process.stdin.flush()
        # A worker that hangs must not hang the run: past the limit it is a dead worker.
        # (Nothing of an answer is buffered between jobs, so the pipe itself is polled.)
        if not select.select([self.process.stdout], [], [], ANSWER_SECONDS)[0]:
            self.process.kill()
            raise OSError(f"row worker gave no answer in {ANSWER_SECONDS:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise OSError(f"row worker exited with {self.process.poll()}")
        reply = t.cast("dict[str, t.Any]", json.loads(line))
        size = int(reply.get("output_bytes") or 0)
        output = self.process.stdout.read(size) if size else b""
        if len(output) != size:
            raise OSError(f"row worker exited with {self.process.poll()} mid-answer")
        return reply, output

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # a worker that died already has no pipe to close
            if self.process.stdin is not None:
                self.process.stdin.close()  # the worker's loop ends at end of input
        try:
            self.process.wait(timeout=2)  # an idle worker exits at once; a busy one is not waited for
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class RowWorkers:
    """`count` worker processes, started at once (they start while the PBXs are asked for
    their files) and lent to one reader thread at a time."""

    def __init__(self, count: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tap-callcdr-rows-"))
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers = [_Worker() for _ in range(count)]
        for worker in self._workers:
            self._idle.put(worker)
        self._closed = threading.Event()
        self._files = 0
        self._live = self.count = count
        self._lock = threading.Lock()

    def new_path(self, suffix: str) -> Path:
        """A fresh file name in the workers' directory (removed with it at close)."""
        with self._lock:
            self._files += 1
            return self.directory / f"{self._files}{suffix}"

    def convert(self, job: dict[str, t.Any], payload: bytes = b"") -> int | None:
        """Records the worker wrote to job["out"]; None when the tap must convert it itself."""
        done = self.run(job, payload)
        return None if done is None else done[0]

    def run(self, job: dict[str, t.Any], payload: bytes = b"") -> tuple[int, bytes] | None:
        """(records, the lines answered in the pipe, or b"" if written to job["out"]); None
        when the tap must convert the input itself."""
        worker = self._borrow()
        if worker is None:
            return None
        try:
            reply, output = worker.run(job, payload)
        except (OSError, ValueError) as error:  # a dead worker: not a reason to fail the run
            LOGGER.warning("A row worker failed (%s); converting that input in the tap itself", error)
            with self._lock:
                self._live -= 1
            worker.stop()
            return None
        self._idle.put(worker)
        if "records" in reply:
            return int(reply["records"]), output
        LOGGER.debug("Row worker declined a %s job: %s", job.get("task"), reply.get("fallback"))
        return None

    def _borrow(self) -> _Worker | None:
        """An idle worker, waiting for one; None once none is left (or the run is over)."""
        while not self._closed.is_set():
            with self._lock:
                if not self._live:
                    return None
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=0.2)
        return None

    def close(self) -> None:
        """Stop the workers and remove their files."""
        if self._closed.is_set():
            return
        self._closed.set()
        for worker in self._workers:
            worker.stop()
        for path in self.directory.glob("*"):
            path.unlink(missing_ok=True)
        self.directory.rmdir()
