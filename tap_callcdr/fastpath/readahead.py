"""Read ahead: every account's pages are fetched in background threads while the main
thread emits, so forty PBXs or a 100 ms vendor cost the slowest account, not their sum.

An account that is not being emitted yet keeps reading: its records go to a spool, a
temporary file that holds a little in memory and the rest on disk (memory stays flat
whatever the backlog; the unread part is capped, and the file is emptied whenever the
emitter catches up). The account being emitted hands its items over in memory instead
(a short queue; its reader waits when it is full): pickling every record through the file
would cost the emitter more CPU than the whole rest of the read. The main thread drains
accounts in partition order, so Singer messages keep their order (a STATE only after the
records it covers) exactly as without read-ahead.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import threading
import typing as t
from collections import deque
from collections.abc import Callable, Iterable, Iterator

T = t.TypeVar("T")
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024  # per account; beyond this the spool is a temp file
SPOOL_UNREAD_LIMIT = 256 * 1024 * 1024  # per account: a producer this far ahead waits
HANDOVER_ITEMS = 4  # items queued in memory for the account being emitted
# A reader thread whose answer has arrived waits for the GIL while the emitter holds it;
# Python hands it over every 5 ms by default, so each page request idled for up to 5 ms
# (measured: 1 ms makes a 100k-call run of the paged streams 5-20% faster).
SWITCH_INTERVAL = 0.001


class _Spool:
    """One account's items in order, pickled into a spooled temp file."""

    def __init__(self, cancelled: threading.Event, unread_limit: int) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self._changed = threading.Condition()
        self._cancelled = cancelled
        self._unread_limit = unread_limit
        self._write_at = self._read_at = 0
        self._written = self._read = 0
        self._finished = False
        self._error: BaseException | None = None
        self._draining = False  # the consumer reads this spool now: hand items over in memory
        self._handover: deque[t.Any] = deque()  # always newer than every item in the file

    def put(self, item: t.Any) -> bool:
        """Append an item; False when the read was cancelled (stop producing)."""
        with self._changed:
            if self._draining and self._read == self._written:  # nothing older in the file
                self._changed.wait_for(self._handover_has_room)
                if self._cancelled.is_set():
                    return False
                if self._read == self._written:
                    self._handover.append(item)
                    self._changed.notify_all()
                    return True
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        with self._changed:
            self._changed.wait_for(self._has_room)
            if self._cancelled.is_set():
                return False
            self._file.seek(self._write_at)
            self._file.write(data)
            self._write_at += len(data)
            self._written += 1
            self._changed.notify_all()
        return True

    def finish(self, error: BaseException | None = None) -> None:
        """No more items; `error` (kept in memory, not pickled) is raised after them."""
        with self._changed:
            self._finished, self._error = True, error
            if self._cancelled.is_set():  # nobody will read it
                self._file.close()
            self._changed.notify_all()

    def items(self) -> Iterator[t.Any]:
        """Every item in order, waiting for the producer; then its error, if any."""
        with self._changed:
            self._draining = True
            self._changed.notify_all()
        try:
            while (item := self._next()) is not _END:
                yield item
        finally:
            self._file.close()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Nobody will read this spool: close it now, or once its producer stops."""
        with self._changed:
            if self._finished:
                self._file.close()
            self._changed.notify_all()

    def _next(self) -> t.Any:
        with self._changed:
            self._changed.wait_for(lambda: self._read < self._written or self._handover or self._finished)
            if self._read == self._written:
                if self._handover:
                    item = self._handover.popleft()
                    self._changed.notify_all()
                    return item
                return _END
            self._file.seek(self._read_at)
            item = pickle.load(self._file)
            self._read_at = self._file.tell()
            self._read += 1
            if self._read == self._written:  # caught up: start the file over
                self._file.seek(0)
                self._file.truncate()
                self._write_at = self._read_at = 0
            self._changed.notify_all()
            return item

    def _handover_has_room(self) -> bool:
        return self._cancelled.is_set() or len(self._handover) < HANDOVER_ITEMS

    def _has_room(self) -> bool:
        unread = self._write_at - self._read_at
        return self._cancelled.is_set() or unread < self._unread_limit or self._read == self._written


_END = object()


class ReadAhead(t.Generic[T]):
    """Producers run in daemon threads, at most `workers` at once, each with its own spool."""

    def __init__(self, workers: int, unread_limit: int = SPOOL_UNREAD_LIMIT) -> None:
        self._workers = max(1, workers)
        self._unread_limit = unread_limit
        self._spools: dict[str, _Spool] = {}
        self._cancelled = threading.Event()
        # Producers start in the order the consumer drains them: a later one holding the
        # slot of an earlier one could wait on a full spool that nobody drains yet. A thread
        # is made when a slot frees, not one per key up front: 1,000 accounts waiting in
        # threads were 1,000 threads, each woken whenever any producer finished.
        self._turns = threading.Lock()
        self._waiting: deque[tuple[str, Callable[[], Iterable[T]], _Spool]] = deque()
        self._running = 0

    def start(self, key: str, produce: Callable[[], Iterable[T]]) -> None:
        """Begin producing `key`'s items (once a worker slot is free)."""
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        spool = self._spools[key] = _Spool(self._cancelled, self._unread_limit)
        with self._turns:
            self._waiting.append((key, produce, spool))
            self._start_due()

    def _start_due(self) -> None:
        """Start waiting producers, in order, into the free slots (holding `_turns`)."""
        while self._waiting and self._running < self._workers:
            key, produce, spool = self._waiting.popleft()
            self._running += 1
            name = f"read-ahead-{key}"
            threading.Thread(target=self._run, args=(produce, spool), name=name, daemon=True).start()

    def drain(self, key: str) -> Iterator[T]:
        """`key`'s items in order; a producer's exception is raised here, after its items."""
        yield from self._spools.pop(key).items()

    def cancel(self) -> None:
        """Stop every producer at its next step (the consumer is gone)."""
        self._cancelled.set()
        with self._turns:
            never, self._waiting = self._waiting, deque()
        for _, _, spool in never:  # never started, and nobody will read them
            spool.finish()
        for spool in self._spools.values():
            spool.abandon()

    @property
    def keys(self) -> set[str]:
        """Keys started and not drained yet."""
        return set(self._spools)

    def _run(self, produce: Callable[[], Iterable[T]], spool: _Spool) -> None:
        try:
            self._produce_into(spool, produce)
        finally:
            with self._turns:
                self._running -= 1
                self._start_due()

    def _produce_into(self, spool: _Spool, produce: Callable[[], Iterable[T]]) -> None:
        if self._cancelled.is_set():
            spool.finish()
            return
        try:
            for item in produce():
                if not spool.put(item):
                    break
        except BaseException as error:
            spool.finish(error)
            return
        spool.finish()
