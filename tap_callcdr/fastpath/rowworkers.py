"""Row workers: processes (worker.py) that turn what a vendor sent into record lines, so the
conversion runs on several cores (the tap's own process is one core: the GIL).

A vendor reaches them through a narrow contract (CDRStream.row_task, row_cut): the task its
workers run (module:function in its worker.py) and how its input is cut into jobs, one of
the cuts here: FILE_AT_NEWLINES (a big file in parts, all at once) or ONE_PAGE (an answer's
body, in the pipe). Everything else is here: whether the input is worth handing over, the
cutting, waiting on the workers (the GIL free meanwhile), and the results as EncodedBatch for
the batch loop; the tap's main thread then only wraps the finished lines into RECORD
messages. Input a worker declines (a Fallback), or any trouble with the workers, is None:
the tap converts it itself. The workers are a shortcut, never the only way.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import logging
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tap_callcdr.fastpath.emitting import EncodedBatch
from tap_callcdr.fastpath.jsonbody import UTF8

LOGGER = logging.getLogger(__name__)
COMMAND = (sys.executable, "-m", "tap_callcdr.fastpath.worker")
ANSWER_SECONDS = 900.0  # a job is a file part or a page: seconds of work, never minutes
MIN_FILE_WORKERS = 2  # one worker is no faster than the tap itself (one core either way)
PART_MIN_BYTES = 256 * 1024  # smaller files (~1,700 Yeastar calls), or parts, cost more to hand over
# Encodings where a newline byte is never part of another character: a worker reads a file
# in one of them line by line, and it can be split at newlines (the worker reading the part
# before a split checks it is sound). (Names as codecs.lookup gives them.)
SPLITTABLE = frozenset(
    {"utf-8", "utf-8-sig", "gbk", "gb2312", "gb18030", "big5", "ascii", "iso8859-1", "cp1252"}
)
Converted = list[EncodedBatch] | None  # None: the tap converts the input itself


class FileAtNewlines:
    """A file (spooled into the workers' directory, so no copy is needed) cut at newlines
    into about equal parts, one job each, all converted at once; the task reads the byte
    range job["start"]..job["stop"] of job["input"] in job["encoding"] and writes job["out"].
    Even one account's file keeps every worker busy."""

    def workers_for(self, limit: int, accounts_at_once: int) -> int:
        return limit if limit >= MIN_FILE_WORKERS else 0

    def convert(
        self, workers: RowWorkers, job: dict[str, t.Any], file: t.IO[bytes], encoding: str | None
    ) -> Converted:
        """The file's records in file order; None for a small file, one in an encoding that
        cannot be split at newlines, or one a worker declined a part of."""
        name, size = getattr(file, "name", None), file.seek(0, os.SEEK_END)
        file.seek(0)
        if not isinstance(name, str) or size < PART_MIN_BYTES or not splittable(encoding):
            return None
        bounds = split_points(Path(name), size, min(workers.count, size // PART_MIN_BYTES))
        job = {**job, "input": name, "encoding": encoding}
        jobs = [
            {**job, "out": str(workers.new_path(".jsonl")), "start": start, "stop": stop}
            for start, stop in itertools.pairwise(bounds)
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:  # each waits on its worker, GIL free
            counts = list(pool.map(workers.convert, jobs))
        if any(count is None for count in counts):
            for part in jobs:
                Path(part["out"]).unlink(missing_ok=True)
            return None
        done = zip(jobs, t.cast("list[int]", counts), strict=True)
        return [EncodedBatch(Path(part["out"]), count) for part, count in done]


class OnePage:
    """One answer's body, handed over in the pipe as one job (job["payload"]); the task
    answers with its lines. One worker for each account read at once: a page converts in
    a worker while the account's next pages arrive."""

    def workers_for(self, limit: int, accounts_at_once: int) -> int:
        return min(limit, accounts_at_once)

    def convert(
        self, workers: RowWorkers, job: dict[str, t.Any], body: bytes, encoding: str | None
    ) -> Converted:
        """The page's records; None for a body not in UTF-8 (what the task parses), or one
        the worker declined."""
        if (encoding.lower() if encoding else None) not in UTF8:
            return None
        done = workers.run(job, body)
        return None if done is None else [EncodedBatch(None, *done)]


Cut = FileAtNewlines | OnePage
FILE_AT_NEWLINES = FileAtNewlines()
ONE_PAGE = OnePage()


def splittable(encoding: str | None) -> bool:
    if encoding is None:
        return False
    try:
        return codecs.lookup(encoding).name in SPLITTABLE
    except LookupError:
        return False


def split_points(path: Path, size: int, parts: int) -> list[int | None]:
    """Byte offsets cutting the file into `parts` of about equal size, each just after a
    newline (the last bound None: to the end)."""
    bounds: list[int | None] = [0]
    with path.open("rb") as file:
        for part in range(1, parts):
            file.seek(size * part // parts)
            file.readline()  # to the end of the line the cut falls in
            at = file.tell()
            if at >= size or at <= (bounds[-1] or 0):
                break
            bounds.append(at)
    return [*bounds, None]


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
