"""The ITNIO streams: `voice/recordSipQuery` and `voice/recordGroupQuery`, per API key."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import requests

from tap_callcdr.core.account import Account
from tap_callcdr.core.fields import CONVERSION_ERRORS, FieldConverters
from tap_callcdr.core.stream import WINDOW_KEY, CDRStream, WindowItem
from tap_callcdr.core.windows import Window, iso_utc
from tap_callcdr.fastpath import pageahead, rowworkers
from tap_callcdr.fastpath.pageahead import PagesAhead
from tap_callcdr.vendors.itnio import envelope
from tap_callcdr.vendors.itnio.auth import ItnioSignAuthenticator, TimestampExpiredError
from tap_callcdr.vendors.itnio.paging import ItnioPaginator
from tap_callcdr.vendors.itnio.records import build_record, converters, in_window
from tap_callcdr.vendors.itnio.schema import (
    GROUP_DECIMAL_FIELDS,
    GROUP_SCHEMA,
    GROUP_STRING_FIELDS,
    SIP_DECIMAL_FIELDS,
    SIP_SCHEMA,
    SIP_STRING_FIELDS,
    singer_decimal_schema,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

PAGE_SIZE = 100  # the vendor's maximum
PAGES_IN_FLIGHT = 4  # a window's pages asked at once (pageahead.py); an account's pages_in_flight
MAX_RANGE = dt.timedelta(days=31)  # endTime - strTime; the vendor answers -25 beyond it
# "Two months" back from the vendor's now is 59 days at the shortest (March 1 -> January 1);
# a day less leaves room for the vendor counting in its own zone or by whole dates.
HORIZON = dt.timedelta(days=58)


@dataclass(eq=False)
class ApiKey(Account[ItnioSignAuthenticator]):
    """An ITNIO account (one API key), with the helper threads that ask its pages ahead."""

    pages: PagesAhead | None = None  # made on its first window; closed at the end of a sync

    def pages_ahead(self) -> PagesAhead:
        if self.pages is None:
            in_flight = int(self.settings.get("pages_in_flight") or PAGES_IN_FLIGHT)
            self.pages = PagesAhead(in_flight, self.name)
        return self.pages

    def close_pages(self) -> None:
        if self.pages is not None:
            self.pages.close()
            self.pages = None


class ItnioRecordStream(CDRStream[ApiKey]):
    """Records of one ITNIO endpoint, read window by window and page by page."""

    vendor = "itnio"
    default_api_url = "https://api.itniotech.com/voice/"  # white-label resellers set api_url
    primary_keys = ("account", "voiceId")
    replication_key = "callTime"
    http_method = "POST"
    payload_as_json = True
    max_window = MAX_RANGE
    vendor_horizon = HORIZON
    string_fields: t.ClassVar[tuple[str, ...]]
    decimal_fields: t.ClassVar[tuple[str, ...]]
    account_type = ApiKey
    # Row workers convert each answer's page of records (worker.py), one page a job.
    row_task = "tap_callcdr.vendors.itnio.worker:convert_page"
    row_cut = rowworkers.ONE_PAGE

    def __init__(self, tap: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        # use_singer_decimal: money as x-singer.decimal text, for loaders that make numbers floats
        self.money_as_text = bool(tap.config.get("use_singer_decimal"))
        if self.money_as_text:
            self.schema = singer_decimal_schema(type(self).schema, self.decimal_fields)
        super().__init__(tap, *args, **kwargs)

    # -- requests ------------------------------------------------------------------------

    def new_authenticator(self, account: ApiKey) -> ItnioSignAuthenticator:
        return ItnioSignAuthenticator(account, logger=self.logger)

    def get_new_paginator(self) -> ItnioPaginator:
        return ItnioPaginator(self.describe)

    def _answers(self, account: ApiKey, context: Context) -> Iterator[tuple[requests.Response, list[dict]]]:
        """The window's answers, each with its records: the SDK's paging loop with a window's
        pages asked ahead (fastpath/pageahead.py) by the account's helper threads."""

        def pages_of(response: requests.Response) -> int:
            return int(envelope.payload(response, account.describe)["data"]["pages"])

        return pageahead.answers(self, context, account.pages_ahead(), pages_of)

    def end_sync(self) -> None:
        """The sync's page-ahead pools stop first, so that their last requests are in the
        accounts' summaries that the base class then logs."""
        for account in self.opened_accounts:
            account.close_pages()
        super().end_sync()

    def filters(self, account: t.Mapping[str, t.Any]) -> dict[str, str]:
        """Extra `params` of this endpoint besides the time range."""
        return {}

    def prepare_request_payload(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, t.Any]:
        account, window = self.window_of(context)
        zone = account.zone
        # endTime is the window's end itself, not its last second: the doc does not say
        # whether endTime is inclusive, and this loses nothing either way (see below).
        params = {
            "strTime": window.start.astimezone(zone).isoformat(timespec="seconds"),
            "endTime": window.end.astimezone(zone).isoformat(timespec="seconds"),
            **self.filters(account.settings),
        }
        return {"current": next_page_token or 1, "size": PAGE_SIZE, "params": params}

    def records_in_window(self, account: ApiKey, window: Window) -> Iterator[WindowItem]:
        """The window's records; one at exactly its end belongs to the next window.

        The doc does not say whether endTime is inclusive: sent as the window's end and
        filtered here, a boundary record is emitted once either way (as for Tencent).
        """
        utc = self.converters(account.zone)["callTime"]  # as post_process converts it
        end = iso_utc(window.end)  # the same text form: string order is time order
        # endTime as sent: a callTime of its shape and offset is in time order as text too
        sent = window.end.astimezone(account.zone).isoformat(timespec="seconds")
        for response, rows in self._answers(account, {**account.context, WINDOW_KEY: window}):
            converted = self.converted_by_workers(
                account, response.content, response.encoding,
                strings=self.string_fields, decimals=self.decimal_fields, sent=sent, end=end,
                money_as_text=self.money_as_text,
            )  # fmt: skip
            if converted is not None:
                yield from converted  # passed on as they are (_read_account)
                continue
            for row in rows:
                try:
                    if in_window(row, utc, sent, end):
                        yield row
                except CONVERSION_ERRORS:
                    self.convert_field(row, "callTime", utc, account)  # raises, naming the field
                    raise

    # -- answers ---------------------------------------------------------------------------

    def check_response(self, response: requests.Response, account: ApiKey) -> None:
        super().check_response(response, account)  # HTTP-level policy
        try:
            envelope.check(envelope.payload(response, account.describe), account.describe, response.request)
        except TimestampExpiredError as error:
            account.authenticator.timestamp_expired(response, error)
            raise
        account.authenticator.accepted()

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from envelope.payload(response, self.describe)["data"]["records"]

    def converters(self, zone: ZoneInfo) -> FieldConverters:
        """Each field's converter, for an account in `zone` (records.py)."""
        return converters(zone, self.string_fields, self.decimal_fields, self.money_as_text)

    def post_process(self, row: dict, context: Context | None = None) -> dict:
        """Vendor record -> typed row (records.py): UTC times, integers, exact decimals, `account`."""
        account = self.account(context)
        return self.built(build_record, row, account, self.converters(account.zone))


class ItnioSipRecordStream(ItnioRecordStream):
    """Calls of the account's SIP phones (话机记录)."""

    name = "itnio_sip_cdr"
    path = "recordSipQuery"
    schema = SIP_SCHEMA
    string_fields = SIP_STRING_FIELDS
    decimal_fields = SIP_DECIMAL_FIELDS

    def filters(self, account: t.Mapping[str, t.Any]) -> dict[str, str]:
        # Exact-match filters; "" means all (as in the vendor's own examples).
        return {
            "sipGroupName": account.get("sip_group_name") or "",
            "phoneName": account.get("phone_name") or "",
        }


class ItnioGroupRecordStream(ItnioRecordStream):
    """Group-call and verification-code call records (群呼/验证码记录)."""

    name = "itnio_group_cdr"
    path = "recordGroupQuery"
    schema = GROUP_SCHEMA
    string_fields = GROUP_STRING_FIELDS
    decimal_fields = GROUP_DECIMAL_FIELDS
