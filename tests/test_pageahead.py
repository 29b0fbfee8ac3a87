"""PagesAhead (fastpath/pageahead.py): a window's pages handed on in order; pages 2..N are sent
ahead by helper threads, but every request is prepared in the thread reading the account, so a
helper needs to know nothing of the account (CDRStream.send_request finds it in the context)."""

from __future__ import annotations

import threading
import typing as t

from tap_callcdr.fastpath.pageahead import PagesAhead


def test_pages_come_in_order_prepared_by_the_reader_and_sent_ahead_by_helpers() -> None:
    reader = threading.current_thread().name  # the account's own thread (here, this one)
    prepared: list[tuple[int, str]] = []
    sent: list[tuple[int, str]] = []

    def prepare(page: int) -> t.Any:
        prepared.append((page, threading.current_thread().name))
        return page

    def send(request: t.Any) -> t.Any:
        sent.append((request, threading.current_thread().name))
        return request

    pages = PagesAhead(in_flight=3, name="latam")
    try:
        answers = pages.responses(prepare, send, lambda first: 6)
        got = [next(answers) for _ in range(8)]  # page 1 says 6; 7 and 8 one by one after them
        answers.close()
    finally:
        pages.close()
    assert got == list(range(1, 9))
    assert sorted(page for page, _ in sent) == got  # each page sent once
    assert sorted(page for page, _ in prepared) == got  # and prepared once
    assert {thread for _, thread in prepared} == {reader}, "a request was prepared off the reader"
    helpers = {page for page, thread in sent if thread.startswith("pages-latam")}
    assert helpers == set(range(2, 7)), "pages 2..6 are sent ahead, the rest by the reader"
