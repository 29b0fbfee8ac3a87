"""The session keeps the environment's proxy settings per host, and still obeys them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts

from tap_callcdr.fastpath import session as session_module
from tap_callcdr.fastpath.session import Session


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(demo_accounts(["hq"], calls=5, days=1)) as simulator:
        yield simulator


def get(session: requests.Session, url: str) -> requests.Response:
    return session.send(session.prepare_request(requests.Request("GET", url)), timeout=10)


def test_proxies_are_resolved_once_per_host(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = session_module.resolve_proxies

    def counting(request: requests.PreparedRequest, *args: object) -> dict[str, str]:
        calls.append(str(request.url))
        return real(request, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(session_module, "resolve_proxies", counting)
    session = Session()
    for _ in range(5):
        assert get(session, f"{sim.url}/_control/requests").status_code == 200
    assert len(calls) == 1


def test_an_http_proxy_from_the_environment_is_still_used(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(requests.exceptions.ProxyError):
        get(Session(), f"{sim.url}/_control/requests")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert get(Session(), f"{sim.url}/_control/requests").status_code == 200
