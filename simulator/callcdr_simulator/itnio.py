"""The ITNIO voice API: ``voice/recordSipQuery`` and ``voice/recordGroupQuery`` (JSON POST).

Behaviour follows /work/shared/vendor-docs/itnio-record-sip-query.md. What the doc leaves open
is settled here (and in docs/vendors.md):

- every request carries ``Api-Key``, ``Timestamp`` (epoch seconds) and ``Sign`` = lowercase
  md5(apiKey + apiSecret + Timestamp); a missing header, unknown key or wrong sign is -1, a
  Timestamp more than ``timestamp_tolerance`` seconds off the vendor's clock is -16;
- ``strTime``/``endTime`` are ISO 8601 with an offset and both bounds are inclusive on
  ``callTime``; ``endTime - strTime`` over 31 days, or a ``strTime`` before "two months ago"
  (calendar months, in the vendor's Asia/Shanghai clock), is -25; calls older than that are gone;
- ``current`` defaults to 1 and ``size`` to 10 (max 100); anything malformed is -22;
- the shared ``expire_tokens`` fault answers -16 (ITNIO has no tokens; an expired signature
  timestamp is its nearest kin); ``vendor_error`` takes the doc's codes (-1, -2, -16, -18 ...).
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import hmac
import json
import random
import re
import threading
import time
from argparse import Namespace
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from . import data
from .core import HttpRequest, HttpResponse, RequestInfo, Vendor, json_response

SIP = "recordSipQuery"
GROUP = "recordGroupQuery"
ENDPOINTS = (SIP, GROUP)
PREFIX = "/itnio/voice/"
HEADERS = ("Api-Key", "Timestamp", "Sign")
REASONS: dict[int, str] = {
    0: "success",
    -1: "账号认证异常",
    -2: "ip限制",
    -16: "时间戳过期",
    -18: "系统异常",
    -22: "参数异常",
    -25: "超出时间范围限制",
}
MAX_RANGE = timedelta(days=31)
HORIZON_MONTHS = 2
VENDOR_ZONE = ZoneInfo("Asia/Shanghai")  # the vendor's own clock, for "two months ago"
DEFAULT_TOLERANCE = 300  # seconds of clock difference a signature may have
DEFAULT_SIZE, MAX_SIZE = 10, 100
ISO_OFFSET_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
RECENT_CALLS = 3  # calls in the last minutes before the anchor (settle-lag material)

# (operator label as the vendor writes it, dialling code, per-minute rate in EUR)
DESTINATIONS = [
    ("India(Airtel)", "91", "0.0085"),
    ("Indonesia(Telkomsel)", "62", "0.0210"),
    ("Philippines(Globe)", "63", "0.0450"),
    ("Brazil(Vivo)", "55", "0.0125"),
    ("Mexico(Telcel)", "52", "0.0098"),
    ("Afghanistan(Kandahar)", "93", "0.1850"),
    ("Nigeria(MTN)", "234", "0.0620"),
]
FAILURES = [("1001", "no answer"), ("1002", "busy"), ("1003", "rejected")]
INVALID = ("1004", "invalid number")  # never rings


class ItnioError(Exception):
    def __init__(self, status: int, reason: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason or REASONS.get(status, "error")

    def response(self) -> HttpResponse:
        return envelope(self.status, None, self.reason)


def envelope(status: int, payload: dict[str, Any] | None, reason: str) -> HttpResponse:
    """Status travels as a string; errors carry ``data: null``."""
    return json_response({"status": str(status), "reason": reason, "data": payload})


@dataclass
class ItnioAccount:
    name: str
    api_key: str
    api_secret: str
    timezone: str = "Asia/Shanghai"  # the offset the vendor writes this account's times with
    calls: int = 300  # SIP phone records
    group_calls: int = 100  # group-call and verification-code records
    days: int = 7
    seed: int = 1
    currency: str = "EUR"  # the doc: set only when the quote currency is not USD
    ip_whitelist: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail fast on a bad zone name

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ItnioAccount:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown itnio account keys: {sorted(unknown)}")
        return cls(**raw)


def itnio_demo_accounts(
    names: tuple[str, ...] | list[str] = ("intl", "latam"), **overrides: Any
) -> list[ItnioAccount]:
    """Demo accounts with predictable credentials, e.g. ``intl-apikey`` / ``intl-secret-S3cr3t``."""
    return [
        ItnioAccount(name, f"{name}-apikey", f"{name}-secret-S3cr3t", **overrides)
        for name in names
    ]


def sign(api_key: str, api_secret: str, timestamp: str) -> str:
    return hashlib.md5((api_key + api_secret + timestamp).encode()).hexdigest()


def horizon_start(now: datetime) -> datetime:
    """The oldest call time the vendor still serves: two calendar months back, its own clock."""
    local = now.astimezone(VENDOR_ZONE)
    years, month0 = divmod(local.month - 1 - HORIZON_MONTHS, 12)
    year, month = local.year + years, month0 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


@dataclass(frozen=True)
class Query:
    current: int
    size: int
    start: datetime
    end: datetime
    sip_group: str
    phone: str

    @classmethod
    def from_body(cls, body: bytes) -> Query:
        try:
            raw = json.loads(body or b"null")
        except ValueError:
            raise ItnioError(-22, "参数异常: body is not JSON") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("params"), dict):
            raise ItnioError(-22, "参数异常: params is required")
        params = raw["params"]
        return cls(
            current=_int(raw, "current", 1, 1, None),
            size=_int(raw, "size", DEFAULT_SIZE, 1, MAX_SIZE),
            start=_instant(params, "strTime"),
            end=_instant(params, "endTime"),
            sip_group=str(params.get("sipGroupName") or ""),
            phone=str(params.get("phoneName") or ""),
        )

    def check_range(self, now: datetime) -> None:
        """The vendor's limits on a query's time range (the tap must never trip them)."""
        if self.end < self.start:
            raise ItnioError(-22, "参数异常: endTime before strTime")
        if self.end - self.start > MAX_RANGE:
            raise ItnioError(-25, "超出时间范围限制: max 31 days")
        if self.start < horizon_start(now):
            raise ItnioError(-25, "超出时间范围限制: last two months only")

    @property
    def filtered(self) -> bool:
        return bool(self.sip_group or self.phone)

    def accepts(self, call: _Call) -> bool:
        rec = call.record
        return (
            self.start <= call.call_time <= self.end
            and (not self.sip_group or rec["sipGroupName"] == self.sip_group)
            and (not self.phone or rec["phoneName"] == self.phone)
        )


def _int(raw: dict[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItnioError(-22, f"参数异常: {name} must be an integer")
    if value < low or (high is not None and value > high):
        raise ItnioError(-22, f"参数异常: {name} out of range")
    return value


def _instant(params: dict[str, Any], name: str) -> datetime:
    raw = params.get(name)
    if not isinstance(raw, str) or not ISO_OFFSET_RE.fullmatch(raw):
        raise ItnioError(-22, f"参数异常: {name} must be ISO 8601 with an offset")
    try:
        return datetime.fromisoformat(raw).astimezone(UTC)
    except ValueError:  # right shape, impossible date (2022-04-31)
        raise ItnioError(-22, f"参数异常: {name} is not a date") from None


@dataclass
class _Call:
    call_time: datetime  # UTC, what queries filter on
    record: dict[str, Any]


@dataclass
class _Profile:
    """Per-account constants that make records look like one customer's traffic."""

    sip_groups: list[str]
    phones: dict[str, str]  # phone name -> its SIP group
    caller_ids: list[str]
    bill_period: str
    currency: str

    @classmethod
    def make(cls, rng: random.Random, currency: str) -> _Profile:
        groups = ["group1", "sales", "support"][: rng.randint(2, 3)]
        phones = {f"sipName{rng.randint(1000, 9999)}": rng.choice(groups) for _ in range(8)}
        caller_ids = [f"100{rng.randrange(10**7):07d}" for _ in range(3)]
        return cls(groups, phones, caller_ids, rng.choice(["20+20", "60+60"]), currency)


class _AccountState:
    def __init__(self, account: ItnioAccount, anchor: datetime, ids: _VoiceIds) -> None:
        self.account = account
        self.zone = ZoneInfo(account.timezone)
        self.ids = ids
        rng = data.rng_for(account.seed, account.name, "itnio")
        self.profile = _Profile.make(rng, account.currency)
        # Both sorted by call time (ties in the order they were added); `times` mirrors `calls`
        # so a page bisects to its time range instead of scanning every call.
        self.calls: dict[str, list[_Call]] = {SIP: [], GROUP: []}
        self.times: dict[str, list[datetime]] = {SIP: [], GROUP: []}
        start = anchor - timedelta(days=account.days)
        for endpoint, n in ((SIP, account.calls), (GROUP, account.group_calls)):
            recent = min(RECENT_CALLS, n)
            times = data.business_start_times(
                rng, n - recent, start, anchor - timedelta(hours=1), self.zone
            )
            times += data.uniform_times(
                rng, recent, anchor - timedelta(minutes=10), anchor - timedelta(minutes=1)
            )
            self.append(endpoint, rng, times, cap=anchor)

    def append(
        self, endpoint: str, rng: random.Random, times: list[datetime], cap: datetime | None
    ) -> list[_Call]:
        new = [
            _Call(moment.astimezone(UTC), self.make_record(endpoint, rng, moment, cap))
            for moment in sorted(times)
        ]
        calls = sorted(self.calls[endpoint] + new, key=lambda c: c.call_time)  # stable
        self.calls[endpoint], self.times[endpoint] = calls, [c.call_time for c in calls]
        return new

    def in_range(self, endpoint: str, start: datetime, end: datetime) -> tuple[list[_Call], int, int]:
        """The endpoint's calls and the slice ``[low:high]`` of them with ``start <= call_time
        <= end``. The list is never changed in place (``append`` builds a new one)."""
        times = self.times[endpoint]
        low, high = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        return self.calls[endpoint], low, high

    def make_record(
        self, endpoint: str, rng: random.Random, call_time: datetime, cap: datetime | None
    ) -> dict[str, Any]:
        profile, zone = self.profile, self.zone
        label, dial, rate = rng.choice(DESTINATIONS)
        outcome = rng.random()
        rings = outcome > 0.05  # ~5% invalid numbers never ring
        answered = outcome > 0.35
        ring_at = call_time + timedelta(seconds=rng.randint(1, 4))
        wait = data.ring_seconds(rng)
        talk = data.talk_seconds(rng) if answered else 0
        if cap is not None:  # no record exists before the call has ended
            room = max(0, int((cap - ring_at).total_seconds()) - 1)
            wait, talk = min(wait, room), max(0, min(talk, room - min(wait, room)))
            answered = answered and talk > 0
        hangup = ring_at + timedelta(seconds=wait + talk if rings else 0)
        code, reason = ("1000", "success") if answered else rng.choice(FAILURES)
        if not rings:
            code, reason = INVALID
        charged = _charged_seconds(talk, profile.bill_period)
        cost = (Decimal(rate) * charged / 60).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        phone = rng.choice(list(profile.phones)) if endpoint == SIP else ""
        record: dict[str, Any] = {
            "voiceId": self.ids.next(call_time.astimezone(zone)),
            "sipGroupName": profile.phones[phone] if phone else "",
            "phoneName": phone,
            "callee": dial + f"{rng.randrange(10**9):09d}",
            "displayNum": rng.choice(profile.caller_ids),
            "code": label,
            "submitTime": _iso(call_time - timedelta(seconds=rng.randint(0, 3)), zone),
            "callTime": _iso(call_time, zone),
            "ringingTime": _iso(ring_at, zone) if rings else "",
            "answerTime": _iso(ring_at + timedelta(seconds=wait), zone) if answered else "",
            "hangupTime": _iso(hangup, zone),
            "callDuration": talk,
            "chargedDuration": charged,
            "terminationCode": code,
            "terminationReason": reason,
            "cost": str(cost) if charged else "0",
            "billPeriod": profile.bill_period,
            "rate": rate,
            "recordingFileId": f"1{data.hex_id(rng, 40)}.mp3" if answered and phone else "",
            "currency": profile.currency,
        }
        if endpoint == GROUP:
            record.update(_group_fields(rng, answered, cost if charged else Decimal(0)))
        return record


def _group_fields(rng: random.Random, answered: bool, cost: Decimal) -> dict[str, Any]:
    """Group calls play a voice file and may collect a key press; verification codes read one."""
    if rng.random() < 0.6:
        called = {"name": data.chinese_name(rng), "orderNo": f"A{rng.randrange(10**6)}"}
        info = json.dumps(called, ensure_ascii=False)
        extra = {
            "voiceFileId": data.hex_id(rng, 24),
            "feedbackValue": rng.choice(["", "1", "2", "9"]) if answered else "",
            "calledInfo": info,
        }
    else:
        code = f"{rng.randrange(10**6):06d}"  # the verification code read out
        extra = {"voiceFileId": "", "feedbackValue": "", "calledInfo": code}
    base = (cost * Decimal("0.8")).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    return {**extra, "baseCost": str(base)}


def _charged_seconds(talk: int, period: str) -> int:
    first, step = (int(part) for part in period.split("+"))
    if talk <= 0:
        return 0
    return first + max(0, -(-(talk - first) // step)) * step


def _iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")


class _VoiceIds:
    """``2203031113381000002``: local yyMMddHHmmss of the call + a vendor-wide sequence."""

    def __init__(self) -> None:
        self._sequence = 1_000_000

    def next(self, local_call_time: datetime) -> str:
        self._sequence += 1
        return f"{local_call_time:%y%m%d%H%M%S}{self._sequence % 10**7:07d}"


class ItnioVendor(Vendor):
    name = "itnio"
    account_type = ItnioAccount
    demo_accounts = staticmethod(itnio_demo_accounts)
    # add_calls' endpoint, by the tap's stream name too; the first is its default
    endpoints: ClassVar[Mapping[str, str]] = {"itnio_sip_cdr": SIP, "itnio_group_cdr": GROUP}
    secret_params = frozenset({"sign"})
    transient_codes = (-18,)  # 系统异常

    def __init__(
        self,
        accounts: list[ItnioAccount],
        anchor: datetime,
        timestamp_tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self._lock = threading.RLock()
        self.timestamp_tolerance = timestamp_tolerance
        ids = _VoiceIds()
        self._accounts: dict[str, _AccountState] = {}
        for account in accounts:
            if account.name in self._accounts:
                raise ValueError(f"duplicate itnio account name {account.name!r}")
            self._accounts[account.name] = _AccountState(account, anchor, ids)

    @classmethod
    def api_url(cls, base_url: str, account: str) -> str:
        return base_url + PREFIX

    @classmethod
    def add_arguments(cls, add: Callable[..., Any]) -> None:
        add("--itnio-tolerance", type=float, default=DEFAULT_TOLERANCE,
            help="itnio Timestamp tolerance, seconds")  # fmt: skip

    @classmethod
    def demo_from_args(cls, names: list[str], args: Namespace) -> list[Any]:
        return itnio_demo_accounts(
            names,
            calls=args.calls,
            group_calls=args.calls // 3,
            days=args.days,
            seed=args.seed,
            timezone=args.timezone,
        )

    def configure(self, args: Namespace) -> None:
        self.timestamp_tolerance = args.itnio_tolerance

    # ---- interface used by the server and tests -------------------------------------------

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def account_line(self, name: str, base_url: str) -> str:
        itnio = self.account(name)
        return (
            f"itnio account {name}: api_key={itnio.api_key} api_secret={itnio.api_secret} "
            f"({itnio.calls} SIP + {itnio.group_calls} group calls, {itnio.timezone})"
        )

    def account(self, name: str) -> ItnioAccount:
        return self._state(name).account

    def describe(self, request: HttpRequest) -> RequestInfo:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        params = body.get("params")
        logged = {k: v for k, v in body.items() if k != "params"}
        logged.update(params if isinstance(params, dict) else {})
        for header in HEADERS:
            if header in request.headers:
                logged[header] = "***" if header == "Sign" else request.headers[header]
        key = request.headers.get("Api-Key", "")
        account = next((n for n, s in self._accounts.items() if key and s.account.api_key == key), "")
        return RequestInfo("data", request.path.removeprefix(PREFIX), logged, account)

    def handle(self, request: HttpRequest) -> HttpResponse:
        endpoint = request.path.removeprefix(PREFIX)
        if not request.path.startswith(PREFIX) or endpoint not in ENDPOINTS:
            return json_response({"status": 404, "error": "Not Found", "path": request.path}, 404)
        if request.method != "POST":
            return json_response({"status": 405, "error": "Method Not Allowed"}, 405)
        try:
            if request.fault == "expire_tokens":
                raise ItnioError(-16)
            state = self._authenticate(request)
            query = Query.from_body(request.body)
            query.check_range(datetime.now(UTC))
            return envelope(0, self._page(state, endpoint, query, request.fault), "success")
        except ItnioError as err:
            return err.response()

    def error_response(self, code: int, **params: Any) -> HttpResponse:
        return ItnioError(code, params.get("reason")).response()

    def expire_tokens(self) -> None:
        """No tokens at ITNIO: the request carrying this fault is answered -16 instead."""

    def truth(self, account: str, endpoint: str | None = None) -> list[dict[str, Any]]:
        """What the vendor still holds (the last two months), of one endpoint or both."""
        oldest = horizon_start(datetime.now(UTC))
        with self._lock:
            state = self._state(account)
            return [
                dict(call.record)
                for name in ([endpoint] if endpoint else ENDPOINTS)
                for call in state.calls[name]
                if call.call_time >= oldest
            ]

    def add_calls(
        self, account: str, n: int, start: datetime, end: datetime, endpoint: str = SIP
    ) -> list[dict[str, Any]]:
        with self._lock:
            state = self._state(account)
            start, end = data.as_aware(start, state.zone), data.as_aware(end, state.zone)
            if n < 0 or end < start or endpoint not in ENDPOINTS:
                raise ValueError(f"need n >= 0, start <= end and an endpoint in {ENDPOINTS}")
            rng = data.rng_for(account, "add", len(state.calls[endpoint]), n)
            times = data.uniform_times(rng, n, start, end)
            return [dict(c.record) for c in state.append(endpoint, rng, times, cap=None)]

    # ---- protocol -----------------------------------------------------------------------------

    def _state(self, name: str) -> _AccountState:
        try:
            return self._accounts[name]
        except KeyError:
            raise KeyError(f"unknown itnio account {name!r}") from None

    def _authenticate(self, request: HttpRequest) -> _AccountState:
        key, stamp, signature = (request.headers.get(h, "") for h in HEADERS)
        state = next((s for s in self._accounts.values() if s.account.api_key == key), None)
        if not (key and stamp and signature) or state is None:
            raise ItnioError(-1)
        expected = sign(key, state.account.api_secret, stamp)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise ItnioError(-1)
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.timestamp_tolerance:
            raise ItnioError(-16)
        if state.account.ip_whitelist and request.client_ip not in state.account.ip_whitelist:
            raise ItnioError(-2)
        return state

    def _page(
        self, state: _AccountState, endpoint: str, query: Query, fault: str | None
    ) -> dict[str, Any]:
        """Newest first; ``repeat_page`` serves page 1's records under the asked number."""
        served = 1 if fault == "repeat_page" else query.current
        first = (served - 1) * query.size
        with self._lock:
            calls, low, high = state.in_range(endpoint, query.start, query.end)
        if query.filtered:  # only the range's calls are looked at
            matches = [calls[i] for i in range(high - 1, low - 1, -1) if query.accepts(calls[i])]
            total, page = len(matches), matches[first : first + query.size]
        else:  # the page straight from the range, by index
            total = high - low
            top, bottom = high - first, max(low, high - first - query.size)
            page = calls[bottom:top][::-1] if top > low else []
        return {
            "total": total,
            "size": query.size,
            "current": query.current,
            "pages": -(-total // query.size),
            "searchCount": True,
            "records": [dict(c.record) for c in page],
        }
