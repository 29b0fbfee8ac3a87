"""Row workers: processes (worker.py) that convert CDR files into record lines, so a file is
converted on several cores (the tap's own process is one core: the GIL).

The reader thread of an account cuts its downloaded file into one part per worker (at
newlines; see worker.py for how a cut is checked) and waits while the workers convert the
parts (the GIL is free while it waits); the tap's main thread then only wraps the finished
lines into RECORD messages, part after part. A part a worker declines (a fallback), or any
trouble with the workers, makes the tap read that file itself: the workers are a shortcut,
never the only way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

LOGGER = logging.getLogger(__name__)
COMMAND = (sys.executable, "-m", "tap_callcdr.yeastar.worker")


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def run(self, job: dict[str, t.Any]) -> dict[str, t.Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise OSError(f"row worker exited with {self.process.poll()}")
        return t.cast("dict[str, t.Any]", json.loads(reply))

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

    def convert(self, job: dict[str, t.Any]) -> int | None:
        """Records the worker wrote to job["out"]; None when the tap must read the file itself."""
        worker = self._borrow()
        if worker is None:
            return None
        try:
            reply = worker.run(job)
        except (OSError, ValueError) as error:  # a dead worker: not a reason to fail the run
            LOGGER.warning("A row worker failed (%s); reading that CDR file in the tap itself", error)
            with self._lock:
                self._live -= 1
            worker.stop()
            return None
        self._idle.put(worker)
        if "records" in reply:
            return int(reply["records"])
        LOGGER.debug("Row worker declined %s: %s", Path(job["csv"]).name, reply.get("fallback"))
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
