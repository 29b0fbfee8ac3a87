"""Fault injection shared by every simulated vendor.

A fault targets one vendor (or ``"*"``) and a request kind: vendor *data* requests by default, so
a tap's login is not what trips the fault unless ``applies_to="login"`` or ``"any"`` is asked for.
``service`` targets one request type instead, by the name the request log gives it (a vendor's
``describe()``: e.g. ``cdr/get_random`` or ``cdr/download`` at Yeastar, ``recordSipQuery`` at ITNIO,
``App.Sip_Auth.Login`` at the generic vendor); it then replaces ``applies_to``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = frozenset(
    {
        "http_500",
        "http_502",
        "http_429",
        "slow",
        "truncate",  # half the body sent under the full Content-Length: the client sees the cut
        "cut",  # framed truncation: the body cut inside its value, Content-Length matching the cut
        "empty",  # the vendor's status and headers with an empty body (Content-Length: 0)
        "malformed",
        "expire_tokens",
        "vendor_error",
        "repeat_page",  # serve page 1's records under the requested page number
        "late_calls",  # n calls that started `minutes` ago show up only now, in every account
    }
)
APPLIES_TO = frozenset({"data", "login", "any"})
# The fault mix draws from the faults a tap must ride out by retrying: not the data behaviours
# (repeat_page, late_calls), which a test sets up on purpose.
MIX_KINDS = (
    "http_500",
    "http_502",
    "http_429",
    "slow",
    "truncate",
    "cut",
    "empty",
    "malformed",
    "expire_tokens",
    "vendor_error",  # one of the vendor's documented "try again" codes
)
MIX_PARAMS: dict[str, dict[str, Any]] = {  # defaults: quick to ride out
    "http_429": {"retry_after": 1},
    "slow": {"seconds": 2},
}


@dataclass
class Fault:
    """``times`` < 0 means every matching request from then on."""

    kind: str
    vendor: str = "generic"
    times: int = 1
    after: int = 0
    applies_to: str = "data"
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0
    service: str = ""  # when set: only requests of this service, whatever applies_to says
    account: str = ""  # when set: only requests for this account (by their credentials)

    def matches(self, vendor: str, kind: str, service: str = "", account: str = "") -> bool:
        if self.vendor not in ("*", vendor) or self.account not in ("", account):
            return False
        if self.service:
            return self.service == service
        return self.applies_to in ("any", kind)

    @property
    def exhausted(self) -> bool:
        return 0 <= self.times <= self.fired

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """Thread-safe ordered list of faults; at most one fault is applied per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._mix: FaultMix | None = None

    def add(
        self,
        kind: str,
        vendor: str = "generic",
        times: int = 1,
        after: int = 0,
        applies_to: str = "data",
        service: str = "",
        account: str = "",
        **params: Any,
    ) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        if applies_to not in APPLIES_TO:
            raise ValueError(f"applies_to must be one of {sorted(APPLIES_TO)}")
        if kind == "vendor_error" and "code" not in params:
            raise ValueError("vendor_error needs a code, e.g. code=1001")
        fault = Fault(kind, vendor, int(times), int(after), applies_to, params)
        fault.service, fault.account = str(service), str(account)
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: str) -> Fault:
        """Add from the CLI form ``kind:key=value,key=value``."""
        return self.add(**parse_spec(spec))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, vendor: str, kind: str, service: str = "", account: str = "") -> Fault | None:
        """Count this request against every matching fault; return the one to apply, if any."""
        chosen = None
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(vendor, kind, service, account):
                    continue
                fault.seen += 1
                if chosen is None and fault.seen > fault.after:
                    fault.fired += 1
                    chosen = fault
            self._faults = [f for f in self._faults if not f.exhausted]
        return chosen

    # ---- the probabilistic mix ----------------------------------------------------------------

    def set_mix(self, rate: float, seed: int | None = None, **options: Any) -> FaultMix:
        """Turn on the mix (replacing any): see :class:`FaultMix`; a missing seed is drawn."""
        mix = FaultMix(float(rate), random.randrange(2**31) if seed is None else int(seed), **options)
        with self._lock:
            self._mix = mix
        return mix

    def clear_mix(self) -> None:
        with self._lock:
            self._mix = None

    def mix(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._mix is None else self._mix.to_dict()

    def draw(self, vendor: str, kind: str, transient_codes: tuple[int, ...]) -> Fault | None:
        """The mix's fault for this request, if it fires (call when `take` gave none)."""
        with self._lock:
            return None if self._mix is None else self._mix.draw(vendor, kind, transient_codes)


@dataclass
class FaultMix:
    """On each matching request, with probability ``rate``, one fault drawn evenly from
    ``kinds``. One seeded RNG draws them all, so a failure can be replayed from its seed (the
    draws are in request order, which a tap's threads can vary)."""

    rate: float
    seed: int
    kinds: list[str] = field(default_factory=lambda: list(MIX_KINDS))
    vendor: str = "*"
    applies_to: str = "any"
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per kind, over MIX_PARAMS
    seen: int = 0
    fired: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate must be within 0..1, not {self.rate}")
        unknown = set(self.kinds) - KINDS
        if unknown or not self.kinds:
            raise ValueError(f"fault mix kinds {sorted(unknown)} unknown; choose from {sorted(KINDS)}")
        if self.applies_to not in APPLIES_TO:
            raise ValueError(f"applies_to must be one of {sorted(APPLIES_TO)}")
        self._rng = random.Random(self.seed)

    def draw(self, vendor: str, kind: str, transient_codes: tuple[int, ...]) -> Fault | None:
        if not Fault("mix", self.vendor, applies_to=self.applies_to).matches(vendor, kind):
            return None
        self.seen += 1
        if self._rng.random() >= self.rate:
            return None
        chosen = self._rng.choice(self.kinds)
        params = {**MIX_PARAMS.get(chosen, {}), **self.params.get(chosen, {})}
        if chosen == "vendor_error":
            if not transient_codes:  # this vendor documents no "try again" code
                return None
            params.setdefault("code", self._rng.choice(transient_codes))
        self.fired[chosen] = self.fired.get(chosen, 0) + 1
        return Fault(chosen, vendor, times=1, applies_to=kind, params=params, seen=1, fired=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_spec(spec: str) -> dict[str, Any]:
    """``"http_429:times=2,retry_after=3"`` -> ``{"kind": "http_429", "times": 2, ...}``."""
    kind, _, rest = spec.partition(":")
    out: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad fault option {item!r} in {spec!r}; expected key=value")
        out[key.strip()] = _scalar(value.strip())
    return out


def _scalar(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
