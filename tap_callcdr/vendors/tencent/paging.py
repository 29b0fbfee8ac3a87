"""Tencent's paging, for an API without any: how long the next request should span.

`getCdr` has no paging: an answer holds at most `cap` calls (learnt from the first cut
answer: what it served), and a cut answer is thrown away and costs a request. So each
request should ask for a span holding a little under `cap` calls (`budget`: the count's
Poisson spread and the estimate's error kept two deviations under the cap). The sizer
proposes it from what whole answers showed:

- with a day of history or more: the calls seen at the same time of day on up to the last
  `days` days (a per-minute count), scaled by how busy the last ~2 caps of calls were
  against those days. This sees the morning ramp coming instead of being cut by it. After
  a burst the scale would stay high for hours: when the last answer was far calmer than
  the scale says, it is trusted instead, growing at most 4 times a step;
- before that: the density of the last whole answer, growing at most `growth` times a step
  (a quiet night must not propose a span that the morning then cuts);
- after a cut: at most 3/4 of the cut span, half for a second cut in a row, and until the
  cut span's end is passed, no more than its calls still unread (spread evenly) allow; so a
  burst no history predicted costs a few cuts, not one per answer.

Only the number of requests depends on this: what is emitted and where the bookmark goes
is decided by the stream (whole answers only), so any proposal is safe. A proposal is
always at least one second and never past the end it is given. Pure bookkeeping, no I/O,
one instance per account read.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

BUCKET = 60  # seconds per history count
DAY = 86_400


@dataclass
class SpanSizer:
    """Proposes request spans (whole epoch seconds) for an API that cuts answers at a cap."""

    longest: int  # the most one request may span, seconds (window_hours)
    margin: float = 2.0  # aim this many standard deviations of the count under the cap
    noise: float = 0.03  # the estimate's own relative error, on top of the count's randomness
    growth: float = 2.0  # without a day of history: at most this times the last span
    days: int = 7  # days of history the time-of-day profile averages
    cap: int | None = None  # calls per answer: unknown until an answer is cut

    def __post_init__(self) -> None:
        if self.longest < 1:
            raise ValueError("longest must be at least 1 second")
        self._origin = 0  # epoch second where the history starts
        self._read_to: int | None = None  # the history covers [_origin, _read_to)
        self._counts = array("q")  # calls per BUCKET from _origin
        self._cum = array("q", [0])  # _cum[i]: calls in the first i buckets
        self._last: tuple[int, int] | None = None  # (span, calls) of the last whole answer
        self._last_ratio: float | None = None  # its calls against the profile's
        self._ceiling: int | None = None  # after a cut: the next span stays within this
        self._dense: tuple[int, int] | None = None  # (end, n): n+ calls left in [read_to, end]
        self._cuts_in_a_row = 0
        self._boost = 1.0  # > 1 after the profile under-estimated a cut span

    # -- what happened -----------------------------------------------------------------------

    def whole(self, start: int, end: int, starts: Sequence[int]) -> None:
        """[start, end) came back whole with calls starting at these seconds."""
        usual = self._profile(start, end) if self._read_to == start and start - DAY >= self._origin else None
        self._last_ratio = None if usual is None else (len(starts) + 1) / (usual + 1)
        self._remember(start, end, starts)
        self._last = (end - start, len(starts))
        self._ceiling, self._cuts_in_a_row = None, 0
        self._boost = 1.0 + (self._boost - 1.0) / 2
        if self._dense is not None:
            dense_end, left = self._dense
            left -= len(starts)
            self._dense = (dense_end, left) if end < dense_end and left > 0 else None

    def cut(self, start: int, end: int, served: int) -> None:
        """[start, end) was cut after `served` calls: more than that many start in it."""
        served = max(1, served)
        self.cap = served if self.cap is None else min(self.cap, served)
        self._cuts_in_a_row += 1
        gentle = self._cuts_in_a_row == 1 and self._last is not None
        self._ceiling = max(1, (end - start) * 3 // 4 if gentle else (end - start) // 2)
        self._dense = (end, served + 1)  # the end second is asked for too
        self._boost = min(self._boost * 1.25, 16.0)

    # -- the proposal -----------------------------------------------------------------------

    def propose(self, start: int, end: int) -> int:
        """The end of the next request from `start`: in [start + 1, end], at most `longest`."""
        if end <= start:
            raise ValueError("nothing left to read")
        limit = min(end, start + self.longest) - start
        span = self._wanted(start, limit)
        if self._ceiling is not None:
            span = min(span, self._ceiling)
        if self._dense is not None and self.cap is not None:
            dense_end, left = self._dense  # spread evenly, the calls a cut showed still ahead
            span = min(span, int((dense_end - start) * self.budget(self.cap) / left) or 1)
        return start + max(1, min(span, limit))

    def _wanted(self, start: int, limit: int) -> int:
        if self.cap is None or self._last is None:
            return limit  # nothing cut yet (or nothing read whole): ask for it all
        budget = self.budget(self.cap)
        span, calls = self._last
        level, last = self._level(start), self._last_ratio
        if level is not None and last is not None:
            if last > 2 * level and calls >= self.cap / 4:
                level = last  # a burst under way: the last answer measured it
            elif level > 2 and last < level / 2:
                # Far busier than usual lately, but not the last answer: a burst that ended.
                # Trust the last answer, growing at most 4 times a step.
                wanted = self._profile_span(start, limit, budget / (last * self._boost))
                return min(wanted, 4 * span)
        if level is not None:
            return self._profile_span(start, limit, budget / (level * self._boost))
        return int(min(budget * span / max(calls, 1), self.growth * span))

    def budget(self, cap: int) -> float:
        """Calls to aim at: a count of that mean rarely exceeds `cap` (Poisson spread plus the
        estimate's error): about 91% of a cap of 1000, 72% of a cap of 50."""
        spread = math.sqrt(cap + (self.noise * cap) ** 2)
        return max(1.0, cap - self.margin * spread)

    def _profile_span(self, start: int, limit: int, budget: float) -> int:
        """The longest span from `start` whose profile count stays within `budget`."""
        if self._profile(start, start + limit) <= budget:
            return limit
        low, high = 1, limit  # profile(start, start + low) fits or low is 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._profile(start, start + middle) <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def _level(self, start: int) -> float | None:
        """How busy the recent past was against the same hours of earlier days (1: as busy);
        None without a day of history before it or when too few calls to tell."""
        if self._read_to != start or start - DAY < self._origin:
            return None
        assert self.cap is not None
        # From about two answers' worth of calls back, but not before a day of history.
        back = bisect.bisect_right(self._cum, self._cum[-1] - 2 * self.cap) - 1
        since = min(self._origin + max(back * BUCKET, DAY), start - 1)
        actual = self._count(since, start)
        usual = self._profile(since, start)
        if usual < self.cap / 2:
            return None  # the same hours held too few calls to tell (or none: a first day)
        return (actual + 1) / (usual + 1)

    def _profile(self, start: int, end: int) -> float:
        """Calls expected in [start, end) from the same hours of the previous days on record
        (a span over a day: those of a whole day per day, then of the rest)."""
        days, rest = divmod(end - start, DAY)
        if not days:
            return self._same_hours(start, end)
        return days * self._same_hours(start, start + DAY) + self._same_hours(start, start + rest)

    def _same_hours(self, start: int, end: int) -> float:
        """Mean calls in [start, end) (at most a day) at the same time of the previous days."""
        total, days = 0.0, 0
        for day in range(1, self.days + 1):
            shift = day * DAY
            if start - shift < self._origin:
                break
            total += self._count(start - shift, end - shift)
            days += 1
        return total / days if days else 0.0

    # -- history: calls per minute over the last days read ------------------------------------

    def _count(self, start: int, end: int) -> float:
        return self._calls_before(end) - self._calls_before(start)

    def _calls_before(self, moment: int) -> float:
        """Calls read before `moment` (uniform within a minute)."""
        offset = min(max(moment - self._origin, 0), len(self._counts) * BUCKET)
        index, part = divmod(offset, BUCKET)
        before = float(self._cum[index])
        if part:
            before += self._counts[index] * part / BUCKET
        return before

    def _remember(self, start: int, end: int, starts: Sequence[int]) -> None:
        if self._read_to != start:  # not where the history ends: start a new one
            self._origin, self._counts, self._cum = start, array("q"), array("q", [0])
        first = (start - self._origin) // BUCKET
        buckets = -(-(end - self._origin) // BUCKET)
        self._counts.extend([0] * (buckets - len(self._counts)))
        for moment in starts:
            if start <= moment < end:
                self._counts[(moment - self._origin) // BUCKET] += 1
        del self._cum[first + 1 :]
        running = self._cum[first]
        for count in self._counts[first:]:
            running += count
            self._cum.append(running)
        self._read_to = end
        self._forget_old()

    def _forget_old(self) -> None:
        keep = (self.days + 2) * DAY // BUCKET
        drop = len(self._counts) - keep
        if drop > DAY // BUCKET:  # now and then, not every answer
            del self._counts[:drop]
            del self._cum[:drop]
            self._origin += drop * BUCKET
