"""State that survives a re-shard (docs/scale.md, "State per shard, and re-sharding").

Each shard of a sharded pipeline has its own Meltano state id,
`<env>:tap-callcdr-to-<target>:shard-<i>-of-<N>` (`meltano run --state-id-suffix`). The
bookmarks are per account, and the tap keeps every bookmark of its incoming state, but when N
changes an account may land in a shard whose state never held it: without help it would be
read again from start_date. `seed` gives a shard, before its run, the newest bookmark of every
account found in any state id of the same pipeline (`merged`).

Standard library only: it drives the `meltano` CLI (`meltano state export` / `set` / `clear`),
so it runs wherever `meltano run` does, with or without an orchestrator.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import typing as t
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SHARD_SUFFIX = re.compile(r"shard-(\d+)-of-(\d+)")  # --state-id-suffix of shard i of N
State = dict[str, t.Any]  # a Singer state: {"bookmarks": {stream: {"partitions": [...]}}}


# ----------------------------------------------------------------------- merging states


def merged(states: Iterable[Mapping[str, t.Any]]) -> State:
    """The Singer states as one: per stream and per partition context, the greatest bookmark
    wins (the tap's bookmarks are UTC ISO text, which compare as strings), so an account's
    stale bookmark left in an old shard's state never wins over a newer one. What is not a
    bookmark (top-level keys, a stream's other keys) is the first state's that has it."""
    out: State = {}
    for state in states:
        for key, value in state.items():
            if key != "bookmarks":
                out.setdefault(key, value)
        for stream, stream_state in (state.get("bookmarks") or {}).items():
            _merge_stream(out.setdefault("bookmarks", {}).setdefault(stream, {}), stream_state)
    return out


def _merge_stream(into: dict[str, t.Any], stream_state: Mapping[str, t.Any]) -> None:
    newer = _newer(stream_state, into)
    for key, value in stream_state.items():
        if key != "partitions" and (newer or key not in into):
            into[key] = value
    partitions = {_context_key(p): p for p in into.get("partitions", [])}
    for partition in stream_state.get("partitions", []):
        known = partitions.get(_context_key(partition))
        if known is None or _newer(partition, known):
            partitions[_context_key(partition)] = partition
    if partitions:
        into["partitions"] = list(partitions.values())


def _context_key(partition: Mapping[str, t.Any]) -> str:
    return json.dumps(partition.get("context"), sort_keys=True)


def _newer(state: Mapping[str, t.Any], than: Mapping[str, t.Any]) -> bool:
    """Whether `state`'s bookmark is after `than`'s (none is before any)."""
    mine, theirs = state.get("replication_key_value"), than.get("replication_key_value")
    return mine is not None and (theirs is None or str(mine) > str(theirs))


def of_shard(state: State, index: int, count: int, vendor_of: Mapping[str, str]) -> State:
    """`state` with only the partitions of shard `index` of `count` (tap_callcdr/core/shards.py:
    by vendor and account; `calls`' partitions by their source stream's vendor): the others'
    bookmarks are in their own shards' states, and a shard carrying every account's would pay
    for all of them in each STATE. A partition of a stream not in `vendor_of` is kept."""
    from tap_callcdr.core.shards import shard_of

    def mine(stream: str, partition: Mapping[str, t.Any]) -> bool:
        context = partition.get("context") or {}
        vendor = vendor_of.get(context.get("source_stream", stream))
        account = context.get("account")
        return vendor is None or not isinstance(account, str) or shard_of(vendor, account, count) == index

    out = json.loads(json.dumps(state))
    for stream, stream_state in (out.get("bookmarks") or {}).items():
        if isinstance(stream_state.get("partitions"), list):
            stream_state["partitions"] = [p for p in stream_state["partitions"] if mine(stream, p)]
    return out


def stream_vendors() -> dict[str, str]:
    """Each of the tap's vendor streams and its vendor key (the tap's registry)."""
    from tap_callcdr.tap import VENDORS

    return {stream.name: spec.key for spec in VENDORS for stream in spec.streams}


# ---------------------------------------------------------------- state ids of a pipeline


def layout(state_id: str) -> tuple[str, int | None] | None:
    """(the pipeline's id without suffix, N) of a state id: N is None for the unsharded id;
    None for an id with another suffix."""
    parts = state_id.split(":", 2)
    if len(parts) == 2:
        return state_id, None
    match = SHARD_SUFFIX.fullmatch(parts[2]) if len(parts) == 3 else None
    return (f"{parts[0]}:{parts[1]}", int(match.group(2))) if match else None


def effective(entry: Mapping[str, t.Any]) -> State:
    """The Singer state of one id of `meltano state export` (its completed state and the
    partial state of a run that failed after it)."""
    parts = (entry.get(kind) or {} for kind in ("partial", "completed"))
    return merged(part.get("singer_state") or {} for part in parts)


@dataclass
class Seeded:
    """What `seed` found and did (each meltano call is seconds of CPU)."""

    state_id: str
    merged_from: list[str] = field(default_factory=list)  # the other layouts' ids read
    changed: bool = False  # the shard's state was set
    retired: list[str] = field(default_factory=list)  # ids of an old layout, cleared
    meltano_calls: int = 0


def seed(
    state_id: str,
    *,
    project_dir: str | Path,
    env: Mapping[str, str] | None = None,
    meltano: str | None = None,
) -> Seeded:
    """Before shard `state_id` runs: give its state the newest bookmark of every account in
    any state id of the same pipeline (`merged`), so an account that moved shards resumes at
    its bookmark.

    Cheap when nothing moved: one `meltano state export`. Within one layout (one N) an account
    is always in the same shard, so there is nothing to carry while every state id of the
    pipeline is of this shard's N; only after a re-shard (ids of another N, or the unsharded
    id) is the merge set (`meltano state set`). Once every shard of this N has a state, each
    holds every bookmark of the old layout, whose ids are then cleared (one call each, once):
    later runs are the one export again."""
    run = _Meltano(Path(project_dir), env, meltano)
    mine = layout(state_id)
    if mine is None:
        raise ValueError(f"state id {state_id!r} is not <env>:<job>[:shard-<i>-of-<N>]")
    states = json.loads(run("state", "export"))
    related = {sid: layout(sid) for sid in states if sid != state_id}
    related = {sid: lay for sid, lay in related.items() if lay is not None and lay[0] == mine[0]}
    old = sorted(sid for sid, lay in related.items() if lay != mine)
    done = Seeded(state_id, merged_from=old)
    if old:
        own = effective(states.get(state_id) or {})
        new = merged([own, *(effective(states[sid]) for sid in sorted(related))])
        shard = SHARD_SUFFIX.search(state_id.split(":", 2)[-1]) if mine[1] else None
        if shard:  # this shard's accounts only: each new shard takes its own
            new = of_shard(new, int(shard.group(1)), int(shard.group(2)), stream_vendors())
        if new != own or state_id not in states:
            run.set_state(state_id, new)
            done.changed = True
        if _all_shards_have_state(mine, {state_id, *related}):
            for sid in old:
                run("state", "clear", "--force", sid)
            done.retired = old
    done.meltano_calls = run.calls
    return done


def _all_shards_have_state(mine: tuple[str, int | None], ids: set[str]) -> bool:
    base, count = mine
    if count is None:
        return True
    return all(f"{base}:shard-{index}-of-{count}" in ids for index in range(count))


class _Meltano:
    """The `meltano` CLI in a project, counting its calls."""

    def __init__(self, project_dir: Path, env: Mapping[str, str] | None, executable: str | None) -> None:
        self.project_dir, self.env = project_dir, dict(os.environ if env is None else env)
        beside = Path(sys.executable).with_name("meltano")
        self.executable = executable or (str(beside) if beside.exists() else "meltano")
        self.calls = 0

    def __call__(self, *args: str) -> str:
        self.calls += 1
        done = subprocess.run(
            [self.executable, *args], cwd=self.project_dir, env=self.env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"`meltano {' '.join(args[:2])}` failed ({done.returncode}): {tail}")
        return done.stdout

    def set_state(self, state_id: str, state: State) -> None:
        """`meltano state set` from a file: a state of thousands of accounts is too long for
        one command-line argument (Linux: 128 KiB)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump({"singer_state": state}, file)
        try:
            self("state", "set", "--force", "--input-file", file.name, state_id)
        finally:
            os.unlink(file.name)


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrate.shard_state <state id>`: seed one shard, from the project
    directory, before its `meltano run` (what the Dagster job's op does)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orchestrate.shard_state <env>:tap-callcdr-to-<target>:shard-<i>-of-<N>")
        return 2
    try:
        done = seed(args[0], project_dir=Path.cwd())
    except (ValueError, RuntimeError) as exc:
        print(f"shard_state: {exc}", file=sys.stderr)
        return 1
    merged_from = ", ".join(done.merged_from) or "nothing (no other layout)"
    retired = f"; cleared {', '.join(done.retired)}" if done.retired else ""
    print(f"{done.state_id}: merged from {merged_from}{'' if done.changed else ', unchanged'}{retired}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
