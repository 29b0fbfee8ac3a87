"""The `tencent_cdr` stream: `201511v3/getCdr`, one appId (account) at a time.

The API has no paging: an answer that does not hold every call of the range says so
with a non-zero `offset`. A run is therefore one window read as consecutive requests
whose spans `SpanSizer` (paging.py) sizes from the call density seen so far, each at most
`window_hours` long. A cut answer's records are never emitted: its span is asked again,
shorter. Every whole answer's calls are emitted, then the bookmark moves to its end, so
every call lands once and the bookmark never passes a cut.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from functools import cached_property

import requests
from singer_sdk.pagination import SinglePagePaginator

from tap_callcdr.core.account import Account
from tap_callcdr.core.errors import MalformedResponseError, PaginationError
from tap_callcdr.core.stream import CDRStream, WindowItem
from tap_callcdr.core.windows import Window, WindowPlan, iso_utc
from tap_callcdr.vendors.tencent import envelope
from tap_callcdr.vendors.tencent.auth import TencentAppAuthenticator
from tap_callcdr.vendors.tencent.paging import SpanSizer
from tap_callcdr.vendors.tencent.records import build_record, converters, utc_of
from tap_callcdr.vendors.tencent.schema import SCHEMA

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

ONE_SECOND = dt.timedelta(seconds=1)
AppId = Account[TencentAppAuthenticator]  # a Tencent account: one appId


class WindowCut(Exception):
    """Tencent answered only part of the range (`offset` not "0")."""

    def __init__(self, offset: int, served: int) -> None:
        super().__init__(f"offset {offset} after {served} calls")
        self.offset, self.served = offset, served


class TencentCDRStream(CDRStream[AppId]):
    """Call records of Tencent's callback service."""

    vendor = "tencent"
    name = "tencent_cdr"
    path = "/201511v3/getCdr"
    primary_keys = ("account", "callId")
    replication_key = "startSrcCallTime"
    http_method = "POST"
    payload_as_json = True
    schema = SCHEMA

    def new_authenticator(self, account: AppId) -> TencentAppAuthenticator:
        return TencentAppAuthenticator(account)

    def get_new_paginator(self) -> SinglePagePaginator:
        return SinglePagePaginator()

    def prepare_request_payload(self, context: Context | None, next_page_token: t.Any) -> dict[str, str]:
        """Every value a string, as the API demands; credentials come from the authenticator."""
        account, window = self.window_of(context)
        settings = account.settings
        return {
            "src": settings.get("src") or "",  # empty: every caller
            "startTimeStamp": str(int(window.start.timestamp())),
            # The window end itself: right whether Tencent's end is inclusive or exclusive,
            # since calls starting at that second are dropped here (see records_in_window).
            "endTimeStamp": str(int(window.end.timestamp())),
            "compress": "1" if settings.get("compress", True) else "0",
        }

    # -- requests sized to the cap -----------------------------------------------------------

    @cached_property
    def window_plan(self) -> WindowPlan:
        """The whole run is one window: requests are sized inside it (`records_in_window`), so
        no fixed window boundary cuts a request short; `window_hours` bounds each request."""
        plan = super().window_plan
        return dataclasses.replace(plan, size=self.max_window)

    # Requests are sized to the cap anyway: a long bound lets a quiet week take one request.
    default_window_hours = 168

    @property
    def longest_request(self) -> int:
        """The most one request may span, in seconds: `window_hours`."""
        return self.window_hours * 3600

    def records_in_window(self, account: AppId, window: Window) -> Iterator[WindowItem]:
        """The window's calls, request by request; after each whole answer but the last, a
        Window ending where it ended (read completely up to there: the bookmark may move)."""
        sizer = SpanSizer(longest=self.longest_request)
        start, end = _epoch(window.start), _epoch(window.end)
        while start < end:
            stop = sizer.propose(start, end)
            piece = Window(_instant_of(start), _instant_of(stop))
            try:
                rows = list(self.requested_records(account, piece))
            except WindowCut as cut:
                self.note_cut(account, piece, cut)
                sizer.cut(start, stop, cut.served)
                continue
            limit = iso_utc(piece.end)  # a call at the piece's end belongs to the next one
            kept, starts = [], []
            for row in rows:
                when = self.start_of(row, account)
                if when < limit:
                    kept.append(row)
                    starts.append(_epoch(dt.datetime.fromisoformat(when)))
            sizer.whole(start, stop, starts)
            yield from kept
            if stop < end:
                yield Window(window.start, piece.end)
            start = stop

    def note_cut(self, account: AppId, window: Window, cut: WindowCut) -> None:
        """Log the cut (its span is asked again, shorter); a 1-second span cannot shrink."""
        if window.end - window.start <= ONE_SECOND:
            raise PaginationError(
                account.describe(
                    f"Tencent cut its answer for {window} ({cut}) and a window this short cannot be "
                    "split: these calls cannot be read whole; ask Tencent how to fetch them"
                )
            )
        self.logger.info(
            "%s account '%s': Tencent cut its answer for %s (%s); asking for a shorter span",
            self.name,
            account.name,
            window,
            cut,
        )

    # -- HTTP --------------------------------------------------------------------------------

    def check_response(self, response: requests.Response, account: AppId) -> None:
        super().check_response(response, account)  # HTTP-level policy
        body = envelope.payload(response, account.describe)
        envelope.check(body, account.describe)
        envelope.calls(body, account.describe)  # shape checked here, so a bad one is not retried

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        rows, offset = envelope.calls(envelope.payload(response, self.describe), self.describe)
        if offset:
            raise WindowCut(offset, len(rows))  # before any record: the cut answer is dropped
        yield from rows

    def record_label(self, row: t.Mapping[str, t.Any]) -> str:
        return f"call {row.get('callId')!r}"

    # -- records -----------------------------------------------------------------------------

    def start_of(self, row: dict, account: AppId) -> str:
        zone = account.zone
        start = self.convert_field(row, "startSrcCallTime", lambda value: utc_of(value, zone), account)
        if start is None:
            cause = f"call {row.get('callId')!r} has no startSrcCallTime"
            raise MalformedResponseError(account.describe(cause))
        return start

    def post_process(self, row: dict, context: Context | None = None) -> dict:
        """Vendor record -> typed row (records.py): UTC times ("0" = never happened), integer codes."""
        account = self.account(context)
        return self.built(build_record, row, account, converters(account.zone))


def _epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _instant_of(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)
