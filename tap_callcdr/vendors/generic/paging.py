"""Paging over `currentpage` / `totalitems`."""

from __future__ import annotations

import typing as t
from collections.abc import Callable

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_callcdr.core.errors import PaginationError
from tap_callcdr.vendors.generic import envelope


class GetBillPaginator(BaseAPIPaginator[int]):
    """Page numbers from 1; stops on the last or an empty page, fails on a repeated page.

    The SDK's PageNumberPaginator only stops on an empty page, which costs one
    request per window more than the vendor's `totalitems` says is needed.
    """

    def __init__(self, page_size: int, describe: Callable[[str], str]) -> None:
        super().__init__(1)
        self.page_size = page_size
        self.describe = describe
        self._previous_ids: list[t.Any] | None = None

    def has_more(self, response: requests.Response) -> bool:
        result = envelope.payload(response, self.describe)["data"]["result"]
        bills = result.get("bills") or []
        self._check_not_repeated(result, bills)
        return bool(bills) and self.current_value * self.page_size < int(result["totalitems"])

    def get_next(self, response: requests.Response) -> int:
        return self.current_value + 1

    def _check_not_repeated(self, result: dict, bills: list[dict]) -> None:
        served = int(result.get("currentpage", self.current_value))
        if served != self.current_value:
            raise PaginationError(
                self.describe(f"asked for page {self.current_value}, vendor served page {served}")
            )
        ids = [bill.get("id") for bill in bills]
        if ids and ids == self._previous_ids:
            raise PaginationError(
                self.describe(f"page {self.current_value} repeats the previous page")
            )
        self._previous_ids = ids
