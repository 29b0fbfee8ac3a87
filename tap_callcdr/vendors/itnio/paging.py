"""Paging with `current` from 1 up to `pages`."""

from __future__ import annotations

import typing as t
from collections.abc import Callable

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_callcdr.core.errors import PaginationError
from tap_callcdr.vendors.itnio import envelope


class ItnioPaginator(BaseAPIPaginator[int]):
    """Stops on the last page; fails loudly when paging would silently lose records.

    Loud cases: a page served under another number or repeating the previous page, an
    empty page before the last, and fewer records in all than the vendor's `total`.
    """

    def __init__(self, describe: Callable[[str], str]) -> None:
        super().__init__(1)
        self.describe = describe
        self._previous_ids: list[t.Any] | None = None
        self._served = 0

    def has_more(self, response: requests.Response) -> bool:
        data = self._data(response)
        records = data["records"]
        self._check_page(data, records)
        self._served += len(records)
        if self.current_value < data["pages"]:
            return True
        self._check_complete(data)
        return False

    def get_next(self, response: requests.Response) -> int:
        return self.current_value + 1

    def continue_if_empty(self, response: requests.Response) -> bool:
        """An empty page ends the window only if the vendor's counts agree it is the end."""
        data = self._data(response)
        self._check_page(data, [])
        if self.current_value < data["pages"]:
            raise PaginationError(
                self.describe(f"page {self.current_value} of {data['pages']} came back empty")
            )
        self._check_complete(data)
        return False

    def _data(self, response: requests.Response) -> dict[str, t.Any]:
        return t.cast("dict[str, t.Any]", envelope.payload(response, self.describe)["data"])

    def _check_page(self, data: dict[str, t.Any], records: list[dict]) -> None:
        if data["current"] != self.current_value:
            raise PaginationError(
                self.describe(
                    f"asked for page {self.current_value}, vendor served page {data['current']}"
                )
            )
        ids = [record.get("voiceId") for record in records]
        if ids and ids == self._previous_ids:
            raise PaginationError(
                self.describe(f"page {self.current_value} repeats the previous page")
            )
        self._previous_ids = ids

    def _check_complete(self, data: dict[str, t.Any]) -> None:
        if self._served < data["total"]:
            raise PaginationError(
                self.describe(
                    f"vendor counts {data['total']} records in the window but served "
                    f"{self._served} over {data['pages']} pages"
                )
            )
