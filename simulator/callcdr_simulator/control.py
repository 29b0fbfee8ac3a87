"""``/_control/...``: ground truth, new calls, faults and the request log over HTTP, so that
scripts (and a tap running in another process) can drive a simulator they did not start."""

from __future__ import annotations

import collections
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .core import HttpRequest, HttpResponse, Vendor, json_response
from .vendors import VENDORS

if TYPE_CHECKING:
    from .server import Simulator

Route = Callable[["Simulator", HttpRequest], Any]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle(sim: Simulator, request: HttpRequest) -> HttpResponse:
    route = ROUTES.get((request.method, request.path.rstrip("/")))
    if route is None:
        return json_response({"error": f"no control route {request.method} {request.path}"}, 404)
    try:
        return json_response(route(sim, request))
    except ControlError as err:
        return json_response({"error": str(err)}, err.status)
    except (KeyError, ValueError, TypeError) as err:
        # a KeyError's str() is its message quoted: give the message itself (which may end
        # in a quoted name, so the quotes cannot be stripped)
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        return json_response({"error": str(message)}, 400)


def _health(sim: Simulator, request: HttpRequest) -> Any:
    return {"ok": True}


def _truth(sim: Simulator, request: HttpRequest) -> Any:
    vendor = sim.vendor(request.query.get("vendor", "generic"))
    account = request.query.get("account") or _only(vendor.accounts())
    if account not in vendor.accounts():
        raise ControlError(404, f"unknown account {account!r}")
    return vendor.truth(account)


def _add_calls(sim: Simulator, request: HttpRequest) -> Any:
    body = request.json() or {}
    vendor = sim.vendor(body.get("vendor", "generic"))
    account = body.get("account") or _only(vendor.accounts())
    end = _moment(body.get("end")) or datetime.now().astimezone()
    start = _moment(body.get("start")) or end
    n = int(body.get("n", 1))
    endpoint = _endpoint(vendor, body)
    if endpoint is None:
        return vendor.add_calls(account, n, start, end)
    return vendor.add_calls(account, n, start, end, endpoint=endpoint)  # type: ignore[call-arg]


def _endpoint(vendor: Vendor, body: dict[str, Any]) -> str | None:
    """The vendor endpoint ``"stream"`` or ``"endpoint"`` asks for (either names either: the
    tap's stream or the vendor's endpoint); None when neither is given (its first, then)."""
    given = {body[key] for key in ("stream", "endpoint") if body.get(key)}
    if given and not vendor.endpoints:
        several = [v.name for v in VENDORS if v.endpoints]
        raise ControlError(400, f'"stream"/"endpoint" is for vendors with several: {several}, '
                           f"not {vendor.name!r}")  # fmt: skip
    names = {**vendor.endpoints, **{e: e for e in vendor.endpoints.values()}}
    chosen = {names.get(str(name)) for name in given}
    if None in chosen or len(chosen) > 1:
        wanted = ", ".join(sorted(map(str, given)))
        raise ControlError(400, f"unknown or conflicting {vendor.name} stream/endpoint ({wanted}): "
                           f"give one of {sorted(names)}")  # fmt: skip
    return chosen.pop() if chosen else None


def _requests(sim: Simulator, request: HttpRequest) -> Any:
    return sim.requests


def _request_counts(sim: Simulator, request: HttpRequest) -> Any:
    """How many requests, by service: what a long benchmark needs, without the whole log."""
    services = collections.Counter(str(entry.get("service")) for entry in sim.requests)
    return {"total": sum(services.values()), "by_service": dict(services)}


def _clear_requests(sim: Simulator, request: HttpRequest) -> Any:
    sim.clear_requests()
    return {"ok": True}


def _faults(sim: Simulator, request: HttpRequest) -> Any:
    return sim.faults.active()


def _add_fault(sim: Simulator, request: HttpRequest) -> Any:
    body = request.json()
    if not isinstance(body, dict) or "kind" not in body:
        raise ControlError(400, 'expected a JSON object with at least "kind"')
    return sim.faults.add(**body).to_dict()


def _clear_faults(sim: Simulator, request: HttpRequest) -> Any:
    sim.faults.clear()
    return {"ok": True}


def _fault_mix(sim: Simulator, request: HttpRequest) -> Any:
    return sim.faults.mix()


def _set_fault_mix(sim: Simulator, request: HttpRequest) -> Any:
    body = request.json()
    if not isinstance(body, dict) or "rate" not in body:
        raise ControlError(400, 'expected a JSON object with at least "rate"')
    return sim.faults.set_mix(**body).to_dict()


def _clear_fault_mix(sim: Simulator, request: HttpRequest) -> Any:
    sim.faults.clear_mix()
    return {"ok": True}


def _only(accounts: list[str]) -> str:
    if len(accounts) != 1:
        raise ControlError(400, f"say which account: one of {accounts}")
    return accounts[0]


def _moment(text: str | None) -> datetime | None:
    """ISO 8601; without an offset it is wall time in the account's zone."""
    return datetime.fromisoformat(text) if text else None


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/_control/health"): _health,
    ("GET", "/_control/truth"): _truth,
    ("POST", "/_control/calls"): _add_calls,
    ("GET", "/_control/requests"): _requests,
    ("GET", "/_control/requests/counts"): _request_counts,
    ("DELETE", "/_control/requests"): _clear_requests,
    ("GET", "/_control/faults"): _faults,
    ("POST", "/_control/faults"): _add_fault,
    ("DELETE", "/_control/faults"): _clear_faults,
    ("GET", "/_control/fault-mix"): _fault_mix,
    ("POST", "/_control/fault-mix"): _set_fault_mix,
    ("DELETE", "/_control/fault-mix"): _clear_fault_mix,
}
