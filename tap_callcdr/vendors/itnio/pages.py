"""A window's pages asked for ahead: once page 1 says how many there are, the next pages
(up to `in_flight` at once) are requested in helper threads while the earlier ones are read.

ITNIO serves 100 records a page, so a busy window is hundreds of requests; one at a time,
each waits for the vendor's answer and then for the tap to read it. Asked ahead, the waits
overlap. Answers are handed on strictly in page order, so the paginator checks each page
exactly as it would have, and the requests are the same ones: only pages page 1 counted are
asked ahead; any beyond them (the count grew) are asked one by one, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor

import requests

Prepare = Callable[[int], requests.PreparedRequest]
Send = Callable[[requests.PreparedRequest], requests.Response]


class PagesAhead:
    """Helper threads of one account (kept for all its windows: their connections stay open)."""

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
        """Page 1's answer, then page 2's, ...; stops when the consumer stops asking. Each
        request is prepared in the consumer's thread; helper threads only send."""
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
