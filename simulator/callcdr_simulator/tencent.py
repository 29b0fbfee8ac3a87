"""Tencent callback (回拨) CDRs: ``POST /tencent/201511v3/getCdr?id=...`` with a JSON body.

Follows /work/shared/vendor-docs/tencent-callback-getcdr.md: string parameters, ``appId`` in
the body and ``id`` in the URL, epoch-second times (``"0"`` for moments that never happened),
optional zlib bodies, the documented error codes. What the doc leaves open is settled here:

- ``startTimeStamp``/``endTimeStamp`` are both inclusive (a SQL ``BETWEEN``) on the caller-leg
  start ``startSrcCallTime``;
- an answer carries at most ``cap`` calls (in start order); when more match, ``offset`` is the
  index of the first call left out (the number served), else ``"0"``; no request can continue
  from it, so a client must ask for smaller ranges;
- ``compress: "1"`` zlib-compresses (RFC 1950, with header) every answer to a request that
  could be parsed, errors included; an account with ``compress_supported=False`` ignores it.
"""

from __future__ import annotations

import bisect
import json
import random
import re
import threading
import zlib
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import data
from .core import HttpRequest, HttpResponse, RequestInfo, Vendor, html_response, mask

VERSION = "201511v3"
METHOD = "getCdr"
RECENT_CALLS = 3  # calls placed in the last minutes before the anchor (ringing fits in 3)
ERRORS: dict[int, str] = {
    -1: "version not supported",
    -2: "parameter error",
    -201: "callId error",
    -202: "timestamp parameter error",
    -203: "network error",
    -401: "appId illegal",
    -402: "URL mismatch",
    -403: "IP not in whitelist",
    -423: "request blocked by server",
    -501: "server error",
}
TIME_FIELDS = (
    "startSrcCallTime",
    "startSrcRingTime",
    "srcAcceptTime",
    "startDstCallTime",
    "startDstRingTime",
    "dstAcceptTime",
    "endCallTime",
)
# callEndStatus: 0 unknown, 1 normal, 2 caller unanswered, 3 caller answered / callee not,
# 4 caller not reached, 5 callee not reached
END_STATUS_WEIGHTS = {1: 55, 2: 15, 3: 10, 4: 8, 5: 10, 0: 2}
DIGITS = re.compile(r"\d+")


@dataclass
class TencentAccount:
    name: str
    id: str  # the `id` in the URL, assigned by Tencent
    app_id: str
    calls: int = 1000
    days: int = 7
    seed: int = 1
    cap: int = 1000  # most calls one answer carries; more are cut (non-zero offset)
    timezone: str = "Asia/Shanghai"  # callId dates, naive add_calls, "datetime" format
    time_format: str = "epoch"  # or "datetime": local yyyy-MM-dd HH:mm:ss, as the doc's table
    compress_supported: bool = True  # False: answers plain JSON whatever `compress` says
    ip_whitelist: list[str] = field(default_factory=list)
    blocked: bool = False  # every request answered -423

    def __post_init__(self) -> None:
        if self.time_format not in ("epoch", "datetime"):
            raise ValueError(f"time_format must be epoch or datetime, not {self.time_format!r}")
        if self.cap < 1:
            raise ValueError("cap must be at least 1")
        ZoneInfo(self.timezone)  # fail fast on a bad zone name

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TencentAccount:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown tencent account keys: {sorted(unknown)}")
        return cls(**raw)


def tencent_demo_accounts(
    names: tuple[str, ...] | list[str] = ("hq", "branch"), **overrides: Any
) -> list[TencentAccount]:
    """Demo accounts with predictable credentials: id ``<name>-id``, appId ``<name>-appId-S3cr3t``."""
    return [
        TencentAccount(name=name, id=f"{name}-id", app_id=f"{name}-appId-S3cr3t", **overrides)
        for name in names
    ]


class ApiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(ERRORS[code])
        self.code = code

    def payload(self) -> dict[str, str]:
        return {"errorCode": str(self.code), "result": ERRORS[self.code]}


@dataclass
class _Call:
    start: int  # epoch seconds of startSrcCallTime
    record: dict[str, str]  # the epoch shape, keys in the vendor's (alphabetical) order


@dataclass(frozen=True)
class _Query:
    start: int
    end: int  # inclusive
    src: str


class _AccountState:
    def __init__(self, account: TencentAccount, index: int, anchor: datetime) -> None:
        self.account = account
        self.zone = ZoneInfo(account.timezone)
        self.prefix = f"{12 + index % 80}"  # callId prefix, one per account
        self.calls: list[_Call] = []  # in start order, so a range is two bisects
        self._starts: list[int] = []
        rng = data.rng_for(account.seed, account.name, "tencent")
        self.caller = "0086" + data.mobile_number(rng)  # the user who asks for callbacks
        self._generate(rng, anchor)

    def _generate(self, rng: random.Random, anchor: datetime) -> None:
        recent = min(RECENT_CALLS, self.account.calls)
        first = anchor - timedelta(days=self.account.days)
        starts = data.business_start_times(
            rng, self.account.calls - recent, first, anchor - timedelta(hours=1), self.zone
        )
        starts += data.uniform_times(
            rng, recent, anchor - timedelta(minutes=10), anchor - timedelta(minutes=3)
        )
        self.append(rng, starts, cap=anchor)

    def append(self, rng: random.Random, starts: list[datetime], cap: datetime | None) -> list[_Call]:
        new = [_Call(int(s.timestamp()), make_record(rng, self, s, cap)) for s in starts]
        self.calls = sorted(self.calls + new, key=lambda c: c.start)  # stable, nearly sorted
        self._starts = [c.start for c in self.calls]
        return new

    def select(self, query: _Query) -> list[_Call]:
        low = bisect.bisect_left(self._starts, query.start)
        high = bisect.bisect_right(self._starts, query.end)
        return [c for c in self.calls[low:high] if not query.src or c.record["src"] == query.src]

    def shape(self, call: _Call) -> dict[str, str]:
        if self.account.time_format == "epoch":
            return dict(call.record)
        return {k: self._local(v) if k in TIME_FIELDS else v for k, v in call.record.items()}

    def _local(self, epoch: str) -> str:
        if epoch == "0":
            return "0"
        return data.local_str(datetime.fromtimestamp(int(epoch), UTC), self.zone)


class TencentVendor(Vendor):
    name = "tencent"
    account_type = TencentAccount
    demo_accounts = staticmethod(tencent_demo_accounts)
    secret_params = frozenset({"id", "appid"})
    transient_codes = (-203, -501)  # 网络异常, 服务器异常

    def __init__(self, accounts: list[TencentAccount], anchor: datetime) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, _AccountState] = {}
        for index, account in enumerate(accounts):
            if account.name in self._accounts:
                raise ValueError(f"duplicate tencent account name {account.name!r}")
            self._accounts[account.name] = _AccountState(account, index, anchor)

    @classmethod
    def api_url(cls, base_url: str, account: str) -> str:
        return f"{base_url}/{cls.name}"  # the tap adds /<version>/getCdr

    @classmethod
    def add_arguments(cls, add: Callable[..., Any]) -> None:
        add("--tencent-cap", type=int, default=1000, help="most calls one tencent answer carries")

    @classmethod
    def demo_from_args(cls, names: list[str], args: Namespace) -> list[Any]:
        return tencent_demo_accounts(
            names, calls=args.calls, days=args.days, seed=args.seed, cap=args.tencent_cap
        )

    # ---- interface used by the server and tests -------------------------------------------

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def account_line(self, name: str, base_url: str) -> str:
        tencent = self.account(name)
        return (
            f"tencent account {name}: id={tencent.id} appId={tencent.app_id} "
            f"({tencent.calls} calls, cap {tencent.cap} per answer)"
        )

    def account(self, name: str) -> TencentAccount:
        return self._state(name).account

    def describe(self, request: HttpRequest) -> RequestInfo:
        body = _body(request)
        params = {**request.query, **(body if isinstance(body, dict) else {})}
        url_id = request.query.get("id", "")
        account = next((n for n, s in self._accounts.items() if s.account.id == url_id), "")
        service = request.path.rsplit("/", 1)[-1]
        return RequestInfo("data", service, mask(params, self.secret_params), account)

    def handle(self, request: HttpRequest) -> HttpResponse:
        parts = request.path.strip("/").split("/")  # ["tencent", version, method]
        if len(parts) != 3 or parts[2] != METHOD:
            return html_response("<html><body><h1>404 Not Found</h1></body></html>", 404)
        compress = False
        try:
            if parts[1] != VERSION:
                raise ApiError(-1)
            state, body = self._authorize(request)
            compress = body.get("compress") == "1" and state.account.compress_supported
            return answer(self._get_cdr(state, body), compress)
        except ApiError as err:
            return answer(err.payload(), compress)

    def error_response(self, code: int, **params: Any) -> HttpResponse:
        message = str(params.get("msg") or ERRORS.get(code, "unknown error"))
        return answer({"errorCode": str(code), "result": message}, compress=False)

    def expire_tokens(self) -> None:
        """This API has no session tokens: the id and appId are static."""

    def truth(self, account: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._state(account)
            return [state.shape(c) for c in state.calls]

    def add_calls(self, account: str, n: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        with self._lock:
            state = self._state(account)
            start, end = data.as_aware(start, state.zone), data.as_aware(end, state.zone)
            if n < 0 or end < start:
                raise ValueError("need n >= 0 and start <= end")
            rng = data.rng_for(state.account.seed, account, "add", len(state.calls), n)
            new = state.append(rng, data.uniform_times(rng, n, start, end), cap=None)
            return [state.shape(c) for c in new]

    # ---- protocol -----------------------------------------------------------------------------

    def _state(self, name: str) -> _AccountState:
        try:
            return self._accounts[name]
        except KeyError:
            raise KeyError(f"unknown tencent account {name!r}") from None

    def _authorize(self, request: HttpRequest) -> tuple[_AccountState, dict[str, str]]:
        body = _body(request)
        if not isinstance(body, dict):
            raise ApiError(-2)
        url_id = request.query.get("id", "")
        state = next((s for s in self._accounts.values() if s.account.id == url_id), None)
        if state is None:
            raise ApiError(-402)
        account = state.account
        if account.ip_whitelist and request.client_ip not in account.ip_whitelist:
            raise ApiError(-403)
        if account.blocked:
            raise ApiError(-423)
        if body.get("appId") != account.app_id:
            raise ApiError(-401)
        if not all(isinstance(v, str) for v in body.values()):
            raise ApiError(-2)  # "all parameters are strings"
        if body.get("compress", "") not in ("", "0", "1"):
            raise ApiError(-2)
        return state, body

    def _get_cdr(self, state: _AccountState, body: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if body.get("callId"):
                calls = [c for c in state.calls if c.record["callId"] == body["callId"]]
                if not calls:
                    raise ApiError(-201)
                return success([state.shape(c) for c in calls], 0)
            matches = state.select(_query(body))
            served = matches[: state.account.cap]
            offset = len(served) if len(matches) > len(served) else 0
            return success([state.shape(c) for c in served], offset)


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _query(body: dict[str, str]) -> _Query:
    start, end = body.get("startTimeStamp", ""), body.get("endTimeStamp", "")
    if not (DIGITS.fullmatch(start) and DIGITS.fullmatch(end)) or int(start) > int(end):
        raise ApiError(-202)
    return _Query(int(start), int(end), body.get("src", ""))


def success(cdr: list[dict[str, str]], offset: int) -> dict[str, Any]:
    return {"cdr": cdr, "errorCode": "0", "offset": str(offset), "result": "Call Details"}


def answer(payload: dict[str, Any], compress: bool) -> HttpResponse:
    body = json.dumps(payload, ensure_ascii=False).encode()
    if compress:
        return HttpResponse(200, zlib.compress(body), {"Content-Type": "application/octet-stream"})
    return HttpResponse(200, body, {"Content-Type": "application/json; charset=utf-8"})


def make_record(
    rng: random.Random, state: _AccountState, start: datetime, cap: datetime | None
) -> dict[str, str]:
    """One callback CDR: the platform rings the caller, then the callee, then bridges them.

    ``cap`` keeps the call ended by then (no CDR exists before hangup).
    """
    status = rng.choices(list(END_STATUS_WEIGHTS), weights=list(END_STATUS_WEIGHTS.values()))[0]
    deadline = int(cap.timestamp()) - 1 if cap else None

    def later(moment: int, seconds: int) -> int:
        return moment + seconds if deadline is None else min(moment + seconds, deadline)

    t0 = int(start.timestamp())
    times = dict.fromkeys(TIME_FIELDS, 0)
    times["startSrcCallTime"] = t0
    now, talk = t0, 0
    if status != 4:  # 4: the caller's phone was never reached
        now = times["startSrcRingTime"] = later(now, rng.randint(1, 4))
    if status in (1, 3, 5):  # the caller picked up; the platform calls the callee
        now = times["srcAcceptTime"] = later(now, data.ring_seconds(rng))
        now = times["startDstCallTime"] = later(now, 1)
    if status in (1, 3):
        now = times["startDstRingTime"] = later(now, rng.randint(1, 4))
    if status == 1:
        now = times["dstAcceptTime"] = later(now, data.ring_seconds(rng))
        before = now
        now = later(now, data.talk_seconds(rng))
        talk = now - before
    elif status in (2, 3):
        now = later(now, rng.randint(20, 60))  # ringing until someone gives up
    else:
        now = later(now, rng.randint(1, 10))
    times["endCallTime"] = now
    call_id = f"{state.prefix}-{start.astimezone(state.zone):%y%m%d}-{data.hex_id(rng)}"
    record: dict[str, str] = {k: str(v) for k, v in times.items()}
    record.update(
        callEndStatus=str(status),
        callId=call_id,
        dst="0086" + data.customer_number(rng).lstrip("0"),
        duration=str(talk),
        recordUrl=_record_url(rng, state, start, call_id) if talk else "",
        src=state.caller if rng.random() < 0.7 else "0086" + data.mobile_number(rng),
    )
    if rng.random() < 0.8:  # absent means 3 (PSTN to PSTN), says the doc
        record["callType"] = rng.choices(["3", "1", "2"], weights=[80, 10, 10])[0]
    if rng.random() < 0.7:
        record["bizId"] = f"biz{rng.randrange(10**6):06d}" if rng.random() < 0.3 else ""
    if rng.random() < 0.4:
        record["orderId"] = str(rng.randrange(10**11, 10**12)) if rng.random() < 0.5 else ""
    return dict(sorted(record.items()))


def _record_url(rng: random.Random, state: _AccountState, start: datetime, call_id: str) -> str:
    if rng.random() < 0.2:  # recording off or failed
        return ""
    return f"https://record.cloud.example/{start.astimezone(state.zone):%Y%m%d}/{call_id}.mp3"
