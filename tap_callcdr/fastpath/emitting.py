"""The SDK's per-record steps, minus those that would change nothing.

Per record the SDK walks the selection mask, runs type conformance, applies stream maps,
builds a message object and copies a context dict for child streams: about two thirds of
a stock stream's CPU. For our records most of that is a no-op. When nothing is deselected
and there are no stream maps, the RECORD line is encoded straight into the buffered writer
(the SDK's own encoder and field order), skipping all of it, provided conformance would
change nothing: `trust_record_types` is on, or one cheap pass shows the record holds only
values the SDK's conformance leaves as they are (`ConformanceCheck`). Any other record
takes the SDK's own path; so does the child-context copy unless there are no children.

In that common case the SDK's record loop itself is replaced too (`use_batch_loop`; the loop
is `_sync_in_batches` in sdk.py): it walks each batch an account's thread read in one tight
loop (`emit_batch`), with the same calls in the same order (post_process, RECORD, the periodic
STATE, the partition's final state) but without the SDK's per-record generator hops, limit
checks and counter calls (about 3 µs a record). A stream class that overrides `get_records`
keeps the SDK's loop, which reads it. tests/test_fast_path.py compares whole runs' output with
and without the shortcuts.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_callcdr.fastpath.conformance import ConformanceCheck
from tap_callcdr.fastpath.sdk import SDKStream
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


class LeanRecordPath(SDKStream):
    """Mixed into the stream class: the SDK's per-record steps without the no-ops, and the
    batch loop's part of ours (sdk.py runs the loop)."""

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
        writer = self.tap.message_writer
        maps = self.stream_maps
        plain = len(maps) == 1 and type(maps[0]) is SameRecordTransform and not maps[0].flattening_enabled
        if plain and maps[0].stream_alias == self.name and self._everything_selected:
            return writer if isinstance(writer, BufferedMsgspecWriter) else None
        return None

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """The records of `record_batches`, for the SDK's loop (the batch loop takes the
        batches themselves, unless a subclass overrides this method: `use_batch_loop`)."""
        for batch in self.record_batches(context):
            assert not isinstance(batch, EncodedBatch), "encoded records are for the batch loop only"
            yield from batch

    def record_batches(self, context: Context | None) -> Iterator[Batch]:
        """The partition's records in the batches they were read in (the stream's reader)."""
        raise NotImplementedError

    def use_batch_loop(self, context: Context | None) -> bool:
        """Our loop where the SDK's would do nothing more (module docstring): all partitions,
        selected, no child streams or record limit, RECORDs straight to the writer, and the
        records are `record_batches`' (`get_records` not overridden by a subclass)."""
        emitted = self._direct_writer is not None if self.selected else self.record_tee is not None
        return (
            context is None
            and emitted  # RECORDs straight to the writer; or only other streams' (`calls`)
            and not self.child_streams
            and self.ABORT_AT_RECORD_COUNT is None
            and type(self).get_records is LeanRecordPath.get_records
        )

    def emit_batch(
        self, batch: Batch, context: Context | None, state_context: Context | None,
        written: int,
    ) -> int:  # fmt: skip
        """post_process, partition keys and RECORD for each row, a STATE every
        STATE_MSG_FREQUENCY records of the stream; returns the stream's count so far.

        What `_write_record_message` does, inlined; the batch's records share one
        time_extracted (read together, handed over together).

        The SDK marks a STATE due after each RECORD. Only writing a STATE reads that mark, so it
        is set just before each periodic STATE, and as the batch ends (or fails) if records
        followed the last one: the same mark wherever it is read, and no step per record."""
        tee = self.record_tee
        if isinstance(batch, EncodedBatch):  # no workers while teeing (CDRStream.row_worker_count)
            assert tee is None, "a tee takes records, not a worker's encoded lines"
            writer = t.cast("BufferedMsgspecWriter", self._direct_writer)  # batched: never None here
            return self._emit_encoded(batch, writer, written)
        if tee is None:
            return self._emit_rows(batch, context, state_context, written)
        if not self.selected:  # read only for the tee's streams
            tee(self._records_of(batch, context, state_context))
            return written
        records: list[dict[str, t.Any]] = []
        written = self._emit_rows(batch, context, state_context, written, records.append)
        tee(records)
        return written

    def _records_of(
        self, batch: list[dict[str, t.Any]], context: Context | None, state_context: Context | None
    ) -> list[dict[str, t.Any]]:
        """The batch's records, post-processed and with the partition keys, not written."""
        records = [record for row in batch if (record := self.post_process(row, context)) is not None]
        for key, value in (state_context or {}).items():
            for record in records:
                record.setdefault(key, value)
        return records

    def _emit_rows(
        self, batch: list[dict[str, t.Any]], context: Context | None, state_context: Context | None,
        written: int, keep: t.Callable[[dict[str, t.Any]], None] | None = None,
    ) -> int:  # fmt: skip
        """emit_batch for vendor rows; `keep` also gets each record written (for the tee)."""
        writer = t.cast("BufferedMsgspecWriter", self._direct_writer)  # batched: never None here
        sdk_write = self.sdk_write_record_message
        post_process = self.post_process if keep is None else keeping(self.post_process, keep)
        write = writer.record_writer(self.name, self.stream_version)
        unchanged = self._conformance.unchanged if self._conformance is not None else None
        keys = list((state_context or {}).items())
        every, start = self.STATE_MSG_FREQUENCY, written
        try:
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
                written += 1
                if written % every == 0:
                    self._periodic_state()
        finally:
            self._state_due_after(start, written)
        return written

    def _periodic_state(self) -> None:
        """The STATE every STATE_MSG_FREQUENCY records (marked due just before it is written)."""
        self.mark_state_unflushed()
        self.write_state_message()

    def _state_due_after(self, start: int, written: int) -> None:
        """As a batch ends (or fails): records after the last periodic STATE make one due."""
        if written != start and written % self.STATE_MSG_FREQUENCY:
            self.mark_state_unflushed()

    def _emit_encoded(self, batch: EncodedBatch, writer: BufferedMsgspecWriter, written: int) -> int:
        """emit_batch for records a worker encoded: each line into a RECORD, in order."""
        write = writer.encoded_record_writer(self.name, self.stream_version)
        every, start = self.STATE_MSG_FREQUENCY, written
        try:
            with contextlib.ExitStack() as stack:
                # a line of JSON holds no raw line break: msgspec escapes them in strings
                lines: t.Iterable[bytes] = batch.lines.split(b"\n")[:-1]
                if batch.path:
                    lines = stack.enter_context(batch.path.open("rb"))
                for line in lines:
                    write(line.rstrip(b"\n"))
                    written += 1
                    if written % every == 0:
                        self._periodic_state()
        finally:
            self._state_due_after(start, written)
            if batch.path:
                os.unlink(batch.path)
        return written

    def batch_writer(self) -> t.Callable[[dict[str, t.Any]], None]:
        """`write_record` for a batch of this stream's records (one time_extracted): straight
        to the writer where conformance would change nothing, else the SDK's path."""
        writer, conformance = self._direct_writer, self._conformance
        if writer is None:
            return self.sdk_write_record_message
        write = writer.record_writer(self.name, self.stream_version)
        if conformance is None:
            return write
        unchanged, sdk_write = conformance.unchanged, self.sdk_write_record_message

        def checked(record: dict[str, t.Any]) -> None:
            (write if unchanged(record) else sdk_write)(record)

        return checked

    def write_record(self, record: dict[str, t.Any]) -> None:
        """The SDK's loop's RECORD (`_write_record_message`, which then marks a STATE due)."""
        writer, conformance = self._direct_writer, self._conformance
        if writer is None or (conformance is not None and not conformance.unchanged(record)):
            self.sdk_write_record_message(record)
        else:
            writer.write_record(self.name, record, self.stream_version)


PostProcess = t.Callable[[dict[str, t.Any], "Context | None"], "dict[str, t.Any] | None"]


def keeping(post_process: PostProcess, keep: t.Callable[[dict[str, t.Any]], None]) -> PostProcess:
    """`post_process`, also handing each record it makes to `keep`."""

    def kept(row: dict[str, t.Any], context: Context | None) -> dict[str, t.Any] | None:
        record = post_process(row, context)
        if record is not None:
            keep(record)
        return record

    return kept
