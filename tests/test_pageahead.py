"""PagesAhead (fastpath/pageahead.py): a window's pages handed on in order, the ones asked
ahead by helper threads that read as the account, as the thread asking page 1 does."""

from __future__ import annotations

import threading
import typing as t

from tap_callcdr.fastpath.pageahead import PagesAhead


class Reader:
    """The account a thread reads as, kept per thread as CDRStream keeps it."""

    def __init__(self) -> None:
        self._thread = threading.local()

    @property
    def current_account(self) -> str:
        return getattr(self._thread, "account", "?")

    @current_account.setter
    def current_account(self, name: str) -> None:
        self._thread.account = name


def test_pages_come_in_order_and_helpers_read_as_the_account() -> None:
    reader = Reader()
    reader.current_account = "latam"  # the account's own thread (here, this one)
    asked: list[tuple[int, str, str]] = []

    def fetch(page: int) -> t.Any:
        asked.append((page, reader.current_account, threading.current_thread().name))
        return page

    pages = PagesAhead(reader, "latam", in_flight=3)
    try:
        answers = pages.responses(fetch, lambda first: 6)
        got = [next(answers) for _ in range(8)]  # page 1 says 6; 7 and 8 one by one after them
        answers.close()
    finally:
        pages.close()
    assert got == list(range(1, 9))
    assert sorted(page for page, _, _ in asked) == got  # each page asked once
    helpers = {page for page, _, thread in asked if thread.startswith("pages-latam")}
    assert helpers == set(range(2, 7)), "pages 2..6 are asked ahead, the rest by the reader"
    assert {account for _, account, _ in asked} == {"latam"}, "a helper read as another account"
