"""The base every vendor stream builds on: accounts as partitions, time windows,
bookmarks per fully-read window, vendor-local times to UTC, and the retry policy."""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import threading
import typing as t
from collections.abc import Iterator, Mapping
from functools import cached_property
from zoneinfo import ZoneInfo

import backoff
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_callcdr.core.errors import (
    URL_STATUSES,
    AccountsFailedError,
    CallCDRError,
    MalformedResponseError,
    TokenRejectedError,
    TransientVendorError,
    VendorError,
    one_line,
    raise_collected,
    url_hint,
)
from tap_callcdr.core.fields import CONVERSION_ERRORS, FieldConverters, RowError
from tap_callcdr.core.fields import as_text as as_text  # re-exported for the vendors
from tap_callcdr.core.fields import to_integer as to_integer  # re-exported for the vendors
from tap_callcdr.core.redact import install as install_log_scrubbing
from tap_callcdr.core.redact import network_cause
from tap_callcdr.core.times import local_to_utc as local_to_utc  # re-exported for the vendors
from tap_callcdr.core.vendor import DEFAULT_ZONE
from tap_callcdr.core.windows import UTC, Window, WindowPlan, iso_utc, parse_instant
from tap_callcdr.fastpath.emitting import BATCH_RECORDS, Batch, EncodedBatch, LeanRecordPath
from tap_callcdr.fastpath.readahead import ReadAhead
from tap_callcdr.fastpath.rowworkers import Cut, RowWorkers
from tap_callcdr.fastpath.sdk import RETRIED
from tap_callcdr.fastpath.session import Session

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callcdr.fastpath.sdk import BatchConfig

WINDOW_KEY = "_window"  # request-context key carrying the window being read
Record = dict[str, t.Any]  # a vendor's row (the SDK's Record): post_process makes the record of it
# What records_in_window yields: records; a Window read completely up to its end (the bookmark
# moves there); records a row worker built and encoded. _read_account passes on the last two.
WindowItem = Record | Window | EncodedBatch
DEFAULT_RETRY_CEILING = 60.0  # seconds: `retry_max_wait_seconds`
ACCOUNT_FAILURES = (CallCDRError, FatalAPIError, RetriableAPIError)  # what stops one account


class CDRStream(LeanRecordPath):
    """A vendor endpoint read account by account, window by window.

    Subclasses name their `vendor` (config key `<vendor>_accounts`) and declare the
    usual name/path/keys/schema; they read one window with `records_in_window`.
    """

    vendor: t.ClassVar[str]
    is_sorted = True  # resumable: our bookmark is a window end, see windows.py

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
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
        return [{"account": name} for name in self.accounts]

    def account(self, context: Context | None) -> Mapping[str, t.Any]:
        assert context is not None, "CDR streams always run per account"
        return self.accounts[context["account"]]

    def account_setting(self, key: str, account: str | None = None) -> str:
        """An account setting's full path, e.g. `yeastar_accounts[0].api_url` (of the account
        this thread reads, by default), for messages that say what to fix."""
        names = list(self.accounts)
        name = account or self.current_account
        index = names.index(name) if name in names else "…"  # outside any account's thread
        return f"{self.vendor}_accounts[{index}].{key}"

    def zone(self, context: Context | None) -> ZoneInfo:
        return self._zones[self.account(context)["name"]]

    @cached_property
    def _zones(self) -> dict[str, ZoneInfo]:
        """Each account's zone, looked up once (post_process asks for it per record)."""
        return {name: account_zone(account) for name, account in self.accounts.items()}

    @property
    def url_base(self) -> str:
        return ""  # every account has its own base URL: see get_url

    def get_url(self, context: Context | None) -> str:
        return self.endpoint_url(self.account(context))

    def endpoint_url(self, account: Mapping[str, t.Any]) -> str:
        """The account's `api_url` joined with this stream's `path`. Without a path (the
        generic API posts every service to one URL) it is `api_url` exactly: a URL ending in
        `/index.php` must not become `/index.php/`, which the vendor answers with 404."""
        url = str(account["api_url"])
        return url.rstrip("/") + "/" + self.path.lstrip("/") if self.path else url

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

    @cached_property
    def _thread_state(self) -> threading.local:
        return threading.local()

    @property
    def current_account(self) -> str:
        """The account this thread is reading (messages, auth and sessions are per account)."""
        return getattr(self._thread_state, "account", "?")

    @current_account.setter
    def current_account(self, name: str) -> None:
        self._thread_state.account = name

    @cached_property
    def _sessions(self) -> dict[str, requests.Session]:
        return {}

    @property
    def requests_session(self) -> requests.Session:
        """One keep-alive session per account: threads never share one."""
        name = self.current_account
        if name not in self._sessions:
            self._sessions[name] = Session()
        return self._sessions[name]

    _read_ahead: ReadAhead[t.Any] | None = None

    def record_batches(self, context: Context | None) -> Iterator[Batch]:
        """The account's records, window by window, in the batches the account's thread read
        them in (readahead.py); the bookmark moves after each window."""
        name = self.current_account = self.account(context)["name"]
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
            self._failures[name] = error
        except BaseException:
            read_ahead.cancel()
            raise
        self._fail_if_done(name)

    _failures: dict[str, Exception]

    def _fail_if_done(self, name: str) -> None:
        """After the last account: stop with what went wrong, if anything did."""
        names = [p["account"] for p in self.partitions or []]
        last = not names or name == names[-1]
        if name in self._failures and not last:
            self.logger.warning(
                "%s account '%s' failed (the error is reported at the end); reading the other accounts first",
                self.name,
                name,
            )
        if not self._failures or not last:
            return
        counted = f"{len(self._failures)} of {len(names)} accounts"
        raise_collected(list(self._failures.values()), AccountsFailedError, counted)

    def _start_reading(self, first: Context | None) -> ReadAhead[t.Any]:
        """Start this account and the ones after it (partition order)."""
        partitions = self.partitions or []
        names = [p["account"] for p in partitions]
        todo = partitions[names.index(first["account"]) :] if first else partitions
        self._failures = {}
        count = self.row_worker_count(len(todo)) if self.batching else 0
        if count and self.row_workers is None:  # started now: ready when the answers are
            self.row_workers = RowWorkers(count)
        read_ahead: ReadAhead[t.Any] = ReadAhead(workers=int(self.config.get("parallel_accounts", 4)))
        now, _ = self.now(), self.window_plan  # resolved here, not racing in the threads
        for partition in todo:
            bookmark = self.bookmark(partition)
            produce = functools.partial(self._read_account, partition, bookmark, now)
            read_ahead.start(partition["account"], produce)
        return read_ahead

    def sync_failed(self, error: Exception) -> bool:
        """A failure that stops this stream goes to the tap, which may go on with its other
        streams and name every failure at the end (`TapCallCDR.stream_failed`)."""
        report = getattr(self.tap, "stream_failed", None)
        return isinstance(error, ACCOUNT_FAILURES) and report is not None and report(self, error)

    def end_sync(self) -> None:
        """The sync's row workers stop (vendors add what their reading holds)."""
        if self.row_workers is not None:
            self.row_workers.close()
            self.row_workers = None

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
        if self.row_task is None or self.row_cut is None:
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
        self, context: Context | None, source: t.Any, encoding: str | None, **fields: t.Any
    ) -> list[EncodedBatch] | None:
        """`source` (what `row_cut` cuts: a spooled file, an answer's body) converted by the
        row workers, `fields` added to each job; None: convert it here (no workers, input
        not worth handing over, or declined)."""
        if self.row_workers is None or self.row_task is None or self.row_cut is None:
            return None
        job = {**self.worker_job(self.row_task, context), **fields}
        return self.row_cut.convert(self.row_workers, job, source, encoding)

    def worker_job(self, task: str, context: Context | None) -> dict[str, t.Any]:
        """What every row worker job of this stream carries: its task, the account and zone,
        and the conformance check to run (the safe path's, or none with trust_record_types)."""
        check = self._conformance
        return {
            "task": task, "account": self.account(context)["name"], "zone": self.zone(context).key,
            "check": check is not None, "keys": sorted(check.keys) if check else [],
            "usable": check.usable if check else False,
        }  # fmt: skip

    def bookmark(self, context: Context) -> dt.datetime | None:
        """The partition's bookmark from state, or None on its first run (start_date).

        Read without creating the partition's state entry (get_context_state would), so a
        STATE emitted before this account's turn does not list it empty.
        """
        partitions = self.stream_state.get("partitions") or []
        state: dict[str, t.Any] = next((p for p in partitions if p.get("context") == dict(context)), {})
        if state.get("replication_key") != self.replication_key:
            return None
        value = state.get("replication_key_value")
        return max(parse_instant(value), self.window_plan.start_date) if value else None

    def _read_account(
        self, context: Context, bookmark: dt.datetime | None, now: dt.datetime
    ) -> Iterator[Batch | Window]:
        """Runs in the account's thread: batches of records, then each window it completed."""
        self.current_account = context["account"]
        self.warn_if_beyond_horizon(bookmark, now)
        for window in self.window_plan.windows(bookmark, now):
            self.logger.debug("Reading %s for account %s", window, self.current_account)
            batch: list[Record] = []
            for record in self.records_in_window(context, window):
                # a Window: read completely up to its end, bookmark there; an EncodedBatch:
                # records a worker made; either passes on as it is, after the batch before it
                if isinstance(record, Window | EncodedBatch):
                    if batch:
                        yield batch
                        batch = []
                    yield record
                    continue
                batch.append(record)
                if len(batch) == BATCH_RECORDS:
                    yield batch
                    batch = []
            if batch:
                yield batch
            yield window

    def warn_if_beyond_horizon(self, bookmark: dt.datetime | None, now: dt.datetime) -> None:
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
                self.current_account,
                iso_utc(oldest),
                iso_utc(wanted),
            )

    def records_in_window(self, context: Context | None, window: Window) -> Iterator[WindowItem]:
        """Every record of one window (see WindowItem); the SDK's paginated request loop by default."""
        yield from self.requested_records(context, window)

    def requested_records(self, context: Context | None, window: Window) -> Iterable[Record]:
        """The SDK's paginated request loop over one window (the window rides in the context)."""
        return self.request_records({**(context or {}), WINDOW_KEY: window})

    def advance_bookmark(self, context: Context | None, window: Window) -> None:
        """The window was read completely: move the bookmark to its end and say so."""
        state = self.get_context_state(context)
        old = state.get("replication_key_value")
        new = iso_utc(window.end)
        if old is None or new > old:
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = new
        if self.get_batch_config(self.config):  # batch mode: the SDK emits the STATE after the
            self.state_manager.finalize_state(state)  # BATCH message holding the window's records
        else:
            self.finalize_state_progress_markers(state)  # emits STATE after the records

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: windows already stop at now minus the settle lag."""
        return None

    # -- records -----------------------------------------------------------------------------

    def convert_field(
        self, row: Mapping[str, t.Any], name: str, convert: t.Callable[[t.Any], t.Any]
    ) -> t.Any:
        """One vendor field through `convert`; a bad value stops with one line naming it."""
        value = row.get(name)
        try:
            return convert(value)
        except (TypeError, ValueError, ArithmeticError):
            raise MalformedResponseError(
                self.describe(f"{self.record_label(row)}: field '{name}' has {value!r}")
            ) from None

    def built(
        self, build: t.Callable[..., dict[str, t.Any]], row: Mapping[str, t.Any], context: Context | None,
        converters: FieldConverters,
    ) -> dict[str, t.Any]:  # fmt: skip
        """`build(row, account, converters)`, a vendor's record builder, its refusals as one
        line naming the account and the field."""
        try:
            return build(row, self.account(context)["name"], converters)
        except RowError as error:
            raise MalformedResponseError(self.describe(str(error))) from None
        except CONVERSION_ERRORS:
            self.convert_fields(row, converters)  # finds the field, names it in the error
            raise

    def convert_fields(self, row: Mapping[str, t.Any], converters: FieldConverters) -> dict[str, t.Any]:
        """Every field through its converter in one pass (no per-field try: this runs for
        every record); a bad value is then found field by field so the error names it."""
        try:
            return converters(row)
        except CONVERSION_ERRORS:
            for name, convert in converters.items():
                self.convert_field(row, name, convert)
            raise

    def record_label(self, row: Mapping[str, t.Any]) -> str:
        """How an error message names a record: by the vendor's id (the key after account)."""
        key = self.primary_keys[-1]
        return f"record {key} {row.get(key)!r}"

    # -- error policy ----------------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in URL_STATUSES:  # before the 5xx retries: 501 is no fault to wait out
            hint = url_hint(self.account_setting("api_url"))
            raise VendorError(self.describe(f"HTTP {status} {response.reason}: {hint}"))
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(self.describe(f"HTTP {status} {response.reason}"), response)
        if 400 <= status < 500:
            raise FatalAPIError(self.describe(f"HTTP {status} {response.reason}: {response.text}"))

    def describe(self, cause: str) -> str:
        """One line naming the stream, the account being read, and the cause."""
        return one_line(f"{self.name} account '{self.current_account}': {cause}")

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
        )(self._transport_errors_named(func))

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

    def _transport_errors_named(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """Network failures stay retriable, but say which account failed, and no URL secret."""

        @functools.wraps(func)
        def send(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                return func(*args, **kwargs)
            except (ConnectionResetError, requests.RequestException) as exc:
                if isinstance(exc, requests.HTTPError):
                    raise
                cause = network_cause(exc, self.account_setting("api_url"))
                raise TransientVendorError(self.describe(cause)) from None

        return send

    def send_request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """The SDK's one attempt (0.54), but an attempt that fails once sent is counted too:
        the SDK's paging loop counts only the answers it takes, so METRIC http_request_count
        left out every failed and retried request the vendor saw."""
        request = self.authenticator(prepared_request)  # a login counts itself (auth.py)
        try:
            response = self.requests_session.send(
                request, timeout=self.timeout, allow_redirects=self.allow_redirects
            )
            self.log_request_duration(request, response, context)
            self.validate_response(response)
        except Exception:
            self.count_failed_request(context)
            raise
        return response

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
        of how many, and the wait."""
        exc = details.get("exception")
        cause = one_line(str(exc) or type(exc).__name__)
        if not cause.startswith(self.describe("")):
            cause = self.describe(cause)
        self.logger.warning(
            "Retrying in %.2f s (retry %d of %d): %s",
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.backoff_max_tries() - 1,
            cause,
        )


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


def account_zone(account: Mapping[str, t.Any]) -> ZoneInfo:
    return ZoneInfo(account.get("timezone") or DEFAULT_ZONE)


install_log_scrubbing()
