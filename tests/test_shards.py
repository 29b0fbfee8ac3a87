"""Accounts over shards (core/shards.py): each in exactly one, stable as accounts are
added, and a re-shard from N to N+1 moves only about 1/(N+1) of them, all to the new shard."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from collections.abc import Iterator

import pytest
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from generic_helpers import STREAM, expected, keys, tap_config
from harness import run_tap

from tap_callcdr.core.errors import ConfigError, one_line
from tap_callcdr.core.shards import jump_hash, shard_of
from tap_callcdr.core.stream import CDRStream
from tap_callcdr.tap import TapCallCDR

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

NAMES = [f"pbx-{number}" for number in range(2000)]


def test_jump_hash_matches_the_published_test_vectors() -> None:
    # The vectors the ports of the paper's C++ listing share (e.g. Go's dgryski/go-jump,
    # Python's lithammer/python-jump-consistent-hash).
    vectors = [(1, 1, 0), (42, 57, 43), (0xDEAD10CC, 1, 0), (0xDEAD10CC, 666, 361), (256, 1024, 520)]
    assert [jump_hash(key, buckets) for key, buckets, _ in vectors] == [want for *_, want in vectors]
    assert jump_hash(2**64 - 1, 128) == 92


def test_each_account_is_in_exactly_one_shard() -> None:
    for count in (1, 3, 4):
        shards = {name: shard_of("generic", name, count) for name in NAMES}
        assert all(0 <= shard < count for shard in shards.values())
        sizes = [list(shards.values()).count(shard) for shard in range(count)]
        assert min(sizes) > len(NAMES) / count * 0.85, sizes  # spread evenly


def test_adding_accounts_moves_none() -> None:
    before = {name: shard_of("generic", name, 5) for name in NAMES[:500]}
    after = {name: shard_of("generic", name, 5) for name in NAMES}  # 1500 accounts added
    assert {name: after[name] for name in before} == before


def test_the_vendor_is_part_of_the_key() -> None:
    assert [shard_of("generic", n, 4) for n in NAMES[:50]] != [shard_of("itnio", n, 4) for n in NAMES[:50]]


def test_one_more_shard_moves_only_its_share_and_only_to_it() -> None:
    for count in (3, 7):
        moved = [n for n in NAMES if shard_of("generic", n, count) != shard_of("generic", n, count + 1)]
        assert all(shard_of("generic", n, count + 1) == count for n in moved)  # to the new shard
        share = len(moved) / len(NAMES)
        assert abs(share - 1 / (count + 1)) < 0.03, (count, share)


# ------------------------------------------------------------------ the tap's shard settings

ACCOUNTS = [f"pbx{number:02d}" for number in range(12)]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(demo_accounts(ACCOUNTS, calls=6, days=2), anchor=ANCHOR) as simulator:
        yield simulator


def sharded(sim: Simulator, index: int, count: int, *names: str) -> dict[str, t.Any]:
    return tap_config(sim, *names, days=2, shard_index=index, shard_count=count)


def test_the_shards_read_every_account_once_and_only_their_own(sim: Simulator) -> None:
    read: list[tuple[str, int]] = []
    for index in range(3):
        run = run_tap(sharded(sim, index, 3))
        mine = {name for name in ACCOUNTS if shard_of("generic", name, 3) == index}
        assert {account for account, _ in keys(run.records(STREAM))} == mine
        marked = {p["context"]["account"] for p in run.last_state["bookmarks"][STREAM]["partitions"]}
        assert marked == mine  # a shard's state holds only its accounts' bookmarks
        read += keys(run.records(STREAM))
    assert sorted(read) == sorted(expected(sim))  # each call once, none lost


def test_other_shards_bookmarks_ride_along_unwarned_and_unread(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A state holding every account's bookmark (seeded before a re-shard): this shard reads
    only its own accounts, from their bookmarks, and says nothing of the others'."""
    full = run_tap(tap_config(sim, days=2)).last_state
    with caplog.at_level(logging.WARNING):
        run = run_tap(sharded(sim, 1, 3), state=full)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    mine = {name for name in ACCOUNTS if shard_of("generic", name, 3) == 1}
    assert {account for account, _ in keys(run.records(STREAM))} <= mine


def test_a_shard_without_accounts_of_a_stream_emits_no_record_and_fails_nothing(sim: Simulator) -> None:
    [other] = {0, 1} - {shard_of("generic", "pbx00", 2)}
    run = run_tap(sharded(sim, other, 2, "pbx00"))
    # its SCHEMA, as any selected stream that reads nothing; no RECORD; the state as it came in
    assert [m["type"] for m in run.messages] == ["SCHEMA", "STATE"]
    assert run.last_state == {"bookmarks": {STREAM: {}}}  # as it came in (none), nothing made up


def test_an_account_keeps_its_place_in_the_config_whatever_its_shard(sim: Simulator) -> None:
    tap = TapCallCDR(config=sharded(sim, shard_of("generic", "pbx03", 3), 3), validate_config=True)
    stream = tap.streams[STREAM]
    assert isinstance(stream, CDRStream) and {"account": "pbx03"} in (stream.partitions or [])
    assert stream.account({"account": "pbx03"}).setting("api_url") == "generic_accounts[3].api_url"


def test_a_sharded_run_says_how_many_accounts_are_its_own(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    mine = sum(shard_of("generic", name, 3) == 2 for name in ACCOUNTS)
    with caplog.at_level(logging.INFO):
        run_tap(sharded(sim, 2, 3))
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("shard ")] == [
        f"shard 2 of 3: {mine} of 12 accounts"
    ]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"shard_count": 0}, "'shard_count': must be at least 1"),
        ({"shard_index": -1}, "'shard_index': must be at least 0"),
        # no index with shards: a misspelt TAP_CALLCDR_SHARD_INDX (dropped by Meltano) would
        # otherwise read shard 0 a second time and shard 1 never, and exit 0
        ({"shard_count": 3}, "'shard_index': with shard_count 3, say which shard this run reads: 0 to 2"),
        ({"shard_index": 3, "shard_count": 3}, "'shard_index': must be less than shard_count (3)"),
        ({"shard_index": 1}, "'shard_index': must be less than shard_count (1)"),
        ({"shard_count": "3"}, "'shard_count': must be an integer"),
    ],
)
def test_a_shard_setting_out_of_range_is_one_line_naming_it(
    sim: Simulator, settings: dict[str, t.Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        TapCallCDR(config=tap_config(sim, "pbx00", **settings), validate_config=True).discover_streams()
    assert problem in one_line(str(error.value))
