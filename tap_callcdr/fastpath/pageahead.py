"""Pages asked ahead, for an API that numbers its pages and says on page 1 how many there are:
once page 1 says N, pages 2..N (up to `in_flight` at once) are requested in helper threads
while the earlier ones are read.

A busy window can be hundreds of pages (ITNIO serves 100 records a page); one at a time, each
waits for the vendor's answer and then for the tap to read it. Asked ahead, the waits
overlap. Answers are handed on strictly in page order, so the paginator checks each page
exactly as it would have, and the requests are the same ones: only pages page 1 counted are
asked ahead; any beyond them (the count grew) are asked one by one, as before.
"""

from __future__ import annotations

import contextlib
import typing as t
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

if t.TYPE_CHECKING:
    import logging

    import requests
    from singer_sdk import metrics
    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator

Prepare = Callable[[int], "requests.PreparedRequest"]
Send = Callable[["requests.PreparedRequest"], "requests.Response"]


class PagedStream(t.Protocol):
    """What `answers` uses of a stream: the SDK's public RESTStream members and sdk.py's
    `send_request`. The core's CDRStream is one; fastpath imports no core (test_layout.py)."""

    @property
    def logger(self) -> logging.Logger: ...

    def get_new_paginator(self) -> BaseAPIPaginator[t.Any] | None: ...

    def request_decorator(self, func: Callable[..., t.Any]) -> Callable[..., t.Any]: ...

    def send_request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response: ...

    def prepare_request(
        self, context: Context | None, next_page_token: t.Any
    ) -> requests.PreparedRequest: ...

    def get_http_request_counter(self) -> metrics.Counter: ...

    def update_sync_costs(
        self, request: requests.PreparedRequest, response: requests.Response, context: Context | None
    ) -> dict[str, int]: ...

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]: ...


class PagesAhead:
    """Helper threads of one account, kept for all its windows (their connections stay open).
    Requests are prepared in the thread reading the account; helpers only send them, so they
    need to know nothing of the account (the request's context names it)."""

    def __init__(self, in_flight: int, name: str) -> None:
        self.in_flight = max(1, in_flight)
        self._pool = (
            ThreadPoolExecutor(self.in_flight, thread_name_prefix=f"pages-{name}")
            if self.in_flight > 1
            else None
        )

    def responses(
        self, prepare: Prepare, send: Send, pages_of: Callable[[requests.Response], int]
    ) -> Generator[requests.Response, None, None]:
        """Page 1's answer, then page 2's, ...; stops when the consumer stops asking."""
        first = send(prepare(1))
        yield first
        counted = pages_of(first)
        ahead: deque[Future[requests.Response]] = deque()
        page = 2
        try:
            while True:
                while self._pool is not None and page <= counted and len(ahead) < self.in_flight:
                    ahead.append(self._pool.submit(send, prepare(page)))
                    page += 1
                if ahead:
                    yield ahead.popleft().result()
                else:
                    yield send(prepare(page))  # past the counted pages (or no helpers): one by one
                    page += 1
        finally:
            for future in ahead:  # the consumer stopped: what has not started never will
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def answers(
    stream: PagedStream,
    context: Context | None,
    pages: PagesAhead,
    pages_of: Callable[[requests.Response], int],
) -> Iterator[tuple[requests.Response, list[dict]]]:
    """The SDK's paging loop (RESTStream.request_records, 0.54) over answers asked ahead: the
    same requests (the public `prepare_request`, sent by the stream's `send_request` under its retry
    policy), counted and checked in the same order; each answer with its records.
    `pages_of`: the page count page 1's answer gives."""
    paginator = stream.get_new_paginator()
    assert paginator is not None, "pages ahead need the stream's paginator"
    send = stream.request_decorator(stream.send_request)

    def prepare(page: int) -> requests.PreparedRequest:
        return stream.prepare_request(context, page)

    def fetch(request: requests.PreparedRequest) -> requests.Response:
        return t.cast("requests.Response", send(request, context))

    responses = pages.responses(prepare, fetch, pages_of)
    with stream.get_http_request_counter() as counter, contextlib.closing(responses):
        counter.with_context(context)
        for response in responses:
            counter.increment()
            stream.update_sync_costs(response.request, response, context)
            records = list(stream.parse_response(response))
            if not records and not paginator.continue_if_empty(response):
                # the last page, empty (continue_if_empty raises if it is not); DEBUG as the
                # SDK's line is for our streams (CDRStream.log): one a window is noise
                stream.logger.debug("Pagination stopped: page %s is empty", paginator.current_value)
                break
            yield response, records
            paginator.advance(response)
            if paginator.finished:
                break
