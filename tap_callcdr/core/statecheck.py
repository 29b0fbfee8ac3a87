"""The state a run starts from, checked before the first request.

What the tap cannot use at all (a file that is not JSON or not Singer's shape, a bookmark
that is not a date-time) stops the run in one line naming the file, or the stream and the
account and how to reset that bookmark. What it can only ignore (a bookmark outside the
account partitions, a partition of another context or of an account no longer configured,
a stream this run does not read) is kept as it is and warned about, saying what the run
does instead: read those accounts from start_date.
"""

from __future__ import annotations

import io
import logging
import typing as t
from collections.abc import Mapping

from tap_callcdr.core.callstream import CallsStream
from tap_callcdr.core.errors import StateError
from tap_callcdr.core.stream import CDRStream
from tap_callcdr.core.windows import parse_instant
from tap_callcdr.fastpath.sdk import load_json

RESET = (
    "remove that partition from the state, or set it to an ISO 8601 date-time (with Meltano, "
    "`meltano state clear <state id>` reads every account of the job again from start_date)"
)


def checked_state_file(file: t.IO[str] | None) -> t.IO[str] | None:
    """The `--state` file, read and checked as the SDK will read it: one line naming the file
    if it cannot be a state; else its text again, for the SDK."""
    if file is None:
        return None
    name = getattr(file, "name", "--state")
    try:
        text = file.read()
        state = load_json(text)
    except ValueError as exc:  # not JSON, or not text
        raise StateError(f"state file '{name}' is not JSON: {exc}") from None
    problem = shape_problem(state)
    if problem:
        raise StateError(f"state file '{name}': {problem}")
    return io.StringIO(text)


def shape_problem(state: t.Any) -> str | None:
    """What keeps `state` from being a Singer state (the SDK would stop on it), if anything."""
    if not isinstance(state, dict):
        return f"is not a JSON object but {type(state).__name__}"
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        return "'bookmarks' is not an object of streams"
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            return f"the state of stream '{stream}' is not an object"
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list) or not all(isinstance(p, dict) for p in partitions):
            return f"'partitions' of stream '{stream}' is not a list of objects"
    return None


def check_bookmarks(
    bookmarks: Mapping[str, dict[str, t.Any]], streams: Mapping[str, t.Any], logger: logging.Logger
) -> None:
    """Each stream's bookmarks: a bad one stops the run, an ignored one is warned about."""
    for name, stream_state in bookmarks.items():
        stream = streams.get(name)
        if not isinstance(stream, CDRStream | CallsStream):
            logger.warning(
                "state: stream '%s' is not read by this run (no such stream, or no accounts of "
                "its vendor configured); its bookmarks are kept as they are",
                name,
            )
            continue
        ignored, bookmarked = check_stream(stream, stream_state)
        if ignored:
            logger.warning("%s", ignored_message(stream, ignored, bookmarked))


Checked = CDRStream | CallsStream  # the streams with bookmarks: per account, or per source and account


def check_stream(stream: Checked, stream_state: dict[str, t.Any]) -> tuple[list[str], set[str]]:
    """What of the stream's state this run ignores, and the partitions it has a bookmark for
    (named as in messages: "account 'hq'", or "source_stream 'x' account 'hq'" for calls)."""
    ignored, bookmarked = [], set()
    keys = partition_keys(stream)
    if stream_state.get("replication_key_value") is not None:
        ignored.append("a bookmark outside any account partition")
    for partition in stream_state.get("partitions", []):
        context, value = partition.get("context"), partition.get("replication_key_value")
        if not isinstance(context, dict) or set(context) != set(keys):
            shape = ", ".join(f"'{key}': …" for key in keys)
            ignored.append(f"a partition of context {context!r} (this stream's is {{{shape}}})")
            continue
        named, partition_context = label(keys, context), {key: context[key] for key in keys}
        if partition_context not in (stream.partitions or []):
            if partition_context not in configured(stream):
                ignored.append(f"the bookmark of {named}, which is not configured")
            continue  # else another shard's account: its bookmark rides along, untouched
        if value is None:
            continue  # a partition without a bookmark yet: read from start_date, as on a first run
        elif partition.get("replication_key") != stream.replication_key:
            key = partition.get("replication_key")
            ignored.append(f"{named}'s bookmark on {key!r}, not {stream.replication_key!r}")
        else:
            check_value(stream.name, named, value)
            bookmarked.add(named)
    return ignored, bookmarked


def configured(stream: Checked) -> list[dict[str, t.Any]]:
    """Every configured partition of the stream, of this shard or another (`shard_count`)."""
    if isinstance(stream, CallsStream):
        return [stream.partition(s.name, name) for s in stream.sources for name in s.accounts]
    return [{"account": name} for name in stream.accounts]


def check_value(stream: str, named: str, value: t.Any) -> None:
    try:
        parse_instant(value)
    except (TypeError, ValueError, AttributeError):
        raise StateError(
            f"state of stream '{stream}', {named}: bookmark {value!r} is not a date-time; {RESET}"
        ) from None


def ignored_message(stream: Checked, ignored: list[str], bookmarked: set[str]) -> str:
    keys = partition_keys(stream)
    fresh = [p for p in stream.partitions or [] if label(keys, p) not in bookmarked]
    start = f"from start_date ({stream.config['start_date']})"
    if not fresh:
        then = "Every configured account has a bookmark of its own"
    elif keys == ("account",):  # "accounts 'hq', 'branch'"
        names = ", ".join(repr(p["account"]) for p in fresh)
        then = f"This run reads account{'s' if len(fresh) > 1 else ''} {names} {start}"
    else:
        then = f"This run reads {', '.join(label(keys, p) for p in fresh)} {start}"
    return f"state of stream '{stream.name}': ignored {'; '.join(ignored)}. {then}."


def partition_keys(stream: Checked) -> tuple[str, ...]:
    return ("source_stream", "account") if isinstance(stream, CallsStream) else ("account",)


def label(keys: tuple[str, ...], context: t.Mapping[str, t.Any]) -> str:
    """A partition as messages name it: "account 'hq'", "source_stream 'x' account 'hq'"."""
    return " ".join(f"{key} {context[key]!r}" for key in keys)
