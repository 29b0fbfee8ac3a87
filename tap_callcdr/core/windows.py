"""Time windows: the one piece every CDR stream walks.

A run reads calls in bounded windows from the bookmark (minus a lookback, because
vendors publish CDRs after the call ends) up to "now minus a settle lag" (so a window
is only read once its calls have had time to land). The bookmark is the end of the
last window read completely, never a record's value: vendors do not return calls in
start-time order, so a record-derived bookmark could skip calls of a half-read window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

UTC = dt.UTC


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval [start, end) of call start times."""

    start: dt.datetime
    end: dt.datetime

    @property
    def last_second(self) -> dt.datetime:
        """The last whole second inside the window, for APIs with inclusive ends."""
        return self.end - dt.timedelta(seconds=1)

    def __str__(self) -> str:
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)})"


@dataclass(frozen=True)
class WindowPlan:
    """How a stream walks time; built from the tap's settings."""

    start_date: dt.datetime
    lookback: dt.timedelta
    settle_lag: dt.timedelta
    size: dt.timedelta
    horizon: dt.timedelta | None = None  # how far back the vendor keeps data

    def windows(self, bookmark: dt.datetime | None, now: dt.datetime) -> Iterator[Window]:
        """Yield the windows to read, oldest first; none when nothing has settled."""
        start = self.first_start(bookmark, now)
        stop = floor_second(now - self.settle_lag)
        while start < stop:
            end = min(start + self.size, stop)
            yield Window(start, end)
            start = end

    def first_start(self, bookmark: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """Bookmark minus lookback (never before start_date); start_date on a first run."""
        start = self.start_date if bookmark is None else bookmark - self.lookback
        start = max(start, self.start_date)
        if self.horizon is not None:
            start = max(start, self.horizon_start(now))
        return floor_second(start)

    def horizon_start(self, now: dt.datetime) -> dt.datetime:
        """The oldest instant the vendor still serves."""
        assert self.horizon is not None
        return floor_second(now - self.horizon) + dt.timedelta(seconds=1)


def floor_second(moment: dt.datetime) -> dt.datetime:
    """Drop sub-second precision: vendors speak whole seconds."""
    return moment.replace(microsecond=0)


def iso_utc(moment: dt.datetime) -> str:
    """The one format bookmarks and records use, so string comparison is time order."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def parse_instant(value: str) -> dt.datetime:
    """Read an ISO 8601 instant; a value without offset is taken as UTC."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
