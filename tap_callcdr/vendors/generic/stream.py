"""The `generic_cdr` stream: `App.Sip_Cdr.GetBill`, one account at a time."""

from __future__ import annotations

import typing as t

import requests

from tap_callcdr.core.account import Account
from tap_callcdr.core.errors import MalformedResponseError, TokenRejectedError
from tap_callcdr.core.stream import CDRStream
from tap_callcdr.vendors.generic import envelope
from tap_callcdr.vendors.generic.auth import GetBillTokenAuthenticator
from tap_callcdr.vendors.generic.paging import GetBillPaginator
from tap_callcdr.vendors.generic.records import build_record, converters
from tap_callcdr.vendors.generic.schema import SCHEMA

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

PAGE_SIZE = 1000  # the vendor's maximum
SERVICE = "App.Sip_Cdr.GetBill"
# syncflag 3 = all records: 1 (the default) returns only never-queried records and
# marks them queried on the server, which would hide them from every other reader.
# callmethod 0 = all: the default 3 silently returns only API-placed calls.
FIXED_FILTERS = {"syncflag": 3, "direction": 3, "callmethod": 0}
GenericAccount = Account[GetBillTokenAuthenticator]


class GenericCDRStream(CDRStream[GenericAccount]):
    """Call records of the generic call-center API."""

    vendor = "generic"
    name = "generic_cdr"
    path = ""
    primary_keys = ("account", "id")
    replication_key = "starttime"
    http_method = "POST"
    payload_as_json = False
    schema = SCHEMA

    def new_authenticator(self, account: GenericAccount) -> GetBillTokenAuthenticator:
        return GetBillTokenAuthenticator(
            account,
            url=self.endpoint_url(account),
            timeout=self.timeout,
            retrying=self.retried_alone,  # a login inside a retried request: not squared
            request_counter=self.get_http_request_counter,
        )

    def get_new_paginator(self) -> GetBillPaginator:
        return GetBillPaginator(PAGE_SIZE, self.describe)

    def prepare_request_payload(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, t.Any]:
        account, window = self.window_of(context)
        zone = account.zone
        return {
            "service": SERVICE,
            "starttime": window.start.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "endtime": window.last_second.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            **FIXED_FILTERS,
            "currentpage": next_page_token or 1,
            "itemsperpage": PAGE_SIZE,
            "extnumber": account.settings.get("extnumber") or "",
            "destnumber": account.settings.get("destnumber") or "",
            "userid": "",
            "memberid": "",
        }

    def check_response(self, response: requests.Response, account: GenericAccount) -> None:
        super().check_response(response, account)  # HTTP-level policy
        try:
            data = envelope.check(envelope.payload(response, account.describe), account.describe)
        except TokenRejectedError as error:
            account.authenticator.rejected(error)
            raise
        if not isinstance(data.get("result"), dict) or "totalitems" not in data["result"]:
            raise MalformedResponseError(account.describe("answer has no result.totalitems"))
        account.authenticator.accepted()

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from envelope.payload(response, self.describe)["data"]["result"].get("bills") or []

    def post_process(self, row: dict, context: Context | None = None) -> dict:
        """Vendor record -> typed row (records.py): UTC times, integers, one name per column."""
        account = self.account(context)
        return self.built(build_record, row, account, converters(account.zone))
