"""Progress a person can follow: while an account is read, an INFO line at a steady pace
(window reached, records so far, windows done of planned, time left); when its stream ends,
one line with what it read and the bookmark it left.

METRIC lines stay for machines: the SDK's record_count is one number per stream, tagged with
whichever account came last, so these lines are counted per account instead. Nothing here
runs per record: records are counted per batch, the clock is read per batch and window.
Each account's reader thread alone writes its counts and lines; only requests and retries
(sent from page helper threads too) are counted under the account's lock.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tap_callcdr.core.windows import Window, iso_utc

DEFAULT_INTERVAL = 30.0  # seconds between an account's progress lines: `progress_interval_seconds`


@dataclass(eq=False)
class AccountProgress:
    """One account of one stream in this run. `windows`: the windows planned for it."""

    stream: str
    account: str
    windows: Sequence[Window]
    interval: float = DEFAULT_INTERVAL
    records: int = 0  # read so far
    done: int = 0  # windows read completely
    through: dt.datetime | None = None  # read completely up to here (a window's end, or within)
    reading: Window | None = None  # the window being read
    requests: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    _said: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._said = self.started

    def start(self) -> None:
        """Its reader thread starts (an account may wait for one: `parallel_accounts`); the
        time left is reckoned from here."""
        self.started = self._said = time.monotonic()

    # -- counting (the reader thread; requests and retries from any thread) --------------

    def count_requests(self, count: int) -> None:
        with self._lock:
            self.requests += count

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def reached(self, moment: dt.datetime) -> None:
        """Everything before `moment` is read (a window's end, or a vendor's step within it)."""
        self.through = moment

    def window_done(self, window: Window) -> None:
        self.done += 1
        self.through = window.end
        self.reading = None

    @property
    def finished(self) -> bool:
        return self.done == len(self.windows)

    def due(self, *, window_end: bool) -> str | None:
        """The progress line, when one is due: the interval has passed (within a long window
        too, unless the interval is 0: then at every window's end), or the last window is read.
        None otherwise."""
        now = time.monotonic()
        if not self.finished and (now - self._said < self.interval or not (window_end or self.interval)):
            return None
        self._said = now
        return self.line(now)

    # -- what the lines say --------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.stream} [{self.account}]"

    def line(self, now: float) -> str:
        elapsed = now - self.started
        reached = f"through {iso_utc(self.through)}" if self.through else self._reading_from()
        said = f"{self.name}: {self.records:,} records, {reached}, {self.done}/{len(self.windows)} windows"
        if self.finished:
            return f"{said}, read in {duration(elapsed)}"
        left = self.time_left(elapsed)
        return f"{said}, ~{duration(left)} left" if left is not None else said

    def _reading_from(self) -> str:
        start = (self.reading or self.windows[0]).start if self.windows else None
        return f"reading from {iso_utc(start)}" if start else "nothing to read"

    def time_left(self, elapsed: float) -> float | None:
        """Time left at the pace so far, by the span of time read (windows of busy and quiet
        days alike); None before anything is read."""
        if not self.windows or self.through is None:
            return None
        first, last = self.windows[0].start, self.windows[-1].end
        read = (self.through - first).total_seconds()
        if read <= 0:
            return None
        return elapsed * (last - self.through).total_seconds() / read

    def summary(self, bookmark: str | None, failed: bool) -> str:
        """The line when the stream ends: how the account ended, its counts, its bookmark."""
        counts = f"{self.records:,} records, {self.requests:,} requests, {self.retries:,} retries"
        return f"{self.name} {self._ending(failed)}: {counts}; {self._bookmark(bookmark, failed)}"

    def _ending(self, failed: bool) -> str:
        if not self.windows:
            return "had nothing to read (no window has settled since its bookmark)"
        if self.finished:
            return f"finished {self.done}/{len(self.windows)} windows"
        where = f" in window {self.reading}" if self.reading else ""
        return f"{'failed' if failed else 'stopped'}{where} after {self.done}/{len(self.windows)} windows"

    def _bookmark(self, bookmark: str | None, failed: bool) -> str:
        if bookmark is None:
            why = "no window was read completely" if self.windows else "none was ever set"
            return f"no bookmark ({why}: the next run starts at start_date)"
        if self.through is None:
            return f"bookmark unchanged at {bookmark}"
        resumes = failed or not self.finished
        return f"bookmark {bookmark}" + (" (the next run resumes there)" if resumes else "")


def duration(seconds: float) -> str:
    """1h05m, 3m10s, 42s."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
