"""A keep-alive HTTP session that reads proxy settings from the environment once per host.

`requests.Session.send` resolves proxies for every request: it walks the whole process
environment three times (HTTP_PROXY, NO_PROXY, ...), a fifth of the CPU the tap spends on
a page request. The answer depends only on the URL's scheme and host, and on an
environment nobody changes mid-run, so it is kept per (scheme, host).
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import requests
from requests.utils import resolve_proxies


class Session(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._proxies_for: dict[tuple[str, str], dict[str, str]] = {}

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        if "proxies" not in kwargs and request.url:
            parts = urlsplit(request.url)
            key = (parts.scheme, parts.netloc)
            proxies = self._proxies_for.get(key)
            if proxies is None:
                proxies = resolve_proxies(request, dict(self.proxies), self.trust_env)
                self._proxies_for[key] = proxies
            kwargs["proxies"] = proxies
        return super().send(request, **kwargs)
