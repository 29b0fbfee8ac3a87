"""orchestrate/shard_state.py: Singer states merged with the newest bookmark winning, and
`seed` with the real meltano CLI: it carries an old layout's bookmarks into a shard's state,
clears the old layout once every new shard has its state, and is one call when nothing moved."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from conftest import Meltano

from orchestrate.shard_state import effective, layout, main, merged, of_shard, seed, stream_vendors
from tap_callcdr.core.shards import shard_of

STREAM = "generic_cdr"
BASE = "dev:tap-callcdr-to-target-postgres"


def mark(account: str, value: str | None, key: str = "starttime") -> dict[str, t.Any]:
    partition: dict[str, t.Any] = {"context": {"account": account}, "replication_key": key}
    return partition | ({"replication_key_value": value} if value else {})


def state(*partitions: dict[str, t.Any], stream: str = STREAM) -> dict[str, t.Any]:
    return {"bookmarks": {stream: {"partitions": list(partitions)}}}


def marks(merged_state: dict[str, t.Any], stream: str = STREAM) -> dict[str, str | None]:
    partitions = merged_state["bookmarks"][stream]["partitions"]
    return {p["context"]["account"]: p.get("replication_key_value") for p in partitions}


def test_every_account_keeps_its_greatest_bookmark_whichever_state_holds_it() -> None:
    old = state(mark("a", "2026-11-01T00:00:00Z"), mark("b", "2026-11-20T00:00:00Z"))
    new = state(mark("a", "2026-11-25T00:00:00Z"), mark("c", None))
    for order in ([old, new], [new, old]):  # a stale bookmark never wins, in either order
        assert marks(merged(order)) == {"a": "2026-11-25T00:00:00Z", "b": "2026-11-20T00:00:00Z", "c": None}


def test_streams_merge_apart_and_what_is_not_a_bookmark_is_the_first_states() -> None:
    one = {"currently_syncing": None, **state(mark("a", "2026-11-02T00:00:00Z"))}
    two = state(mark("a", "2026-11-03T00:00:00Z"), stream="itnio_sip_cdr")
    both = merged([one, two, {"currently_syncing": "x"}])
    assert both["currently_syncing"] is None
    assert marks(both) == {"a": "2026-11-02T00:00:00Z"}
    assert marks(both, "itnio_sip_cdr") == {"a": "2026-11-03T00:00:00Z"}
    assert merged([]) == {} and merged([{}, {"bookmarks": {}}]) == {}


def test_a_partition_is_the_whole_winners_not_a_mix() -> None:
    newer = mark("a", "2026-11-05T00:00:00Z") | {"progress_markers": {"n": 1}}
    assert merged([state(mark("a", "2026-11-04T00:00:00Z")), state(newer)])["bookmarks"][STREAM] == {
        "partitions": [newer]
    }


def test_layouts_of_state_ids() -> None:
    assert layout(BASE) == (BASE, None)
    assert layout(f"{BASE}:shard-2-of-3") == (BASE, 3)
    assert layout(f"{BASE}:nightly") is None  # another suffix: another pipeline, never merged


def test_the_effective_state_of_an_id_has_its_failed_runs_partial_state_on_top() -> None:
    completed = state(mark("a", "2026-11-01T00:00:00Z"), mark("b", "2026-11-01T00:00:00Z"))
    entry = {
        "completed": {"singer_state": completed},
        "partial": {"singer_state": state(mark("a", "2026-11-02T00:00:00Z"))},
    }
    assert marks(effective(entry)) == {"a": "2026-11-02T00:00:00Z", "b": "2026-11-01T00:00:00Z"}


# ----------------------------------------------------------------- seed, with meltano


def exported(meltano: Meltano, env: dict[str, str]) -> dict[str, dict[str, str | None]]:
    states = json.loads(meltano.check("state", "export", env=env).stdout)
    return {sid: marks(effective(entry)) for sid, entry in states.items()}


@pytest.mark.e2e
def test_seed_carries_the_old_layout_then_retires_it_and_then_costs_one_call(
    meltano: Meltano, meltano_system_db: str, tmp_path: Path
) -> None:
    env = meltano.env(tmp_path, MELTANO_DATABASE_URI=meltano_system_db)  # state in PostgreSQL
    old = {
        f"{BASE}:shard-0-of-2": state(mark("a", "2026-11-10T00:00:00Z"), mark("b", "2026-11-01T00:00:00Z")),
        f"{BASE}:shard-1-of-2": state(mark("b", "2026-11-12T00:00:00Z")),  # b moved here earlier
        f"{BASE}:nightly": state(mark("a", "2027-01-01T00:00:00Z")),  # another pipeline
    }
    exports = {sid: {"completed": {"singer_state": s}, "partial": {}} for sid, s in old.items()}
    meltano.check("state", "import", env=env, input=json.dumps(exports))

    first = seed(f"{BASE}:shard-0-of-1", project_dir=meltano.root, env=env)
    assert first.changed and first.merged_from == sorted(old)[1:] == first.retired
    assert first.meltano_calls == 4  # export, set, and the two old ids cleared
    assert exported(meltano, env) == {
        f"{BASE}:nightly": {"a": "2027-01-01T00:00:00Z"},
        f"{BASE}:shard-0-of-1": {"a": "2026-11-10T00:00:00Z", "b": "2026-11-12T00:00:00Z"},
    }
    again = seed(f"{BASE}:shard-0-of-1", project_dir=meltano.root, env=env)
    assert (again.changed, again.merged_from, again.meltano_calls) == (False, [], 1)


def test_seed_names_a_state_id_it_cannot_place(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nightly"):
        seed(f"{BASE}:nightly", project_dir=tmp_path)


def test_seed_says_which_meltano_call_failed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="meltano state export"):
        seed(f"{BASE}:shard-0-of-2", project_dir=tmp_path, env={}, meltano="false")


def test_the_command_line_says_its_usage_and_a_bad_state_id_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2 and "usage" in capsys.readouterr().out
    assert main([f"{BASE}:nightly"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("shard_state: ") and "nightly" in line


def test_a_seeded_shard_keeps_only_its_own_accounts_bookmarks() -> None:
    """Each new shard takes its accounts' bookmarks (calls' by their source's vendor); the
    others' ride in their own shards' states, not in every shard's STATEs."""
    names = [f"pbx{i:02}" for i in range(12)]
    calls = {"partitions": [
        {"context": {"source_stream": STREAM, "account": n}, "replication_key_value": "2026-11-10T00:00:00Z"}
        for n in names
    ]}  # fmt: skip
    full = state(*(mark(n, "2026-11-10T00:00:00Z") for n in names)) | {}
    full["bookmarks"]["calls"] = calls
    full["bookmarks"]["elsewhere"] = {"partitions": [{"context": {"account": "x"}}]}  # no vendor: kept
    vendors = stream_vendors()
    assert vendors[STREAM] == "generic"
    kept: list[str] = []
    for index in range(3):
        mine = of_shard(full, index, 3, vendors)
        own = sorted(n for n in names if shard_of("generic", n, 3) == index)
        assert sorted(marks(mine)) == own and 0 < len(own) < 12
        assert sorted(p["context"]["account"] for p in mine["bookmarks"]["calls"]["partitions"]) == own
        assert mine["bookmarks"]["elsewhere"] == full["bookmarks"]["elsewhere"]
        kept += own
    assert sorted(kept) == names  # each account in exactly one shard's state
