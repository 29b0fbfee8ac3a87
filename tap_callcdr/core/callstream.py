"""The unified `calls` stream (docs/calls.md): one shape for every vendor's calls, made of the
vendor streams' own records, in the same run and from the same rows.

Who reads: the vendor streams. `calls` itself sends no request. A vendor stream whose vendor
has a mapping (`VendorSpec.calls`, set on the stream as `to_call`) tees its records while
`calls` is selected (`CallsTee`, the stream's `record_tee`): each batch it writes is mapped
and written as `calls` RECORDs right after it, so one request feeds both streams, and the
window's STATE follows both. A vendor stream that is not selected is read by the `calls`
stream's own sync (`sync_sources`) with only the tee writing: the SDK syncs streams in name
order, and `calls` sorts before every vendor stream, so its SCHEMA comes first too.

Its state: one partition per source stream and account, `{"source_stream", "account"}`,
moved to each window's end as the source's own bookmark is (a bookmark is a window's end,
never a record's value). A source stream reads each account from the earlier of its own
bookmark and `calls`' (`start_bookmark`): what lies between is sent to both streams again,
and the loader's upsert on the primary keys makes that a no-op.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import typing as th

from tap_callcdr.core.calls import CORE_FIELDS, DIRECTIONS, PRIMARY_KEYS, STATUSES
from tap_callcdr.core.windows import parse_instant
from tap_callcdr.fastpath.emitting import LeanRecordPath

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from singer_sdk.helpers.types import Context

    from tap_callcdr.core.stream import CDRStream

CALLS = "calls"
MONEY_PRECISION, MONEY_SCALE = 38, 18  # as ITNIO's money with use_singer_decimal

DESCRIPTIONS = {
    "vendor": "The vendor (its <vendor>_accounts setting)",
    "account": "Configured account",
    "source_stream": "The vendor stream the call comes from",
    "call_id": "The call's id, unique per vendor and account",
    "source_key": "The source stream's key besides account, to join back to the raw row",
    "vendor_call_id": "The vendor's own call id (Yeastar's transferred legs share one)",
    "started_at": "Call start, UTC",
    "answered_at": "Answer time, UTC; null if never answered or not said",
    "ended_at": "Call end, UTC",
    "duration_seconds": "Seconds from start to end",
    "talk_seconds": "Seconds from answer to end (0 when not answered)",
    "direction": f"One of {', '.join(DIRECTIONS)}",
    "caller": "The calling number",
    "callee": "The called number",
    "status": f"One of {', '.join(STATUSES)}; a code the vendor's docs do not list is unknown",
    "vendor_status": "The vendor's own status word or code, as sent",
    "extension": "The PBX extension involved",
    "agent": "The call-center agent (id or name as the vendor gives it)",
    "trunk": "The trunk or line",
    "recording": "A recording file name or URL",
    "cost": "The call's charge (exact decimal)",
    "currency": "ISO 4217 currency code of cost",
}


def calls_schema(money_as_text: bool) -> dict[str, t.Any]:
    """The JSON schema of `calls`: instants as date-time, integers, enums as strings, and
    `cost` as the vendor streams' money (x-singer.decimal text with use_singer_decimal)."""

    Kind = th.JSONTypeHelper | type[th.JSONTypeHelper]

    def prop(name: str, kind: Kind, *, required: bool = False) -> th.Property:
        return th.Property(name, kind, required=required, description=DESCRIPTIONS[name])

    text = ("source_key", "vendor_call_id", "caller", "callee", "vendor_status", "extension", "agent",
            "trunk", "recording", "currency")  # fmt: skip
    schema = th.PropertiesList(
        *(prop(name, th.StringType, required=True) for name in (*CORE_FIELDS, "call_id")),
        *(prop(name, th.StringType) for name in text[:2]),
        prop("started_at", th.DateTimeType, required=True),
        prop("answered_at", th.DateTimeType),
        prop("ended_at", th.DateTimeType),
        prop("duration_seconds", th.IntegerType),
        prop("talk_seconds", th.IntegerType),
        prop("direction", th.StringType(allowed_values=list(DIRECTIONS)), required=True),
        *(prop(name, th.StringType) for name in text[2:4]),
        prop("status", th.StringType(allowed_values=list(STATUSES)), required=True),
        *(prop(name, th.StringType) for name in text[4:9]),
        prop("cost", th.DecimalType),
        prop("currency", th.StringType),
    ).to_dict()
    if money_as_text:
        schema["properties"]["cost"] = {
            "type": ["string", "null"], "format": "x-singer.decimal",
            "precision": MONEY_PRECISION, "scale": MONEY_SCALE, "description": DESCRIPTIONS["cost"],
        }  # fmt: skip
    return schema


def partition_bookmark(stream: t.Any, context: Mapping[str, t.Any]) -> str | None:
    """A stream's bookmark of partition `context` as state holds it (None: none), without
    creating the partition's entry (get_context_state would)."""
    partitions = stream.stream_state.get("partitions") or []
    state: dict[str, t.Any] = next((p for p in partitions if p.get("context") == dict(context)), {})
    if state.get("replication_key") != stream.replication_key:
        return None
    return state.get("replication_key_value") or None


def move_bookmark(state: dict[str, t.Any], key: str, value: str) -> None:
    """Move a partition's bookmark forward to `value` (ISO UTC text: text order is time order)."""
    old = state.get("replication_key_value")
    if old is None or value > old:
        state["replication_key"] = key
        state["replication_key_value"] = value


class CallsStream(LeanRecordPath):
    """Every configured vendor's calls in one shape; its records are written by its source
    streams' syncs (module docstring)."""

    name = CALLS
    primary_keys = PRIMARY_KEYS
    replication_key = "started_at"
    selected_by_default = False  # costs nothing unless asked for
    url_base = ""
    schema = calls_schema(money_as_text=False)

    def __init__(self, tap: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        self.schema = calls_schema(bool(tap.config.get("use_singer_decimal")))
        super().__init__(tap, *args, **kwargs)

    @cached_property
    def sources(self) -> list[CDRStream[t.Any]]:
        """The streams whose records become calls: those of a vendor with a mapping."""
        streams = self.tap.streams.values()
        mapped = [stream for stream in streams if getattr(stream, "to_call", None) is not None]
        return t.cast("list[CDRStream[t.Any]]", mapped)  # to_call: only CDR streams have it

    @property
    def partitions(self) -> list[dict[str, t.Any]]:
        return [self.partition(s.name, name) for s in self.sources for name in s.accounts_in_shard]

    @staticmethod
    def partition(source: str, account: str) -> dict[str, str]:
        return {"source_stream": source, "account": account}

    def written_by_other_streams(self) -> bool:
        return True

    def sync_sources(self) -> None:
        """Read the sources that are not selected, for `calls` only (the selected ones tee
        their records into `calls` in their own syncs, which the SDK runs after this one)."""
        for source in self.sources:
            if not source.selected:
                self.logger.info("Reading %s for calls only (it is not selected)", source.name)
                source.sync()

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: bookmarks are window ends (windows.py)."""
        return None


class CallsTee:
    """The `calls` records of one source stream: written from its records (`write`), with
    their own bookmark per account (`bookmark`, `advance`)."""

    def __init__(self, calls: CallsStream, source: CDRStream[t.Any]) -> None:
        self.calls, self.source = calls, source
        self.to_call: Callable[[str, Mapping[str, t.Any]], dict[str, t.Any]] = t.cast("t.Any", source.to_call)

    def write(self, records: list[dict[str, t.Any]]) -> None:
        """The calls of a batch of the source's records (as it emits them), after them."""
        write, to_call = self.calls.batch_writer(), self.to_call
        vendor, stream = self.source.vendor, self.source.name
        for record in records:
            call = {"vendor": vendor, "account": record["account"], "source_stream": stream}
            call.update(to_call(stream, record))
            write(call)

    def context(self, account: str) -> dict[str, str]:
        return self.calls.partition(self.source.name, account)

    def bookmark(self, account: str) -> dt.datetime | None:
        """`calls`' bookmark of this source and account (None: none yet, so start_date)."""
        value = partition_bookmark(self.calls, self.context(account))
        return max(parse_instant(value), self.source.window_plan.start_date) if value else None

    def advance(self, account: str, value: str) -> None:
        """A window of the account read completely to `value`: `calls`' bookmark moves there."""
        move_bookmark(self.calls.get_context_state(self.context(account)), self.calls.replication_key, value)

    def state_due(self) -> None:
        """A STATE is due (`calls`' bookmark moved): the stream's last one includes it."""
        self.calls.mark_state_unflushed()
