"""ReadAhead: producers in threads, drained in order, errors after the items before them."""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Iterator

import pytest

from tap_callcdr.fastpath.readahead import ReadAhead


def numbers(prefix: str, n: int, fail_at: int | None = None) -> Iterator[str]:
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"{prefix} broke at {i}")
        yield f"{prefix}{i}"


def test_each_key_drains_in_order_with_more_keys_than_workers() -> None:
    read_ahead: ReadAhead[str] = ReadAhead(workers=2, unread_limit=1)
    keys = [f"k{i}" for i in range(6)]
    for key in keys:
        read_ahead.start(key, lambda key=key: numbers(key, 50))
    for key in keys:  # tiny spools and 2 workers: only ordered starts avoid a deadlock here
        assert list(read_ahead.drain(key)) == [f"{key}{i}" for i in range(50)]


def test_an_error_comes_after_the_items_before_it() -> None:
    read_ahead: ReadAhead[str] = ReadAhead(workers=1)
    read_ahead.start("a", lambda: numbers("a", 10, fail_at=3))
    got = []
    with pytest.raises(ValueError, match="a broke at 3"):
        for item in read_ahead.drain("a"):
            got.append(item)
    assert got == ["a0", "a1", "a2"]


def test_producers_run_concurrently() -> None:
    started = threading.Barrier(3, timeout=5)

    def waits_for_the_others(key: str) -> Iterator[str]:
        started.wait()  # only passes if three producers run at the same time
        yield key

    read_ahead: ReadAhead[str] = ReadAhead(workers=3)
    for key in "abc":
        read_ahead.start(key, lambda key=key: waits_for_the_others(key))
    assert [next(read_ahead.drain(key)) for key in "abc"] == ["a", "b", "c"]


def test_cancel_releases_blocked_producers() -> None:
    read_ahead: ReadAhead[int] = ReadAhead(workers=1, unread_limit=1)
    produced: list[int] = []
    spool_full = threading.Event()

    def forever() -> Iterator[int]:
        i = 0
        while True:
            produced.append(i)
            if i == 1:  # item 0 filled the one-byte spool: putting this one waits
                spool_full.set()
            yield i
            i += 1

    read_ahead.start("x", forever)
    assert spool_full.wait(5)
    read_ahead.cancel()
    [producer] = [thread for thread in threading.enumerate() if thread.name == "read-ahead-x"]
    producer.join(5)
    assert not producer.is_alive(), "a cancelled producer is still blocked"
    assert len(produced) <= 3, "a cancelled producer kept going"


def test_an_account_waiting_for_its_turn_reads_to_the_end_without_the_consumer() -> None:
    """Its items go to the spool: the producer finishes although nobody drains it yet."""
    read_ahead: ReadAhead[list[int]] = ReadAhead(workers=2)
    done = threading.Event()

    def big() -> Iterator[list[int]]:
        for i in range(2000):
            yield list(range(i, i + 100))
        done.set()

    read_ahead.start("first", lambda: iter([[0]]))
    read_ahead.start("second", big)
    assert done.wait(10), "the second account stalled while the first was not drained"
    assert list(read_ahead.drain("first")) == [[0]]
    assert sum(1 for _ in read_ahead.drain("second")) == 2000


def signal_when_drained(read_ahead: ReadAhead[t.Any], key: str, drained: threading.Event) -> None:
    """Set `drained` once the consumer drains `key` (its spool flags that under its lock):
    a producer waiting for it puts its next items while the consumer is draining."""
    spool = read_ahead._spools[key]

    def watch() -> None:
        with spool._changed:
            if spool._changed.wait_for(lambda: spool._draining, timeout=10):
                drained.set()

    threading.Thread(target=watch, daemon=True).start()


def test_the_account_being_emitted_hands_its_items_over_without_the_spool_file() -> None:
    """Pickling every record through the file costs the emitter more than the read itself."""
    read_ahead: ReadAhead[object] = ReadAhead(workers=1)
    emitting = threading.Event()

    def unpicklable() -> Iterator[object]:
        assert emitting.wait(5)
        for _ in range(20):
            yield threading.Lock()  # pickle refuses locks: these can only pass in memory

    read_ahead.start("a", unpicklable)
    signal_when_drained(read_ahead, "a", emitting)
    got = list(read_ahead.drain("a"))
    assert len(got) == 20
    assert all(type(item) is type(threading.Lock()) for item in got)


def test_items_spooled_before_the_turn_still_come_first() -> None:
    read_ahead: ReadAhead[int] = ReadAhead(workers=2)
    second_spooled = threading.Event()
    emitting = threading.Event()

    def second() -> Iterator[int]:
        yield from range(100)  # spooled to the file: "first" is being drained
        second_spooled.set()
        assert emitting.wait(5)
        yield from range(100, 200)  # handed over in memory, after the file's items

    read_ahead.start("first", lambda: iter([0]))
    read_ahead.start("second", second)
    signal_when_drained(read_ahead, "second", emitting)
    assert list(read_ahead.drain("first")) == [0]
    assert second_spooled.wait(5)
    assert list(read_ahead.drain("second")) == list(range(200))


def test_a_thread_per_producer_running_not_per_key_waiting() -> None:
    """1,000 accounts at parallel_accounts 4: 4 reader threads, not 1,000 waiting for a turn
    (each finish woke every waiting one: O(accounts²) wake-ups)."""
    gate = threading.Event()

    def held(key: str) -> Iterator[str]:
        gate.wait(5)
        yield key

    read_ahead: ReadAhead[str] = ReadAhead(workers=2)
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        read_ahead.start(key, lambda key=key: held(key))
    readers = [thread for thread in threading.enumerate() if thread.name.startswith("read-ahead-")]
    gate.set()
    assert [next(read_ahead.drain(key)) for key in keys] == keys
    assert len(readers) <= 2
