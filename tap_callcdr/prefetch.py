"""Read ahead: every account's pages are fetched in background threads while the main
thread emits, so forty PBXs or a 100 ms vendor cost the slowest account, not their sum.

Each account has its own bounded queue (memory stays flat) and its own thread; the main
thread drains the queues in partition order, so Singer messages keep their order (a
STATE only after the records it covers) exactly as without read-ahead.
"""

from __future__ import annotations

import queue
import threading
import typing as t
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

T = t.TypeVar("T")
PUT_POLL_SECONDS = 0.2  # how often a blocked producer checks whether it was cancelled


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()


class ReadAhead(t.Generic[T]):
    """Producers run in daemon threads, at most `workers` at once, each `depth` items ahead."""

    def __init__(self, workers: int, depth: int) -> None:
        self._workers = max(1, workers)
        self._depth = max(1, depth)
        # Producers start in the order the consumer drains them: a later one taking the
        # slot of an earlier one could wait on a full queue that nobody drains yet.
        self._turns = threading.Condition()
        self._started = 0
        self._finished = 0
        self._queues: dict[str, queue.Queue[t.Any]] = {}
        self._cancelled = threading.Event()

    def start(self, key: str, produce: Callable[[], Iterable[T]]) -> None:
        """Begin producing `key`'s items (waits for a free worker slot in its thread)."""
        channel: queue.Queue[t.Any] = queue.Queue(self._depth)
        self._queues[key] = channel
        turn, self._started = self._started, self._started + 1
        thread = threading.Thread(
            target=self._run, args=(produce, channel, turn), name=f"read-ahead-{key}", daemon=True
        )
        thread.start()

    def drain(self, key: str) -> Iterator[T]:
        """`key`'s items in order; a producer's exception is raised here, after its items."""
        channel = self._queues.pop(key)
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def cancel(self) -> None:
        """Stop every producer at its next step (the consumer is gone)."""
        self._cancelled.set()
        with self._turns:
            self._turns.notify_all()

    @property
    def keys(self) -> set[str]:
        """Keys started and not drained yet."""
        return set(self._queues)

    def _run(self, produce: Callable[[], Iterable[T]], channel: queue.Queue[t.Any], turn: int) -> None:
        with self._turns:
            self._turns.wait_for(lambda: self._cancelled.is_set() or turn < self._finished + self._workers)
        try:
            self._produce_into(channel, produce)
        finally:
            with self._turns:
                self._finished += 1
                self._turns.notify_all()

    def _produce_into(self, channel: queue.Queue[t.Any], produce: Callable[[], Iterable[T]]) -> None:
        try:
            for item in produce():
                if not self._put(channel, item):
                    return
        except BaseException as error:
            self._put(channel, _Failed(error))
            return
        self._put(channel, _DONE)

    def _put(self, channel: queue.Queue[t.Any], item: t.Any) -> bool:
        while not self._cancelled.is_set():
            try:
                channel.put(item, timeout=PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
