"""The generic call-center API (PhalApi style): ``App.Sip_Auth.Login`` + ``App.Sip_Cdr.GetBill``.

Behaviour follows /work/shared/vendor-docs/generic-getbill-v{1,2}, including its traps: default
callmethod=3 (API calls only) and default syncflag=1 (unqueried only, and querying marks them).
"""

from __future__ import annotations

import bisect
import hmac
import json
import random
import re
import secrets
import threading
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import data
from .core import (
    HttpRequest,
    HttpResponse,
    RequestInfo,
    Vendor,
    html_response,
    json_response,
    mask,
    nginx_page,
)

LOGIN = "App.Sip_Auth.Login"
GET_BILL = "App.Sip_Cdr.GetBill"
DEFAULT_SERVICE = "App.Site.Index"  # what PhalApi falls back to when `service` is absent
# Where the API answers, under the vendor prefix: a PhalApi site behind nginx runs its
# index.php at the root and at /index.php; anything else (/index.php/ included) is no file.
API_PATHS = frozenset({"", "/", "/index.php"})
ID_BASE = 263056202
ID_STRIDE = 50_000_000  # keeps ids of different accounts apart, like one shared vendor table
RECENT_CALLS = 3  # calls placed in the last minutes before the anchor
ILLEGAL = "非法请求\uff1a"  # full-width colon, as the vendor writes it

ERRORS: dict[int, str] = {
    400: ILLEGAL + "参数错误",
    500: "服务器内部错误",
    600: ILLEGAL + "token无效",
    601: "IP未授权\uff1a请将服务器IP加入白名单",
    602: "账户已禁用",
    603: "无权限调用该接口",
    604: "账户已欠费",
    1001: "系统繁忙\uff0c请稍后再试",
    1002: "appid或accesskey错误",
    1010: "token已过期",
}

V1_FIELDS = (
    "id",
    "extnumber",
    "destnumber",
    "displaynumber",
    "starttime",
    "answertime",
    "endtime",
    "duration",
    "billsec",
    "direction",
    "callmethod",
    "userid",
    "memberid",
    "chengshudu",
    "customuuid",
    "recordfilename",
    "downloadip",
    "hangupdirection",
    "hangupcause",
    "userkey",
)

# callmethod weights: API calls (3) stay a minority so the default filter visibly drops calls.
OUTBOUND_METHODS = {1: 8, 2: 30, 3: 14, 4: 10, 5: 20, 6: 18}
INBOUND_METHODS = {0: 40, 1: 15, 6: 45}

INT_PARAMS: dict[str, tuple[int, int, int | None]] = {  # name: (default, min, max)
    "syncflag": (1, 1, 3),
    "direction": (3, 1, 3),
    "callmethod": (3, 0, 6),
    "currentpage": (1, 1, None),
    "itemsperpage": (10, 1, 1000),
}
DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


@dataclass
class GenericAccount:
    name: str
    appid: str
    accesskey: str
    static_token: str | None = None
    timezone: str = "Asia/Shanghai"
    doc_version: str = "v2"
    calls: int = 1000
    days: int = 7
    seed: int = 1
    token_ttl: int = 43200
    ip_whitelist: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.doc_version not in ("v1", "v2"):
            raise ValueError(f"doc_version must be v1 or v2, not {self.doc_version!r}")
        ZoneInfo(self.timezone)  # fail fast on a bad zone name

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GenericAccount:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown generic account keys: {sorted(unknown)}")
        return cls(**raw)


def demo_accounts(
    names: tuple[str, ...] | list[str] = ("hq", "branch"), **overrides: Any
) -> list[GenericAccount]:
    """Demo accounts with predictable credentials, e.g. ``hq-appid`` / ``hq-accesskey-S3cr3t``."""
    return [
        GenericAccount(
            name=name,
            appid=f"{name}-appid",
            accesskey=f"{name}-accesskey-S3cr3t",
            static_token=f"{name}-static-token",
            **overrides,
        )
        for name in names
    ]


class ApiError(Exception):
    """An answer in the vendor's envelope, raised from deep inside request handling."""

    def __init__(self, ret: int, msg: str = "", data: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.ret, self.msg, self.data = ret, msg, data or {}

    def response(self) -> HttpResponse:
        return envelope(self.ret, self.data, self.msg)

    @classmethod
    def failure(cls, desc: str, code: int) -> ApiError:
        """A ret-200 business failure (``data.status`` 1 with ``data.errors``)."""
        msg = ERRORS.get(code, "未知错误")
        return cls(200, "", {"status": 1, "desc": desc, "errors": {"code": code, "msg": msg}})


def envelope(ret: int, payload: dict[str, Any], msg: str = "") -> HttpResponse:
    return json_response({"ret": ret, "data": payload, "msg": msg})


@dataclass
class BillQuery:
    start: datetime
    end: datetime
    syncflag: int
    direction: int
    callmethod: int
    currentpage: int
    itemsperpage: int
    extnumbers: frozenset[str]
    destnumber: str

    @classmethod
    def from_form(cls, form: dict[str, str]) -> BillQuery:
        ints = {name: _int_param(form, name, *spec) for name, spec in INT_PARAMS.items()}
        exts = frozenset(e.strip() for e in form.get("extnumber", "").split(",") if e.strip())
        return cls(
            start=_time_param(form, "starttime"),
            end=_time_param(form, "endtime"),
            extnumbers=exts,
            destnumber=form.get("destnumber", "").strip(),
            **ints,
        )

    def accepts(self, call: _Call, queried: set[int]) -> bool:
        rec = call.record
        return (
            self.start <= call.local_start <= self.end
            and self.direction in (3, 1 if rec["direction"] == "callin" else 2)
            and self.callmethod in (0, rec["callmethod"])
            and self._sync_ok(rec["id"] in queried)
            and (not self.extnumbers or rec["extnumber"] in self.extnumbers)
            and (not self.destnumber or rec["destnumber"] == self.destnumber)
        )

    def _sync_ok(self, was_queried: bool) -> bool:
        return self.syncflag == 3 or was_queried == (self.syncflag == 2)


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise ApiError(400, f"{ILLEGAL}缺少必要参数{name}")
    return value


def _int_param(form: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = form.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise ApiError(400, f"{ILLEGAL}参数{name}应该为整数")
    value = int(raw)
    if value < low:
        raise ApiError(400, f"{ILLEGAL}参数{name}应该大于等于{low}")
    if high is not None and value > high:
        raise ApiError(400, f"{ILLEGAL}参数{name}应该小于等于{high}")
    return value


def _time_param(form: dict[str, str], name: str) -> datetime:
    raw = _required(form, name)
    try:
        if DATETIME_RE.fullmatch(raw):
            return datetime.strptime(raw, data.TIME_FORMAT)
    except ValueError:
        pass  # right shape, impossible date (2025-02-30)
    raise ApiError(400, f"{ILLEGAL}参数{name}格式错误\uff0c应为yyyy-mm-dd hh:mm:ss")


@dataclass
class _Call:
    local_start: datetime  # naive wall time in the account zone, what filters compare against
    record: dict[str, Any]  # always the v2 shape; v1 is derived on output


@dataclass
class _Token:
    account: str
    expires_at: float  # time.monotonic()


@dataclass
class _Profile:
    """Per-account constants that make records look like one company's traffic."""

    companycode: str
    extensions: list[str]
    trunks: list[str]
    downloadip: str

    @classmethod
    def make(cls, rng: random.Random) -> _Profile:
        code = f"95{rng.randrange(10**5):05d}"
        exts = [str(8001 + i) for i in range(rng.randint(8, 15))]
        trunks = [f"21{code}{i:03d}" for i in range(1, 4)]
        ip = f"47.{rng.randint(90, 120)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        return cls(code, exts, trunks, ip)


class _AccountState:
    def __init__(self, account: GenericAccount, index: int, anchor: datetime) -> None:
        self.account = account
        self.zone = ZoneInfo(account.timezone)
        rng = data.rng_for(account.seed, account.name)
        self.profile = _Profile.make(rng)
        self.calls: list[_Call] = []  # ascending id
        self._by_start: list[tuple[datetime, int]] = []  # (local start, index in calls), sorted
        self.queried: set[int] = set()
        self._generate(rng, ID_BASE + index * ID_STRIDE, anchor)

    @property
    def max_id(self) -> int:
        return self.calls[-1].record["id"] if self.calls else ID_BASE

    def _generate(self, rng: random.Random, base: int, anchor: datetime) -> None:
        recent = min(RECENT_CALLS, self.account.calls)
        window_start = anchor - timedelta(days=self.account.days)
        starts = data.business_start_times(
            rng, self.account.calls - recent, window_start, anchor - timedelta(hours=1), self.zone
        )
        starts += data.uniform_times(
            rng, recent, anchor - timedelta(minutes=10), anchor - timedelta(minutes=1)
        )
        self._append(rng, base, sorted(starts), cap=anchor)

    def _append(
        self, rng: random.Random, last_id: int, starts: list[datetime], cap: datetime | None
    ) -> list[_Call]:
        new = []
        for start in starts:
            last_id += rng.randint(1, 4)  # ids are shared vendor-wide, so they have gaps
            record = make_record(rng, self.profile, last_id, start, self.zone, cap)
            call = _Call(start.astimezone(self.zone).replace(tzinfo=None), record)
            bisect.insort(self._by_start, (call.local_start, len(self.calls)))
            self.calls.append(call)
            new.append(call)
        return new

    def add_calls(self, n: int, start: datetime, end: datetime) -> list[_Call]:
        rng = data.rng_for(self.account.seed, self.account.name, "add", self.max_id, n)
        return self._append(rng, self.max_id, data.uniform_times(rng, n, start, end), cap=None)

    def select(self, query: BillQuery) -> tuple[int, list[_Call]]:
        # Only calls inside the time range are looked at, so 200k-call benchmarks stay fast.
        lo = bisect.bisect_left(self._by_start, (query.start, -1))
        hi = bisect.bisect_right(self._by_start, (query.end, len(self.calls)))
        in_range = sorted((i for _, i in self._by_start[lo:hi]), reverse=True)  # id descending
        matches = [
            c for c in map(self.calls.__getitem__, in_range) if query.accepts(c, self.queried)
        ]
        first = (query.currentpage - 1) * query.itemsperpage
        page = matches[first : first + query.itemsperpage]
        if query.syncflag == 1:  # the vendor flags what it hands out as "queried"
            self.queried.update(c.record["id"] for c in page)
        return len(matches), page

    def shape(self, call: _Call) -> dict[str, Any]:
        return to_v1(call.record) if self.account.doc_version == "v1" else dict(call.record)


class GenericVendor(Vendor):
    name = "generic"
    account_type = GenericAccount
    demo_accounts = staticmethod(demo_accounts)
    demo_names = ("hq", "branch")
    cli_aliases = ("--accounts",)  # its name from before there were other vendors
    secret_params = frozenset({"accesskey", "token"})
    transient_codes = (500, 1001)  # ret 500 server error; status failure, code 1001 busy

    def __init__(self, accounts: list[GenericAccount], anchor: datetime) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, _AccountState] = {}
        for index, account in enumerate(accounts):
            if account.name in self._accounts:
                raise ValueError(f"duplicate generic account name {account.name!r}")
            self._accounts[account.name] = _AccountState(account, index, anchor)
        self._tokens: dict[str, _Token] = {}

    @classmethod
    def add_arguments(cls, add: Callable[..., Any]) -> None:
        add("--doc-version", choices=("v1", "v2"), default="v2", help="generic record shape")
        add("--token-ttl", type=int, default=43200, help="generic login token lifetime in seconds")

    @classmethod
    def demo_from_args(cls, names: list[str], args: Namespace) -> list[Any]:
        return demo_accounts(
            names,
            calls=args.calls,
            days=args.days,
            seed=args.seed,
            doc_version=args.doc_version,
            timezone=args.timezone,
            token_ttl=args.token_ttl,
        )

    # ---- interface used by the server and tests -------------------------------------------

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def account_line(self, name: str, base_url: str) -> str:
        acct = self.account(name)
        return (
            f"generic account {name}: appid={acct.appid} accesskey={acct.accesskey} "
            f"static_token={acct.static_token} ({acct.calls} calls, {acct.doc_version}, {acct.timezone})"
        )

    def account(self, name: str) -> GenericAccount:
        return self._state(name).account

    def describe(self, request: HttpRequest) -> RequestInfo:
        service = request.form.get("service") or DEFAULT_SERVICE
        kind = "login" if service == LOGIN else "data"
        params = mask(request.form, self.secret_params)
        return RequestInfo(kind, service, params, self._account_of(request.form))

    def _account_of(self, form: dict[str, str]) -> str:
        """The account a request's appid (login) or token (data) belongs to, if any."""
        appid, token = form.get("appid"), form.get("token")
        with self._lock:
            for state in self._accounts.values():
                if appid and state.account.appid == appid:
                    return state.account.name
                if token and state.account.static_token == token:
                    return state.account.name
            issued = self._tokens.get(token or "")
            return issued.account if issued else ""

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.removeprefix(f"/{self.name}") not in API_PATHS:
            return html_response(nginx_page(404, "Not Found"), 404)
        service = request.form.get("service") or DEFAULT_SERVICE
        try:
            if service == LOGIN:
                return envelope(200, self._login(request))
            if service == GET_BILL:
                return envelope(200, self._get_bill(request))
            raise ApiError(400, f"{ILLEGAL}服务{service}不存在")
        except ApiError as err:
            return err.response()

    def error_response(self, code: int, **params: Any) -> HttpResponse:
        if code >= 1000:
            desc = "登录失败" if code == 1002 else "获取失败"
            return ApiError.failure(desc, code).response()
        return envelope(code, {}, str(params.get("msg") or ERRORS.get(code, "")))

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = float("-inf")

    def truth(self, account: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._state(account)
            return [state.shape(c) for c in state.calls]

    def add_calls(
        self, account: str, n: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        with self._lock:
            state = self._state(account)
            start, end = data.as_aware(start, state.zone), data.as_aware(end, state.zone)
            if n < 0 or end < start:
                raise ValueError("need n >= 0 and start <= end")
            return [state.shape(c) for c in state.add_calls(n, start, end)]

    def reset_queried(self, account: str | None = None) -> None:
        """Forget syncflag history, as if no one had ever queried."""
        with self._lock:
            for name in [account] if account else list(self._accounts):
                self._state(name).queried.clear()

    # ---- protocol -----------------------------------------------------------------------------

    def _state(self, name: str) -> _AccountState:
        try:
            return self._accounts[name]
        except KeyError:
            raise KeyError(f"unknown generic account {name!r}") from None

    def _login(self, request: HttpRequest) -> dict[str, Any]:
        appid = _required(request.form, "appid")
        accesskey = _required(request.form, "accesskey")
        with self._lock:
            state = next((s for s in self._accounts.values() if s.account.appid == appid), None)
            if state is None or not hmac.compare_digest(
                state.account.accesskey.encode(), accesskey.encode()
            ):
                raise ApiError.failure("登录失败", 1002)
            _check_ip(state.account, request.client_ip)
            token = secrets.token_hex(16)
            ttl = state.account.token_ttl
            self._tokens[token] = _Token(state.account.name, time.monotonic() + ttl)
        return {"status": 0, "desc": "登录成功", "result": {"token": token, "expire": ttl}}

    def _get_bill(self, request: HttpRequest) -> dict[str, Any]:
        reqtime = int(time.time())
        token = _required(request.form, "token")
        query = BillQuery.from_form(request.form)  # PhalApi validates params before filters
        served = replace(query, currentpage=1) if request.fault == "repeat_page" else query
        with self._lock:
            state = self._authorize(token, request.client_ip)
            total, page = state.select(served)
            bills = [state.shape(c) for c in page]
        result = {
            "totalitems": total,
            "currentpage": query.currentpage,
            "itemsperpage": query.itemsperpage,
            "bills": bills,
        }
        return {
            "status": 0,
            "desc": "获取成功",
            "result": result,
            "reqtime": reqtime,
            "rsptime": int(time.time()),
        }

    def _authorize(self, token: str, client_ip: str) -> _AccountState:
        static = next((s for s in self._accounts.values() if s.account.static_token == token), None)
        if static is not None:
            _check_ip(static.account, client_ip)
            return static
        issued = self._tokens.get(token)
        if issued is None:
            raise ApiError(600, ERRORS[600])
        state = self._accounts[issued.account]
        _check_ip(state.account, client_ip)
        if time.monotonic() >= issued.expires_at:
            raise ApiError.failure("获取失败", 1010)
        return state


def _check_ip(account: GenericAccount, client_ip: str) -> None:
    if account.ip_whitelist and client_ip not in account.ip_whitelist:
        raise ApiError(601, ERRORS[601])


def to_v1(record: dict[str, Any]) -> dict[str, Any]:
    """The older doc's shape: ``displaynumber`` and ``answertime`` null when unanswered."""
    out = {name: record["disnumber" if name == "displaynumber" else name] for name in V1_FIELDS}
    out["answertime"] = out["answertime"] or None
    return out


def make_record(
    rng: random.Random,
    profile: _Profile,
    call_id: int,
    start: datetime,
    zone: ZoneInfo,
    cap: datetime | None,
) -> dict[str, Any]:
    """One v2-shaped bill; ``cap`` keeps the call ended by then (no CDR exists before hangup)."""
    direction = "callin" if rng.random() < 0.3 else "callout"
    methods = INBOUND_METHODS if direction == "callin" else OUTBOUND_METHODS
    callmethod = rng.choices(list(methods), weights=list(methods.values()))[0]
    ring = data.ring_seconds(rng)
    talk = data.talk_seconds(rng) if rng.random() < 0.7 else 0  # ~30% never answered
    if cap is not None:
        limit = max(0, int((cap - start).total_seconds()) - 1)
        ring = min(ring, limit)
        talk = max(0, min(talk, limit - ring))
    answered = talk > 0
    call_uuid = data.uuid4(rng)
    ext, disnumber, destnumber = _parties(rng, profile, direction, callmethod, answered)
    custom = _custom_fields(rng, callmethod)
    record_file = _record_file(start, zone, profile, ext, call_uuid) if answered else ""
    task = callmethod in (5, 6) and direction == "callout"
    return {
        "id": call_id,
        "companycode": profile.companycode,
        "direction": direction,
        "type": direction,
        "callmethod": callmethod,
        "starttime": data.local_str(start, zone),
        "answertime": data.local_str(start + timedelta(seconds=ring), zone) if answered else "",
        "endtime": data.local_str(start + timedelta(seconds=ring + talk), zone),
        "duration": ring + talk,
        "billsec": talk,
        "userid": custom["userid"],
        "memberid": custom["memberid"],
        "chengshudu": custom["chengshudu"],
        "ext": custom["ext"],
        "disnumber": disnumber,
        "destnumber": destnumber,
        "extnumber": ext,
        "recordfilename": record_file,
        "downloadip": profile.downloadip if answered else "",
        "hangupdirection": rng.choice([10040, 10041]),
        "hangupcause": 10020 if answered else rng.choice([10016, 10017, 10019, 10020]),
        "uuid": call_uuid,
        "userkey": rng.choice(["", "#", "1", "2", "1#"]) if answered else "",
        "customuuid": custom["customuuid"],
        "taskid": str(rng.randint(3000, 3099)) if task else "",
        "round": rng.randint(1, 3) if task else 0,
        "recordurl": f"http://{profile.downloadip}/recordings/{record_file}" if record_file else "",
    }


def _parties(
    rng: random.Random, profile: _Profile, direction: str, callmethod: int, answered: bool
) -> tuple[str, str, str]:
    """(extnumber, disnumber, destnumber) for the call."""
    ext = rng.choice(profile.extensions)
    customer = data.customer_number(rng)
    trunk = rng.choice(profile.trunks)
    if direction == "callin":
        return (ext if answered else ""), customer, trunk
    if callmethod == 1:  # extension to extension
        return ext, ext, rng.choice(profile.extensions)
    has_agent = callmethod in (2, 3, 4) or (callmethod == 5 and answered)
    return (ext if has_agent else ""), trunk, customer


def _custom_fields(rng: random.Random, callmethod: int) -> dict[str, str]:
    """Pass-through data the customer's CRM attaches to API/task calls; "0" elsewhere."""
    if callmethod not in (3, 4, 5) or rng.random() < 0.2:
        return {"userid": "0", "memberid": "0", "chengshudu": "0", "ext": "0", "customuuid": "0"}
    ext = {"客户": data.chinese_name(rng), "来源": rng.choice(data.LEAD_SOURCES)}
    return {
        "userid": str(rng.randint(1001, 1030)),
        "memberid": str(rng.randint(100000, 999999)),
        "chengshudu": rng.choice(data.MATURITY),
        "ext": json.dumps(ext, ensure_ascii=False),
        "customuuid": data.hex_id(rng),
    }


def _record_file(
    start: datetime, zone: ZoneInfo, profile: _Profile, ext: str, call_uuid: str
) -> str:
    local = start.astimezone(zone)
    return f"{local:%Y%m%d}/{profile.companycode}_{ext or 'auto'}_{local:%H%M%S}_{call_uuid}.wav"
