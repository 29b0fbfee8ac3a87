"""The base every vendor stream builds on: accounts as partitions, time windows,
bookmarks per fully-read window, vendor-local times to UTC, and the retry policy."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import random
import threading
import typing as t
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property

import backoff
import requests
from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_callcdr.core.account import Account, described
from tap_callcdr.core.callstream import CALLS, CallsStream, CallsTee, move_bookmark, partition_bookmark
from tap_callcdr.core.errors import (
    URL_STATUSES,
    AccountsFailedError,
    CallCDRError,
    MalformedResponseError,
    TokenRejectedError,
    VendorError,
    one_line,
    raise_collected,
    url_hint,
)
from tap_callcdr.core.fields import CONVERSION_ERRORS, FieldConverters, RowError
from tap_callcdr.core.progress import DEFAULT_INTERVAL, AccountProgress
from tap_callcdr.core.redact import install as install_log_scrubbing
from tap_callcdr.core.shards import shard_of
from tap_callcdr.core.windows import UTC, Window, WindowPlan, iso_utc, parse_instant
from tap_callcdr.fastpath.emitting import BATCH_RECORDS, Batch, EncodedBatch, LeanRecordPath
from tap_callcdr.fastpath.readahead import ReadAhead
from tap_callcdr.fastpath.rowworkers import Cut, RowWorkers
from tap_callcdr.fastpath.sdk import RETRIED
from tap_callcdr.fastpath.session import Session

if t.TYPE_CHECKING:
    from pathlib import Path

    from singer_sdk.helpers.types import Context

    from tap_callcdr.fastpath.sdk import BatchConfig

A = t.TypeVar("A", bound=Account[t.Any])  # a vendor's account: Account, or its subclass
WINDOW_KEY = "_window"  # request-context key carrying the window being read
Record = dict[str, t.Any]  # a vendor's row (the SDK's Record): post_process makes the record of it
# What records_in_window yields: records; a Window read completely up to its end (the bookmark
# moves there); records a row worker built and encoded. _read_account passes on the last two.
WindowItem = Record | Window | EncodedBatch
DEFAULT_RETRY_CEILING = 60.0  # seconds: `retry_max_wait_seconds`
# A STATE lists every account read so far, so one after every window costs O(accounts) a
# window, O(accounts²) a run. After a window a STATE is written once the windows read since
# the last one are at least 1/STATE_ACCOUNTS_PER_WINDOW of the accounts it lists: up to that
# many accounts after every window, as always; beyond it, a constant cost a window.
STATE_ACCOUNTS_PER_WINDOW = 8
ACCOUNT_FAILURES = (CallCDRError, FatalAPIError, RetriableAPIError)  # what stops one account


class CDRStream(LeanRecordPath, t.Generic[A]):
    """A vendor endpoint read account by account, window by window.

    Subclasses name their `vendor` (config key `<vendor>_accounts`) and declare the
    usual name/path/keys/schema; they make an account's authenticator (`new_authenticator`)
    and read one window of an account with `records_in_window`.
    """

    vendor: t.ClassVar[str]
    account_type: type[A] = t.cast("type[A]", Account)  # what open_account makes, or a subclass
    # The vendor's mapping to the unified `calls` (VendorSpec.calls), set by the tap; None: none.
    to_call: t.Callable[[str, Mapping[str, t.Any]], dict[str, t.Any]] | None = None
    is_sorted = True  # resumable: our bookmark is a window end, see windows.py

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened: dict[str, A] = {}  # every account object, by name: the one per-account cache
        self._opening = threading.Lock()
        self._reader = threading.local()  # see reading_account
        # The accounts that failed in this sync, by name (the tap's dry run reports them too).
        self.failed_accounts: dict[str, Exception] = {}
        # Each account's progress in this sync, by name, in partition order (progress.py).
        self.progress: dict[str, AccountProgress] = {}
        if self.config.get("trust_record_types"):
            # post_process already typed every field; the SDK's re-check is half the CPU.
            self.TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    # -- accounts as partitions -------------------------------------------------

    @cached_property
    def accounts(self) -> dict[str, Mapping[str, t.Any]]:
        accounts = self.config.get(f"{self.vendor}_accounts") or []
        return {a["name"]: {"api_url": self.default_api_url, **a} for a in accounts}

    default_api_url: str | None = None  # for vendors with one public endpoint

    @property
    def partitions(self) -> list[dict] | None:
        return [{"account": name} for name in self.accounts_in_shard]

    @cached_property
    def accounts_in_shard(self) -> list[str]:
        """The accounts this run reads: all, or those of its shard (`shard_index`)."""
        count, index = int(self.config.get("shard_count", 1)), int(self.config.get("shard_index", 0))
        return [name for name in self.accounts if count == 1 or shard_of(self.vendor, name, count) == index]

    def account(self, context: Context | None) -> A:
        """The account of a partition, opened on first use and then kept (post_process asks
        for it per record: one dict lookup)."""
        assert context is not None, "CDR streams always run per account"
        account = self._opened.get(context["account"])
        return account if account is not None else self._open(context["account"])

    def _open(self, name: str) -> A:
        with self._opening:  # once, even if two threads ask at the same time
            if name not in self._opened:
                self._opened[name] = self.open_account(name)
            return self._opened[name]

    def open_account(self, name: str) -> A:
        """Account `name` with its own session and the vendor's authenticator (made once per
        account; a vendor that keeps more per account extends this or `account_type`)."""
        account = self.account_type(
            name=name,
            stream=self.name,
            path=f"{self.vendor}_accounts[{list(self.accounts).index(name)}]",
            settings=self.accounts[name],
            session=Session(),
        )
        account.authenticator = self.new_authenticator(account)
        account.session.auth = account.authenticator  # as the SDK's build_prepared_request sets it
        return account

    def new_authenticator(self, account: A) -> t.Any:
        """The vendor's authenticator of `account` (called once, by open_account)."""
        raise NotImplementedError(f"{type(self).__name__} makes no authenticator")

    @property
    def opened_accounts(self) -> list[A]:
        return list(self._opened.values())

    @property
    def url_base(self) -> str:
        return ""  # every account has its own base URL: see get_url

    def get_url(self, context: Context | None) -> str:
        return self.endpoint_url(self.account(context))

    def endpoint_url(self, account: A) -> str:
        """The account's `api_url` joined with this stream's `path`. Without a path (the
        generic API posts every service to one URL) it is `api_url` exactly: a URL ending in
        `/index.php` must not become `/index.php/`, which the vendor answers with 404."""
        url = str(account.settings["api_url"])
        return url.rstrip("/") + "/" + self.path.lstrip("/") if self.path else url

    # -- the account this thread reads, for the SDK's hooks ------------------------------------
    # The SDK calls some hooks without our context: `requests_session`, `authenticator`,
    # `build_prepared_request`, `parse_response`, paginators (made by
    # `get_new_paginator`) and the retry decorator's handlers. Our code passes the account, but
    # these cannot take it, so the account an account's reader thread reads is kept in one
    # thread-local, set in one place: `_read_account`, where that thread starts. The SDK's paging
    # loop runs in that thread; helper threads (ITNIO's pages asked ahead) only send, through
    # `_request`, which finds the account from the request's context.

    @property
    def reading_account(self) -> A | None:
        """The account this thread reads; None outside an account's reader thread."""
        return getattr(self._reader, "account", None)

    def _reading(self) -> A:
        account = self.reading_account
        assert account is not None, "an SDK hook ran outside an account's reader thread"
        return account

    @property
    def requests_session(self) -> requests.Session:
        """The session of the account this thread reads: accounts never share one (an
        account's page helpers share its keep-alive pool)."""
        account = self.reading_account
        return account.session if account is not None else super().requests_session

    @property
    def authenticator(self) -> t.Any:
        """The authenticator of the account this thread reads."""
        account = self.reading_account
        return account.authenticator if account is not None else super().authenticator

    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """The SDK's hook, for the account this thread reads (see `prepared`)."""
        return self.prepared(self._reading(), *args, **kwargs)

    def prepared(self, account: A, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """A `requests.Request(*args, **kwargs)` as the SDK's build_prepared_request prepares it
        (its User-Agent, the session's defaults and cookies, the authenticator), for `account`."""
        request = requests.Request(*args, **kwargs)
        request.headers.setdefault("User-Agent", self.user_agent)
        return account.session.prepare_request(request)  # the session's auth: its authenticator

    # -- windows and bookmarks ---------------------------------------------------

    @cached_property
    def window_plan(self) -> WindowPlan:
        minutes = dt.timedelta(minutes=1)
        return WindowPlan(
            start_date=parse_instant(self.config["start_date"]),
            lookback=self.config.get("lookback_minutes", 120) * minutes,
            settle_lag=self.config.get("settle_lag_minutes", 5) * minutes,
            size=min(self.window_hours * 60 * minutes, self.max_window),
            horizon=self.vendor_horizon,
        )

    default_window_hours: int = 24  # when `window_hours` is not set

    @property
    def window_hours(self) -> int:
        return int(self.config.get("window_hours") or self.default_window_hours)

    max_window: dt.timedelta = dt.timedelta(days=3660)  # the most one vendor query may span
    vendor_horizon: dt.timedelta | None = None  # how long the vendor keeps calls

    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout_seconds", 60))

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    # -- reading: every account in its own thread, emitted in partition order --------------

    _read_ahead: ReadAhead[t.Any] | None = None

    def record_batches(self, context: Context | None) -> Iterator[Batch]:
        """The account's records, window by window, in the batches the account's thread read
        them in (readahead.py); the bookmark moves after each window."""
        name = self.account(context).name
        if self._read_ahead is None or name not in self._read_ahead.keys:
            self._read_ahead = self._start_reading(context)
        read_ahead = self._read_ahead
        try:
            for item in read_ahead.drain(name):
                if isinstance(item, Window):
                    self.advance_bookmark(context, item)
                else:
                    yield item
        except ACCOUNT_FAILURES as error:
            # One dead PBX must not stop the others: they are read, then the run fails.
            self.failed_accounts[name] = error
        except BaseException:
            read_ahead.cancel()
            raise
        self._fail_if_done(name)

    def _fail_if_done(self, name: str) -> None:
        """After the last account: stop with what went wrong, if anything did."""
        names = [p["account"] for p in self.partitions or []]
        last = not names or name == names[-1]
        if name in self.failed_accounts and not last:
            self.logger.warning(
                "%s account '%s' failed (the error is reported at the end); reading the other accounts first",
                self.name,
                name,
            )
        if not self.failed_accounts or not last:
            return
        counted = f"{len(self.failed_accounts)} of {len(names)} accounts"
        raise_collected(list(self.failed_accounts.values()), AccountsFailedError, counted)

    def _start_reading(self, first: Context | None) -> ReadAhead[t.Any]:
        """Start this account and the ones after it (partition order)."""
        partitions = self.partitions or []
        names = [p["account"] for p in partitions]
        todo = partitions[names.index(first["account"]) :] if first else partitions
        self.failed_accounts = {}
        count = self.row_worker_count(len(todo)) if self.batching else 0
        if count and self.row_workers is None:  # started now: ready when the answers are
            self.row_workers = RowWorkers(count)
        read_ahead: ReadAhead[t.Any] = ReadAhead(workers=int(self.config.get("parallel_accounts", 4)))
        now, plan = self.now(), self.window_plan  # resolved here, not racing in the threads
        interval = float(self.config.get("progress_interval_seconds", DEFAULT_INTERVAL))
        self.progress = {}
        for partition in todo:
            account, bookmark = self.account(partition), self.start_bookmark(partition)
            self.warn_if_beyond_horizon(account, bookmark, now)
            windows = list(plan.windows(bookmark, now))
            self.progress[account.name] = AccountProgress(self.name, account.name, windows, interval)
            produce = functools.partial(self._read_account, account, windows)
            read_ahead.start(partition["account"], produce)
        return read_ahead

    def sync_failed(self, error: Exception) -> bool:
        """A failure that stops this stream goes to the tap, which may go on with its other
        streams and name every failure at the end (`TapCallCDR.stream_failed`)."""
        return isinstance(error, ACCOUNT_FAILURES) and self.tap.stream_failed(self, error)

    def end_sync(self) -> None:
        """The sync's row workers stop (vendors add what their reading holds); each account
        read says how it ended."""
        if self.row_workers is not None:
            self.row_workers.close()
            self.row_workers = None
        self.log_summaries()

    def log_summaries(self) -> None:
        """One line per account read in this sync: records, requests, retries, its bookmark."""
        progress, self.progress = self.progress, {}
        for name, account in progress.items():
            failed = name in self.failed_accounts
            level = logging.WARNING if failed else logging.INFO
            self.logger.log(level, account.summary(self.bookmark_value({"account": name}), failed))

    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> BatchConfig | None:
        """The SDK's; none in a dry run (`--test`), which sends its records as RECORDs: the
        SDK would stop it before writing any batch file, after a STATE covering them."""
        return None if self.ABORT_AT_RECORD_COUNT is not None else super().get_batch_config(config)

    # -- row workers: conversion on several cores (fastpath/rowworkers.py) --------------------

    row_workers: RowWorkers | None = None  # for this sync, when row_worker_count said so
    # A vendor that converts in row workers names its task ("module:function" in its light
    # worker.py) and how its input is cut into jobs; converted_by_workers does the rest.
    row_task: t.ClassVar[str | None] = None
    row_cut: t.ClassVar[Cut | None] = None  # rowworkers.FILE_AT_NEWLINES or ONE_PAGE

    def row_worker_count(self, accounts: int) -> int:
        """Row worker processes for a sync of `accounts` accounts, within `row_worker_limit`
        (as many as the vendor's cut can use); only the batch loop takes what they make."""
        if self.row_task is None or self.row_cut is None or self.calls_tee is not None:
            # Teeing `calls` needs every record as a dict: a worker's encoded lines would be
            # decoded again, which measured as much CPU or more, and slower (docs/calls.md).
            return 0
        at_once = min(int(self.config.get("parallel_accounts", 4)), accounts)
        return self.row_cut.workers_for(self.row_worker_limit(), at_once)

    def row_worker_limit(self) -> int:
        """`row_workers`; by default the core count, or none on one core (a worker there would
        only take turns with the tap)."""
        setting = self.config.get("row_workers")
        if setting is not None:
            return int(setting)
        cores = os.cpu_count() or 1
        return cores if cores > 1 else 0

    def converted_by_workers(
        self, account: A, source: t.Any, encoding: str | None, **fields: t.Any
    ) -> list[EncodedBatch] | None:
        """`source` (what `row_cut` cuts: a spooled file, an answer's body) converted by the
        row workers, `fields` added to each job; None: convert it here (no workers, input
        not worth handing over, or declined)."""
        if self.row_workers is None or self.row_task is None or self.row_cut is None:
            return None
        job = {**self.worker_job(self.row_task, account), **fields}
        return self.row_cut.convert(self.row_workers, job, source, encoding)

    def spool_directory(self) -> Path | None:
        """Where a vendor spools input for the row workers (their directory: a file there is
        handed over without a copy, and removed with them); None when this sync has none."""
        return self.row_workers.directory if self.row_workers is not None else None

    def worker_job(self, task: str, account: A) -> dict[str, t.Any]:
        """What every row worker job of this stream carries: its task, the account and zone,
        and the conformance check to run (the safe path's, or none with trust_record_types)."""
        check = self._conformance
        return {
            "task": task, "account": account.name, "zone": account.zone.key,
            "check": check is not None, "keys": sorted(check.keys) if check else [],
            "usable": check.usable if check else False,
        }  # fmt: skip

    def bookmark(self, context: Context) -> dt.datetime | None:
        """The partition's bookmark from state, or None on its first run (start_date).

        Read without creating the partition's state entry (get_context_state would), so a
        STATE emitted before this account's turn does not list it empty.
        """
        value = self.bookmark_value(context)
        return max(parse_instant(value), self.window_plan.start_date) if value else None

    def bookmark_value(self, context: Context) -> str | None:
        """The partition's bookmark as state holds it (None: none), without creating its entry."""
        return partition_bookmark(self, context)

    def start_bookmark(self, context: Context) -> dt.datetime | None:
        """Where this sync reads the partition's account from: its bookmark, or with `calls`
        teed the earlier of it and `calls`' own (None, start_date, is the earliest)."""
        tee = self.calls_tee
        own = [self.bookmark(context)] if self.selected else []
        marks = own + ([tee.bookmark(context["account"])] if tee is not None else [])
        return None if None in marks or not marks else min(t.cast("list[dt.datetime]", marks))

    # -- the unified `calls`, made of this stream's records (callstream.py) --------------------

    @cached_property
    def calls_tee(self) -> CallsTee | None:
        """What writes this stream's records as `calls` too; None unless `calls` is selected."""
        calls = self.tap.streams.get(CALLS) if self.to_call is not None else None
        return CallsTee(calls, self) if isinstance(calls, CallsStream) and calls.selected else None

    @cached_property
    def record_tee(self) -> t.Callable[[list[Record]], None] | None:  # type: ignore[override]
        tee = self.calls_tee
        return tee.write if tee is not None else None

    def _read_account(self, account: A, windows: list[Window]) -> Iterator[Batch | Window]:
        """Runs in the account's thread: batches of records, then each window it completed;
        progress counted per batch and window, and said when due (progress.py)."""
        self._reader.account = account  # for the SDK's hooks: the one place it is set (see above)
        progress = self.progress[account.name]
        progress.start()
        for window in windows:
            self.logger.debug("Reading %s for account %s", window, account.name)
            progress.reading = window
            batch: list[Record] = []
            for record in self.records_in_window(account, window):
                # a Window: read completely up to its end, bookmark there; an EncodedBatch:
                # records a worker made; either passes on as it is, after the batch before it
                if isinstance(record, Window | EncodedBatch):
                    if batch:
                        yield self._counted(progress, batch)
                        batch = []
                    if isinstance(record, Window):
                        progress.reached(record.end)
                        self._say_progress(progress, window_end=True)
                        yield record
                    else:
                        yield self._counted(progress, record)
                    continue
                batch.append(record)
                if len(batch) == BATCH_RECORDS:
                    yield self._counted(progress, batch)
                    batch = []
            if batch:
                yield self._counted(progress, batch)
            progress.window_done(window)
            self._say_progress(progress, window_end=True)
            yield window
        account.session.close()  # read: its sockets go (1,000 accounts kept 2,000 to the end)

    def _counted(self, progress: AccountProgress, batch: Batch) -> Batch:
        """`batch`, counted in the account's progress (said when due)."""
        progress.records += batch.count if isinstance(batch, EncodedBatch) else len(batch)
        self._say_progress(progress, window_end=False)
        return batch

    def _say_progress(self, progress: AccountProgress, *, window_end: bool) -> None:
        line = progress.due(window_end=window_end)
        if line is not None:
            self.logger.info(line)

    def warn_if_beyond_horizon(self, account: A, bookmark: dt.datetime | None, now: dt.datetime) -> None:
        plan = self.window_plan
        if plan.horizon is None:
            return
        wanted = max((bookmark or plan.start_date) - plan.lookback, plan.start_date)
        oldest = plan.horizon_start(now)
        if wanted < oldest:
            self.logger.warning(
                "%s account '%s': the vendor keeps calls only since %s; calls between %s and "
                "then are gone from the vendor and cannot be extracted",
                self.name,
                account.name,
                iso_utc(oldest),
                iso_utc(wanted),
            )

    def records_in_window(self, account: A, window: Window) -> Iterator[WindowItem]:
        """Every record of one window of `account` (see WindowItem); the SDK's paginated
        request loop by default."""
        yield from self.requested_records(account, window)

    def window_of(self, context: Context | None) -> tuple[A, Window]:
        """The account and window a request of the SDK's paging loop is for (`requested_records`
        puts the window in the context), e.g. in `prepare_request_payload`."""
        assert context is not None and WINDOW_KEY in context, "a request outside a window"
        return self.account(context), context[WINDOW_KEY]

    def requested_records(self, account: A, window: Window) -> Iterable[Record]:
        """The SDK's paginated request loop over one window of `account` (the window rides in
        the context; in the account's reader thread, whose account the SDK's hooks use)."""
        return self.request_records({**account.context, WINDOW_KEY: window})

    def advance_bookmark(self, context: Context | None, window: Window) -> None:
        """The window was read completely: move the bookmark to its end and say so (and
        `calls`' of this stream and account, when teed)."""
        assert context is not None, "CDR streams always run per account"
        new, tee = iso_utc(window.end), self.calls_tee
        if tee is not None:
            tee.advance(context["account"], new)
            if not self.selected:  # read only for `calls`: no BATCH of ours to wait for
                tee.state_due()
                self.mark_state_unflushed()  # the tap's STATE, written through this stream
                self.state_after_window()
                return
        state = self.get_context_state(context)
        move_bookmark(state, t.cast("str", self.replication_key), new)
        self.finalize_partition_state(state)  # a STATE is due (after the window's records)
        if not self.get_batch_config(self.config):  # batch mode: the SDK emits the STATE after
            self.state_after_window()  # the BATCH message holding the window's records

    _windows_unstated = 0  # windows read completely since the last window's STATE

    def state_after_window(self) -> None:
        """The STATE after a window, or later: see STATE_ACCOUNTS_PER_WINDOW (until it is
        written, the one due stays due: the next one, or the stream's last, covers it)."""
        self._windows_unstated += 1
        listed = sum(len(s.get("partitions") or ()) for s in self.tap_state.get("bookmarks", {}).values())
        if self._windows_unstated * STATE_ACCOUNTS_PER_WINDOW >= listed:
            self._windows_unstated = 0
            self.write_state_message()

    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        """The SDK's stream log, but its paging loop's line at each window's end ("Pagination
        stopped after 0 pages ...") is DEBUG: one a window, an empty one too, it drowned the
        progress lines (progress.py), which say where each account is."""
        if message.startswith("Pagination stopped"):
            level = min(level, logging.DEBUG)
        super().log(message, *args, level=level, **kwargs)

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: windows already stop at now minus the settle lag."""
        return None

    # -- records -----------------------------------------------------------------------------

    def convert_field(
        self, row: Mapping[str, t.Any], name: str, convert: t.Callable[[t.Any], t.Any], account: A
    ) -> t.Any:
        """One vendor field through `convert`; a bad value stops with one line naming it."""
        value = row.get(name)
        try:
            return convert(value)
        except (TypeError, ValueError, ArithmeticError):
            raise MalformedResponseError(
                account.describe(f"{self.record_label(row)}: field '{name}' has {value!r}")
            ) from None

    def built(
        self, build: t.Callable[..., dict[str, t.Any]], row: Mapping[str, t.Any], account: A,
        converters: FieldConverters,
    ) -> dict[str, t.Any]:  # fmt: skip
        """`build(row, account name, converters)`, a vendor's record builder, its refusals as
        one line naming the account and the field."""
        try:
            return build(row, account.name, converters)
        except RowError as error:
            raise MalformedResponseError(account.describe(str(error))) from None
        except CONVERSION_ERRORS:
            self.convert_fields(row, converters, account)  # finds the field, names it in the error
            raise

    def convert_fields(
        self, row: Mapping[str, t.Any], converters: FieldConverters, account: A
    ) -> dict[str, t.Any]:
        """Every field through its converter in one pass (no per-field try: this runs for
        every record); a bad value is then found field by field so the error names it."""
        try:
            return converters(row)
        except CONVERSION_ERRORS:
            for name, convert in converters.items():
                self.convert_field(row, name, convert, account)
            raise

    def record_label(self, row: Mapping[str, t.Any]) -> str:
        """How an error message names a record: by the vendor's id (the key after account)."""
        key = self.primary_keys[-1]
        return f"record {key} {row.get(key)!r}"

    # -- error policy ----------------------------------------------------------------

    def check_response(self, response: requests.Response, account: A) -> None:
        """The HTTP-level policy for an answer to `account` (vendors add their envelope's)."""
        status = response.status_code
        if status in URL_STATUSES:  # before the 5xx retries: 501 is no fault to wait out
            hint = url_hint(account.setting("api_url"))
            raise VendorError(account.describe(f"HTTP {status} {response.reason}: {hint}"))
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(account.describe(f"HTTP {status} {response.reason}"), response)
        if 400 <= status < 500:
            raise FatalAPIError(account.describe(f"HTTP {status} {response.reason}: {response.text}"))

    def describe(self, cause: str) -> str:
        """One line naming the stream, the account this thread reads, and the cause: for the
        SDK's hooks (parse_response, paginators, retries); code given the account uses its own."""
        account = self.reading_account
        return described(self.name, account.name if account is not None else "?", cause)

    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """The SDK's retry policy (its exceptions, waits, tries and handler), with backoff's
        own "Backing off" and "Giving up" lines off: `backoff_handler` says everything once, as a WARNING."""
        return backoff.on_exception(
            self.backoff_wait_generator,
            RETRIED,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            giveup=retries_spent,
            logger=None,
        )(func)

    def retried_alone(self, step: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """`step` under its own retries, inside a retried step of several requests: what it
        gives up with is not retried again by the enclosing step (`retries_spent`), so one
        request's faults cost its own budget, and a failing request costs max_retries, not
        its square."""
        retried = self.request_decorator(step)

        @functools.wraps(step)
        def run(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                return retried(*args, **kwargs)
            except RETRIED as exc:
                exc.retries_spent = True  # type: ignore[union-attr]
                raise

        return run

    def send_request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """The SDK's one attempt (0.54), but an attempt that fails once sent is counted too:
        the SDK's paging loop counts only the answers it takes, so METRIC http_request_count
        left out every failed and retried request the vendor saw."""
        account = self.account(context)  # from the context: helper threads send too
        request = account.authenticator(prepared_request)  # a login counts itself (auth.py)
        try:
            with account.network_errors():
                response = account.session.send(
                    request, timeout=self.timeout, allow_redirects=self.allow_redirects
                )
            self.log_request_duration(request, response, context)
            self.check_response(response, account)
        except Exception:
            self.count_failed_request(context)
            raise
        return response

    def get_http_request_counter(self) -> metrics.Counter:
        """The SDK's counter (its METRIC lines as they were), also counting each request in
        its account's progress: every request the METRIC counts, and only those."""
        return CountingRequests(super().get_http_request_counter(), self.count_requests)

    def count_requests(self, context: Context | None, count: int) -> None:
        """`count` requests sent for the account of `context` (else the one this thread reads)."""
        progress = self.progress_of(context)
        if progress is not None:
            progress.count_requests(count)

    def progress_of(self, *hints: t.Any) -> AccountProgress | None:
        """The progress of the account the first of `hints` names (an Account, a context),
        else of the account this thread reads; None outside a sync's reading."""
        for hint in hints:
            if isinstance(hint, Account):
                return self.progress.get(hint.name)
            if isinstance(hint, Mapping) and "account" in hint:
                return self.progress.get(str(hint["account"]))
        account = self.reading_account
        return self.progress.get(account.name) if account is not None else None

    def count_failed_request(self, context: Context | None) -> None:
        with self.get_http_request_counter() as counter:  # logged at once: failures are rare
            counter.with_context(context)
            counter.increment()

    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries", 5)) + 1

    retry_random: random.Random = random.Random()  # tests put a seeded one on the stream

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Exponential waits with "equal jitter", at most `retry_max_wait_seconds` each.

        Equal jitter (half the step fixed, half random) rather than full or decorrelated
        jitter: accounts that failed together (one vendor host, several threads) retry
        spread out, yet even the first retry waits at least half of `retry_wait_seconds`,
        so a flapping vendor gets breathing room; and every wait stays within its step, so
        the ceiling bounds it. A Retry-After the vendor sent is waited in full up to the
        ceiling (never cut by jitter). A rejected token is retried at once (a new login).
        """
        first = float(self.config.get("retry_wait_seconds", 2.0))
        ceiling = float(self.config.get("retry_max_wait_seconds", DEFAULT_RETRY_CEILING))
        draw = self.retry_random.random

        def waits() -> t.Generator[float, t.Any, None]:
            exc = yield 0.0  # primed by backoff
            step = min(first, ceiling)
            while True:
                wait = 0.0 if isinstance(exc, TokenRejectedError) else step / 2 * (1 + draw())
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    wait = max(wait, min(retry_after, ceiling))
                step = min(step * 2, ceiling)
                exc = yield wait

        return waits()

    def backoff_jitter(self, value: float) -> float:
        return value  # jittered in backoff_wait_generator, where Retry-After is known

    def backoff_handler(self, details: t.Any) -> None:
        """One WARNING per retry: the cause (it names the stream and account), which retry
        of how many, and the wait; counted in the account's progress."""
        exc = details.get("exception")
        # the account: in the retried call's arguments (a request's context, an Account), else
        # the one this thread reads
        progress = self.progress_of(*details.get("args", ()))
        if progress is not None:
            progress.count_retry()
        cause = one_line(str(exc) or type(exc).__name__)
        if not cause.startswith(f"{self.name} account '"):  # not named yet (ours all are)
            cause = self.describe(cause)
        self.logger.warning(
            "Retrying in %.2f s (retry %d of %d): %s",
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.backoff_max_tries() - 1,
            cause,
        )


class CountingRequests(metrics.Counter):
    """A copy of the SDK's request counter (the same metric, tags and METRIC lines) that also
    hands each increment, with the counter's context, to `count`."""

    def __init__(self, sdk: metrics.Counter, count: t.Callable[[Context | None, int], None]) -> None:
        super().__init__(sdk.metric, dict(sdk.tags), log_interval=sdk.log_interval)
        self.tally = count  # not `_count`: a `_` name on an SDK class reads as its internal

    def increment(self, value: int = 1) -> None:
        super().increment(value)
        self.tally(self.context, value)


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None


def retries_spent(exc: BaseException) -> bool:
    """A failure whose own retries are over (`retried_alone`): not retried again."""
    return getattr(exc, "retries_spent", False)


install_log_scrubbing()
