"""The one module that touches the SDK's internals (Meltano Singer SDK 0.54).

The rest of the tap uses the SDK's public API and the public-named hooks defined here: each
private step the tap changes is overridden here and hands over to a public method of ours,
with the SDK's own behaviour as its default. tests/test_sdk_internals.py fails when another
module uses an SDK internal, or when this list misses one used here. On an SDK upgrade, check
each item below (tests/test_fast_path.py compares our record loop with the SDK's, byte for byte
and call for call).

Overridden on the stream (`singer_sdk.streams.core.Stream`, `.rest.RESTStream`):
- `_sync_records`: the one override of the record loop. A stream with no partition to read
  (`partitions == []`: a shard without its accounts) reads nothing. Otherwise it runs our batch loop
  (`_sync_in_batches`) when `use_batch_loop` says it may, else the SDK's (a stream whose
  records other streams write, `written_by_other_streams`, runs `sync_sources` instead: the
  unified `calls`); it hands a failure to
  `sync_failed` and always ends with `end_sync`. Check that `sync()` and `_sync_batches` still
  drive it, and that `sync()` still logs an exception that leaves it as unhandled (the reason
  failures are caught here, not around `sync()`, which is final anyway).
- `_sync_in_batches` is ours, a copy of `Stream._sync_records` without child streams, a record
  limit or a given context: compare it line by line with the new `_sync_records`. A stream
  read only for another (not selected: `calls` alone) leaves its own state untouched there.
- `_sync_batches`: the SDK's, then a STATE (the windows read after the last BATCH). Check it
  still writes a STATE after each BATCH.
- `get_batches` (public): a JSONL BATCH message says `gzip`, as the SDK's JSONL batcher writes
  every file. Check whether that batcher now honours `compression` (then write as asked).
- `_process_record`: without child streams only the partition keys are added (no child-context
  copy per record); then `record_tee`, if set, gets the record (the SDK's loop feeding `calls`;
  the batch loop hands it whole batches). Check it still does nothing else then, and that the
  SDK's loop still calls it for every record, selected or not.
- `_write_record_message`: goes to `write_record`, then marks a STATE due as the SDK's does
  (`state_manager.is_flushed`, below); `sdk_write_record_message` is the SDK's. Check the
  RECORD message it builds (tests/test_fast_path.py compares both).
- `_increment_stream_state`: off; our bookmarks are window ends. Check it still only moves the
  bookmark (a STATE is marked due in `_write_record_message`, not here).
- `_request` (RESTStream): goes to `send_request`, which keeps the SDK's one attempt. Check the
  SDK's body against `send_request`, and that `request_records` still calls
  `request_decorator(self._request)`.
- `RETRIED` copies the exceptions `RESTStream.request_decorator` retries: check the list.

Read or called on the stream:
- `_write_state_message` (`write_state_message`), `_finalize_state` (`finalize_partition_state`,
  and the batch loop's), and in the batch loop `_get_state_partition_context`,
  `_write_starting_replication_value`: check their signatures.
- `state_manager`: a public property, but its `StreamStateManager` is from the private
  `singer_sdk.streams._state`. Only its `is_flushed` is set here (`mark_state_unflushed`, and
  `_write_record_message` per record): a STATE is written only while it is False. Check that the
  SDK still sets it after each RECORD and reads it only in `_write_state_message`.
- `_stream_version` (`stream_version`), `_tap` (`tap`): check they still exist.
- `_write_request_duration_log` and `_LOG_REQUEST_METRIC_URLS` (`log_request_duration`): the
  request METRIC line `_request` writes. Check its signature.

Overridden on the tap (`singer_sdk.tap_base.Tap`):
- `_validate_config`: `check_settings` first (errors naming the setting), then the SDK's check.
  Check the Tap still validates there, with `raise_errors`.
- `sync_all` (public, but marked final): `before_sync` (a sharded run's line), then the SDK's.
  Check `sync_all` is still the one entry of a sync.

Imported from `singer_sdk.helpers._*` (re-exported here):
- `helpers._util.load_json`: the JSON reading of the SDK's `invoke` (numbers as Decimal), so
  the `--state` check reads a file as the SDK then does.
- `helpers._util.utc_now`: a RECORD's time_extracted, as the SDK stamps it.
- `helpers._typing._is_exclusive_boolean_type`: the properties the SDK's conformance turns into
  booleans (`ConformanceCheck`). Check conformance still treats exactly these specially.
- `helpers._batch.BatchConfig`: a type only.

Copies of public SDK code elsewhere, to compare on an upgrade too: `TapCallCDR.cb_test` and
`cb_discover` (Tap's, building the tap the same way), `CDRStream.request_decorator` (the
SDK's retry decorator, with `RETRIED`), `CDRStream.prepared` (`RESTStream.build_prepared_request`:
its User-Agent, the session's preparation and authenticator), `fastpath/pageahead.answers`
(`RESTStream.request_records`' paging loop).

Public behaviour relied on elsewhere, to check on an upgrade too: `core/catalog.py` (the
precision and scale of `use_singer_decimal` in SCHEMA messages) relies on `singerlib.Schema`
being a dataclass whose `to_dict` writes the catalog's schemas: tests/test_singer_decimal.py
fails when that changes.

The public-named hooks defined here, which the rest of the tap uses instead:
- stream: `use_batch_loop`, `record_batches`, `emit_batch`, `sync_failed`, `end_sync`,
  `record_tee`, `written_by_other_streams`, `sync_sources` (the record loop); `write_record`,
  `sdk_write_record_message`, `stream_version`, `tap` (RECORDs);
  `write_state_message`, `mark_state_unflushed`, `finalize_partition_state` (STATE);
  `send_request`, `log_request_duration` (requests);
- tap: `check_settings` (config), `stream_failed` (a stream's failure: raised by default).
"""

from __future__ import annotations

import typing as t
from dataclasses import replace

import requests
from singer_sdk import RESTStream, Tap
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers._batch import BatchConfig as BatchConfig
from singer_sdk.helpers._typing import _is_exclusive_boolean_type
from singer_sdk.helpers._util import load_json as load_json
from singer_sdk.helpers._util import utc_now as utc_now

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

RETRIED = (  # what RESTStream.request_decorator retries (0.54)
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def is_exclusive_boolean_type(schema: dict[str, t.Any]) -> bool:
    """Whether the SDK's conformance turns this property's values into booleans."""
    return bool(_is_exclusive_boolean_type(schema))


class SDKStream(RESTStream[t.Any]):
    """The stream's SDK internals, each handed over to the public-named hook after it."""

    # -- the record loop -----------------------------------------------------------------

    batching = False  # this sync runs the batch loop (set as it starts)
    # Writes other streams' records made of a batch of this stream's records (the unified
    # `calls`), after the batch's own; None: none (no per-record step at all).
    record_tee: t.Callable[[list[dict[str, t.Any]]], None] | None = None

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's loop, or the batch loop where it would do nothing more; a failure goes to
        `sync_failed`, and `end_sync` runs whatever happened."""
        if self.partitions == []:  # none to read (a shard without this stream's accounts): the
            return  # SDK would read one partition-less context
        self.batching = write_messages and self.use_batch_loop(context)
        try:
            if self.written_by_other_streams():
                self.sync_sources()
            elif self.batching:
                self._sync_in_batches()
            else:
                yield from super()._sync_records(context, write_messages=write_messages)
        except Exception as error:
            if not self.sync_failed(error):
                raise
        finally:
            self.end_sync()

    def _sync_in_batches(self) -> None:
        """`Stream._sync_records` (SDK 0.54) for all partitions, writing messages, without
        child streams or a record limit: the same messages in the same order, a batch at a
        time (`record_batches`, `emit_batch`)."""
        record_counter, timer = self.get_record_counter(), self.get_sync_timer()
        written = 0
        with record_counter, timer:
            for partition in self.partitions or [{}]:
                record_counter.with_context(partition)
                timer.with_context(partition)
                context = partition or None
                state_context = self._get_state_partition_context(context)
                if self.selected:  # else its state is not touched: read only for other streams
                    self._write_starting_replication_value(context)
                for batch in self.record_batches(context):
                    before = written
                    written = self.emit_batch(batch, context, state_context, written)
                    record_counter.increment(written - before)
                if context == state_context and self.selected:
                    self._finalize_state(self.get_context_state(context))
        if self.selected:
            self._finalize_state(self.stream_state)
            self._write_state_message()

    def _sync_batches(self, batch_config: BatchConfig, context: Context | None = None) -> None:
        """The SDK's: a STATE after each BATCH message; then one for the windows read after
        the last batch's records (or read empty)."""
        super()._sync_batches(batch_config, context=context)
        self._write_state_message()

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[t.Any, list[str]]]:
        """The SDK's, each BATCH message saying the compression its files have. The SDK's
        JSONL batcher gzips every file whatever `compression` says (0.54: "TODO"), and a
        target opens a file as gzip only when the message says so: the default encoding
        (`{"format": "jsonl"}`) made target-postgres fail on its first file."""
        for encoding, manifest in super().get_batches(batch_config, context):
            if encoding.format == "jsonl" and encoding.compression != "gzip":
                encoding = replace(encoding, compression="gzip")
            yield encoding, manifest

    def written_by_other_streams(self) -> bool:
        """Whether other streams' syncs write this stream's records (the unified `calls`):
        then its sync runs `sync_sources` instead of a record loop. No by default."""
        return False

    def sync_sources(self) -> None:
        """What a stream written by other streams does in its own sync (see above)."""

    def use_batch_loop(self, context: Context | None) -> bool:
        """Whether this sync may run the batch loop instead of the SDK's; never by default."""
        return False

    def record_batches(self, context: Context | None) -> Iterable[t.Any]:
        """The batch loop's input: the partition's records, in batches (emitting.py)."""
        raise NotImplementedError

    def emit_batch(
        self, batch: t.Any, context: Context | None, state_context: Context | None, written: int
    ) -> int:
        """Write one batch's messages; returns the stream's record count so far."""
        raise NotImplementedError

    def sync_failed(self, error: Exception) -> bool:
        """This sync failed with `error`: True if it is taken care of (not raised); by default
        it is raised, as the SDK does."""
        return False

    def end_sync(self) -> None:
        """After each sync, whatever happened: release what the sync held."""

    # -- per record ----------------------------------------------------------------------

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
        else:
            for key, value in (partition_context or {}).items():
                record.setdefault(key, value)
        if self.record_tee is not None:  # other streams made of this one's records (`calls`)
            self.record_tee([record])

    def _write_record_message(self, record: dict[str, t.Any]) -> None:
        self.write_record(record)
        # As the SDK's marks a STATE due after the RECORD (inline, not the hook: per record);
        # else the SDK's abort (`--test`) writes no STATE after this record.
        self.state_manager.is_flushed = False

    def write_record(self, record: dict[str, t.Any]) -> None:
        """One RECORD (and the messages of stream maps); the SDK's by default."""
        self.sdk_write_record_message(record)

    def sdk_write_record_message(self, record: dict[str, t.Any]) -> None:
        """The SDK's RECORD message for `record`: conformed, mapped, its message object."""
        super()._write_record_message(record)

    def _increment_stream_state(self, latest_record: t.Any, *, context: t.Any = None) -> None:
        """Off: bookmarks come from completed windows, never from records (windows.py)."""

    def write_state_message(self) -> None:
        """A STATE, if the state changed since the last one."""
        self._write_state_message()

    def mark_state_unflushed(self) -> None:
        """A STATE is due at the next `write_state_message` (the SDK marks this after each
        RECORD; the batch loop where a STATE may follow)."""
        self.state_manager.is_flushed = False

    def finalize_partition_state(self, state: dict[str, t.Any]) -> None:
        """Promote the partition `state`'s progress markers and mark a STATE due, without
        writing it (in batch mode the SDK writes it after the next BATCH message)."""
        self._finalize_state(state)

    @property
    def stream_version(self) -> int | None:
        """The version RECORD messages carry (None: none)."""
        return self._stream_version

    @property
    def tap(self) -> SDKTap:
        """The tap (ours: its hooks, such as `stream_failed`, are there)."""
        return t.cast("SDKTap", self._tap)

    # -- requests ------------------------------------------------------------------------

    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        return self.send_request(prepared_request, context)

    def send_request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """One attempt at a request (the SDK retries it: `request_decorator`)."""
        return super()._request(prepared_request, context)

    def log_request_duration(
        self, request: requests.PreparedRequest, response: requests.Response, context: Context | None
    ) -> None:
        """The SDK's METRIC line for one answered request."""
        urls = {"url": request.path_url} if self._LOG_REQUEST_METRIC_URLS else None
        self._write_request_duration_log(self.path, response, context, urls)


class SDKTap(Tap):
    """The tap's SDK internals, each handed over to the public-named hook after it."""

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        if raise_errors:
            self.check_settings()
        return super()._validate_config(raise_errors=raise_errors)

    def check_settings(self) -> None:
        """Checks of the config that raise before the SDK's own; none by default."""

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK: overridden here only
        self.before_sync()
        super().sync_all()

    def before_sync(self) -> None:
        """What the tap says before its streams sync; nothing by default."""

    def stream_failed(self, stream: SDKStream, error: Exception) -> bool:
        """A stream's sync failed with `error` (its `sync_failed`): True if the run goes on
        without it; by default it is raised, as the SDK does."""
        return False
