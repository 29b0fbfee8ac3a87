"""The SDK's per-record steps, minus those that would change nothing.

Per record the SDK walks the selection mask, runs type conformance, applies stream maps,
builds a message object and copies a context dict for child streams: about two thirds of
a stock stream's CPU. For our records most of that is a no-op. When nothing is deselected
and there are no stream maps, the RECORD line is encoded straight into the buffered writer
(the SDK's own encoder and field order), skipping all of it, provided conformance would
change nothing: `trust_record_types` is on, or one cheap pass shows the record holds only
values the SDK's conformance leaves as they are (`ConformanceCheck`). Any other record
takes the SDK's own path; so does the child-context copy unless there are no children.

In that common case the SDK's record loop itself is replaced too (`_sync_in_batches`): it
walks each batch an account's thread read in one tight loop, with the same calls in the same
order (post_process, RECORD, the periodic STATE, the partition's final state) but without the
SDK's per-record generator hops, limit checks and counter calls (about 3 µs a record).
tests/test_fast_path.py compares whole runs' output with and without the shortcuts.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams.core import Stream

from tap_callcdr.fastpath.conformance import ConformanceCheck
from tap_callcdr.fastpath.writer import BufferedMsgspecWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

BATCH_RECORDS = 500  # records an account's thread hands the emitter at once


@dataclass(frozen=True)
class EncodedBatch:
    """Records already built, checked and encoded elsewhere (a row worker): one JSON object a
    line, in `lines` or in a file the batch loop removes once written out. Only the batch loop
    takes these (`LeanRecordPath.batching`): the SDK's loop would post-process them again."""

    path: Path | None
    count: int
    lines: bytes = b""


Batch = list[dict[str, t.Any]] | EncodedBatch  # what an account's thread hands the emitter


class LeanRecordPath(Stream):
    """Mixed into the stream class: overrides of the SDK's per-record methods."""

    @cached_property
    def _everything_selected(self) -> bool:
        """No property is deselected: removing deselected ones (~10 µs a record) is a no-op."""
        return all(self.mask.values())

    @cached_property
    def _conformance(self) -> ConformanceCheck | None:
        """None when the SDK is not to conform at all (trust_record_types)."""
        if self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE:
            return None
        return ConformanceCheck(self.effective_schema)

    @cached_property
    def _direct_writer(self) -> BufferedMsgspecWriter | None:
        """The writer RECORD lines may go straight to: everything selected, no stream maps."""
        writer = self._tap.message_writer
        maps = self.stream_maps
        plain = len(maps) == 1 and type(maps[0]) is SameRecordTransform and not maps[0].flattening_enabled
        if plain and maps[0].stream_alias == self.name and self._everything_selected:
            return writer if isinstance(writer, BufferedMsgspecWriter) else None
        return None

    def record_batches(self, context: Context | None) -> Iterable[Batch]:
        """`get_records(context)` in batches; streams that read in batches hand them on as they are."""
        batch: list[dict[str, t.Any]] = []
        for record in self.get_records(context):
            batch.append(t.cast("dict[str, t.Any]", record))  # the SDK's deprecated tuples aside
            if len(batch) == BATCH_RECORDS:
                yield batch
                batch = []
        if batch:
            yield batch

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's loop, or ours where it would do nothing more (module docstring)."""
        batched = (
            write_messages
            and context is None
            and self.selected
            and not self.child_streams
            and self.ABORT_AT_RECORD_COUNT is None
            and self._direct_writer is not None
        )
        self.batching = batched
        if not batched:
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        self._sync_in_batches()

    batching = False  # this sync runs the batch loop (set as it starts)

    def _sync_in_batches(self) -> None:
        """`Stream._sync_records` (SDK 0.54) for all partitions, writing messages, without
        child streams or a record limit: the same messages in the same order."""
        record_counter, timer = self.get_record_counter(), self.get_sync_timer()
        written = 0
        with record_counter, timer:
            for partition in self.partitions or [{}]:
                record_counter.with_context(partition)
                timer.with_context(partition)
                context = partition or None
                state_context = self._get_state_partition_context(context)
                self._write_starting_replication_value(context)
                for batch in self.record_batches(context):
                    before = written
                    written = self._emit_batch(batch, context, state_context, written)
                    record_counter.increment(written - before)
                if context == state_context:
                    self._finalize_state(self.get_context_state(context))
        self._finalize_state(self.stream_state)
        self._write_state_message()

    def _emit_batch(
        self, batch: Batch, context: Context | None, state_context: Context | None,
        written: int,
    ) -> int:  # fmt: skip
        """post_process, partition keys and RECORD for each row, a STATE every
        STATE_MSG_FREQUENCY records of the stream; returns the stream's count so far.

        What `_write_record_message` does, inlined; the batch's records share one
        time_extracted (read together, handed over together)."""
        writer = t.cast("BufferedMsgspecWriter", self._direct_writer)  # batched: never None here
        if isinstance(batch, EncodedBatch):
            return self._emit_encoded(batch, writer, written)
        post_process, state, sdk_write = self.post_process, self.state_manager, super()._write_record_message
        write = writer.record_writer(self.name, self._stream_version)
        unchanged = self._conformance.unchanged if self._conformance is not None else None
        keys = list((state_context or {}).items())
        every = self.STATE_MSG_FREQUENCY
        for row in batch:
            record = post_process(row, context)
            if record is None:
                continue
            for key, value in keys:
                record.setdefault(key, value)
            if unchanged is None or unchanged(record):
                write(record)
            else:
                sdk_write(record)
            state.is_flushed = False
            written += 1
            if written % every == 0:
                self._write_state_message()
        return written

    def _emit_encoded(self, batch: EncodedBatch, writer: BufferedMsgspecWriter, written: int) -> int:
        """_emit_batch for records a worker encoded: each line into a RECORD, in order."""
        write = writer.encoded_record_writer(self.name, self._stream_version)
        state, every = self.state_manager, self.STATE_MSG_FREQUENCY
        try:
            with contextlib.ExitStack() as stack:
                # a line of JSON holds no raw line break: msgspec escapes them in strings
                lines: t.Iterable[bytes] = batch.lines.split(b"\n")[:-1]
                if batch.path:
                    lines = stack.enter_context(batch.path.open("rb"))
                for line in lines:
                    write(line.rstrip(b"\n"))
                    state.is_flushed = False
                    written += 1
                    if written % every == 0:
                        self._write_state_message()
        finally:
            if batch.path:
                os.unlink(batch.path)
        return written

    def _process_record(
        self,
        record: dict[str, t.Any],
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        """Without child streams, all the SDK does here is add the partition's keys (ours are
        in every record already); its child-context walk copies a dict per record."""
        if self.child_streams:
            super()._process_record(record, child_context, partition_context)
            return
        for key, value in (partition_context or {}).items():
            record.setdefault(key, value)

    def _write_record_message(self, record: dict[str, t.Any]) -> None:
        writer, conformance = self._direct_writer, self._conformance
        if writer is None or (conformance is not None and not conformance.unchanged(record)):
            super()._write_record_message(record)
        else:
            writer.write_record(self.name, record, self._stream_version)
        # Either way a STATE is now due (the SDK marks it in _increment_stream_state, which our
        # streams leave empty): else the SDK's abort (`--test`) writes none after this record.
        self.state_manager.is_flushed = False
