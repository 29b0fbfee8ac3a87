"""Yeastar S-Series PBX API: ``login``, ``heartbeat``, ``cdr/get_random`` + ``cdr/download``.

Each account is one PBX, served at ``/yeastar/<account>/api/<version>/...``. Behaviour follows
/work/shared/vendor-docs/yeastar-cdr-download.md and the public S-Series API: every answer is
HTTP 200, ``{"status": "Success", ...}`` or ``{"status": "Failed", "errno": "..."}``; five failed
logins in a row lock the client IP out for 10 minutes (20002); tokens die after 30 idle minutes
(20006); a CDR random is single use and valid 30 s (20020); the download answers a CSV file, or
JSON when it fails (20019 bad time, 20020 bad random, 20021 no CDR in range).

The CSV carries the quirks real exports have: a BOM, CRLF line ends, quoted commas, Chinese text,
columns added by newer firmware (inserted mid-row, so only mapping by name works) or missing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import threading
import time
from argparse import Namespace
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from . import data
from .core import HttpRequest, HttpResponse, RequestInfo, Vendor, json_response, mask

CSV_COLUMNS = (
    "callid", "timestart", "callfrom", "callto", "callduraction", "talkduraction",
    "srctrunkname", "dsttrunkname", "status", "type", "pincode", "recording", "didnumber", "sn",
)  # fmt: skip
EXTRA_AT = 4  # newer firmware's columns appear mid-row, not appended
RECENT_CALLS = 3
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
EXTID_RE = re.compile(r"all|\d+(,\d+)*")
TRUNKS = ("中国电信, 主线", "China Unicom SIP", "联通-备用")  # a comma and Chinese on purpose
QUERY = ("extid", "starttime", "endtime")
ENDPOINTS = ("login", "heartbeat", "cdr/get_random", "cdr/download")

ERR_ONLY_JSON = 20000
ERR_ONLY_POST = 20001
ERR_LOCKED = 20002
ERR_LOGIN = 20003
ERR_NO_TOKEN = 20004
ERR_TOKEN_BLANK = 20005
ERR_TOKEN_TIMEOUT = 20006
ERR_BLANK_PARAM = 10004
ERR_TIME_FORMAT = 20019
ERR_RANDOM = 20020
ERR_NO_CDR = 20021


@dataclass
class YeastarAccount:
    """One simulated PBX. ``password`` is plain; the API wants its MD5 hex at login."""

    name: str
    username: str = "api"
    password: str = "Yeastar-S3cr3t"
    timezone: str = "Asia/Shanghai"
    api_version: str = "v1.1.0"
    calls: int = 300
    days: int = 7
    seed: int = 1
    transfer_share: float = 0.15  # calls with a second, transferred leg under the same callid
    bom: bool = True
    crlf: bool = True
    extra_columns: list[str] = field(default_factory=list)  # newer firmware
    missing_columns: list[str] = field(default_factory=list)  # older firmware
    token_idle_seconds: float = 1800.0
    random_ttl_seconds: float = 30.0
    max_failed_logins: int = 5
    lockout_seconds: float = 600.0

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail fast on a bad zone name
        unknown = set(self.missing_columns) - set(CSV_COLUMNS)
        if unknown:
            raise ValueError(f"missing_columns must be CSV columns, not {sorted(unknown)}")
        if {"callid", "timestart"} & set(self.missing_columns):
            raise ValueError("callid and timestart are never missing from a CDR export")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> YeastarAccount:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown yeastar account keys: {sorted(unknown)}")
        return cls(**raw)

    @property
    def columns(self) -> list[str]:
        """The CSV header this PBX's firmware writes."""
        kept = [c for c in CSV_COLUMNS if c not in self.missing_columns]
        return kept[:EXTRA_AT] + list(self.extra_columns) + kept[EXTRA_AT:]


def yeastar_demo_accounts(
    names: tuple[str, ...] | list[str] = ("pbx1",), **overrides: Any
) -> list[YeastarAccount]:
    """Demo PBXs with predictable credentials: user ``api``, password ``<name>-S3cr3t``."""
    return [YeastarAccount(name=name, password=f"{name}-S3cr3t", **overrides) for name in names]


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def failed(errno: int) -> HttpResponse:
    return json_response({"status": "Failed", "errno": str(errno)})


def success(**payload: Any) -> HttpResponse:
    return json_response({"status": "Success", **payload})


def not_found() -> HttpResponse:
    body = b"<html><body><h1>404 Not Found</h1></body></html>"
    return HttpResponse(404, body, {"Content-Type": "text/html"})


class YeastarError(Exception):
    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


@dataclass
class _Row:
    local_start: datetime  # naive wall time in the PBX zone, what the range filter compares
    values: dict[str, str]  # every column, documented and extra, as written to the CSV


@dataclass
class _Token:
    account: str
    last_used: float  # time.monotonic()


@dataclass
class _IssuedRandom:
    account: str
    query: tuple[str, str, str]  # extid, starttime, endtime it was issued for
    created: float


class _Pbx:
    """One PBX: its call log, its lockout counters and its constants."""

    def __init__(self, account: YeastarAccount, anchor: datetime) -> None:
        self.account = account
        self.zone = ZoneInfo(account.timezone)
        rng = data.rng_for(account.seed, "yeastar", account.name)
        self.sn = f"3631{rng.randrange(10**8):08d}"
        self.extensions = [str(1000 + i) for i in range(rng.randint(6, 12))]
        self.dids = [f"0755{rng.randrange(10**8):08d}" for _ in range(3)]
        self.rows: list[_Row] = []
        self.failed_logins: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}
        self._seq = 0
        self._generate(rng, anchor)

    def _generate(self, rng: Random, anchor: datetime) -> None:
        recent = min(RECENT_CALLS, self.account.calls)
        starts = data.business_start_times(
            rng,
            self.account.calls - recent,
            anchor - timedelta(days=self.account.days),
            anchor - timedelta(hours=1),
            self.zone,
        )
        starts += data.uniform_times(
            rng, recent, anchor - timedelta(minutes=10), anchor - timedelta(minutes=1)
        )
        self.append(rng, sorted(starts), cap=anchor)

    def append(self, rng: Random, starts: list[datetime], cap: datetime | None) -> list[_Row]:
        new: list[_Row] = []
        for start in starts:
            new.extend(self._call(rng, start, cap))
        self.rows.extend(new)
        return new

    def _call(self, rng: Random, start: datetime, cap: datetime | None) -> list[_Row]:
        """One call: one CSV row, or two sharing the callid when it was transferred."""
        self._seq += 1
        callid = f"{int(start.timestamp())}.{self._seq}"
        kind = rng.choices(["Inbound", "Outbound", "Internal"], weights=[40, 45, 15])[0]
        ext = rng.choice(self.extensions)
        customer = data.customer_number(rng)
        caller, callee = {
            "Inbound": (customer, ext),
            "Outbound": (ext, customer),
            "Internal": (ext, rng.choice(self.extensions)),
        }[kind]
        ring = data.ring_seconds(rng)
        talk = data.talk_seconds(rng) if rng.random() < 0.7 else 0
        if cap is not None:  # no CDR exists before the call ended
            limit = max(0, int((cap - start).total_seconds()) - 1)
            ring = min(ring, limit)
            talk = max(0, min(talk, limit - ring))
        trunk = rng.choice(TRUNKS)
        base = {
            "callid": callid,
            "callfrom": caller,
            "type": kind,
            "srctrunkname": trunk if kind == "Inbound" else "",
            "dsttrunkname": trunk if kind == "Outbound" else "",
            "pincode": "8866" if kind == "Outbound" and rng.random() < 0.05 else "",
            "didnumber": rng.choice(self.dids) if kind == "Inbound" else "",
            "sn": self.sn,
        }
        transfer = talk > 20 and kind != "Internal" and rng.random() < self.account.transfer_share
        first_talk = talk // 2 if transfer else talk
        rows = [self._row(rng, base, start, callee, ring, first_talk)]
        if transfer:  # the second leg: same callid, later start, another extension answers
            moment = start + timedelta(seconds=ring + first_talk)
            other = rng.choice([e for e in self.extensions if e != callee] or self.extensions)
            rows.append(self._row(rng, base, moment, other, 0, talk - first_talk))
        return rows

    def _row(
        self, rng: Random, base: dict[str, str], start: datetime, callee: str, ring: int, talk: int
    ) -> _Row:
        local = start.astimezone(self.zone)
        status = "ANSWERED" if talk else rng.choice(["NO ANSWER", "NO ANSWER", "BUSY", "FAILED"])
        recording = f"{local:%Y%m%d%H%M%S}-{base['callid']}-{callee}.wav" if talk else ""
        values = {
            **base,
            "timestart": local.strftime(data.TIME_FORMAT),
            "callto": callee,
            "callduraction": str(ring + talk),
            "talkduraction": str(talk),
            "status": status,
            "recording": recording,
        }
        for column in self.account.extra_columns:
            values[column] = f"{data.chinese_name(rng)}, {rng.choice(data.LEAD_SOURCES)}"
        shaped = {column: values[column] for column in self.account.columns}
        return _Row(local.replace(tzinfo=None), shaped)

    def select(self, extid: str, start: datetime, end: datetime) -> list[_Row]:
        exts = None if extid == "all" else set(extid.split(","))
        return [
            row
            for row in self.rows
            if start <= row.local_start <= end
            and (exts is None or {row.values["callfrom"], row.values["callto"]} & exts)
        ]

    def csv_bytes(self, rows: list[_Row]) -> bytes:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n" if self.account.crlf else "\n")
        writer.writerow(self.account.columns)
        writer.writerows([row.values[c] for c in self.account.columns] for row in rows)
        return (b"\xef\xbb\xbf" if self.account.bom else b"") + text.getvalue().encode()

    # ---- lockout ------------------------------------------------------------------------------

    def locked(self, ip: str) -> bool:
        return time.monotonic() < self.locked_until.get(ip, 0.0)

    def login_failed(self, ip: str) -> None:
        self.failed_logins[ip] = self.failed_logins.get(ip, 0) + 1
        if self.failed_logins[ip] >= self.account.max_failed_logins:
            self.locked_until[ip] = time.monotonic() + self.account.lockout_seconds
            self.failed_logins[ip] = 0


class YeastarVendor(Vendor):
    name = "yeastar"
    account_type = YeastarAccount
    demo_accounts = staticmethod(yeastar_demo_accounts)
    secret_params = frozenset({"password", "token", "random"})
    transient_codes = (10025, 20010, 30001, 30003)  # busy, API service failed, out of memory, down

    def __init__(self, accounts: list[YeastarAccount], anchor: datetime) -> None:
        self._lock = threading.RLock()
        self._pbxs: dict[str, _Pbx] = {}
        for account in accounts:
            if account.name in self._pbxs:
                raise ValueError(f"duplicate yeastar account name {account.name!r}")
            self._pbxs[account.name] = _Pbx(account, anchor)
        self._tokens: dict[str, _Token] = {}
        self._randoms: dict[str, _IssuedRandom] = {}
        self.issued: list[str] = []  # every token and random handed out, for leak checks

    @classmethod
    def api_url(cls, base_url: str, account: str) -> str:
        return f"{base_url}/{cls.name}/{account}"  # one PBX; the tap adds /api/<version>/

    @classmethod
    def demo_from_args(cls, names: list[str], args: Namespace) -> list[Any]:
        return yeastar_demo_accounts(
            names, calls=args.calls, days=args.days, seed=args.seed, timezone=args.timezone
        )

    # ---- interface used by the server and tests -------------------------------------------

    def accounts(self) -> list[str]:
        return list(self._pbxs)

    def account_line(self, name: str, base_url: str) -> str:
        pbx = self.account(name)
        return (
            f"yeastar account {name}: api_url={self.api_url(base_url, name)} username={pbx.username} "
            f"password={pbx.password} ({pbx.calls} calls, {pbx.api_version}, {pbx.timezone})"
        )

    def account(self, name: str) -> YeastarAccount:
        return self._pbx(name).account

    def truth(self, account: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row.values) for row in self._pbx(account).rows]

    def add_calls(
        self, account: str, n: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        with self._lock:
            pbx = self._pbx(account)
            start, end = data.as_aware(start, pbx.zone), data.as_aware(end, pbx.zone)
            rng = data.rng_for(pbx.account.seed, pbx.account.name, "add", len(pbx.rows), n)
            new = pbx.append(rng, data.uniform_times(rng, n, start, end), cap=None)
            return [dict(row.values) for row in new]

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.last_used = float("-inf")

    def error_response(self, code: int, **params: Any) -> HttpResponse:
        return failed(code)

    def describe(self, request: HttpRequest) -> RequestInfo:
        account, _version, endpoint = self._route(request.path)
        kind = "login" if endpoint in ("login", "heartbeat") else "data"
        body = _json_object(request) or {}
        params = mask({**request.query, **body}, self.secret_params)
        return RequestInfo(kind, endpoint, params, account if account in self._pbxs else "")

    def handle(self, request: HttpRequest) -> HttpResponse:
        name, version, endpoint = self._route(request.path)
        pbx = self._pbxs.get(name)
        if pbx is None or version != pbx.account.api_version or endpoint not in ENDPOINTS:
            return not_found()
        handler = {
            "login": self._login,
            "heartbeat": self._heartbeat,
            "cdr/get_random": self._get_random,
            "cdr/download": self._download,
        }[endpoint]
        try:
            with self._lock:
                return handler(pbx, request)
        except YeastarError as error:
            return failed(error.errno)

    # ---- endpoints ------------------------------------------------------------------------------

    def _login(self, pbx: _Pbx, request: HttpRequest) -> HttpResponse:
        body = _post_json(request)
        ip = request.client_ip
        if pbx.locked(ip):
            raise YeastarError(ERR_LOCKED)
        account = pbx.account
        if body.get("username") != account.username or body.get("password") != md5_hex(
            account.password
        ):
            pbx.login_failed(ip)
            raise YeastarError(ERR_LOGIN)
        pbx.failed_logins[ip] = 0
        token = secrets.token_hex(16)
        self._tokens[token] = _Token(account.name, time.monotonic())
        self.issued.append(token)
        return success(token=token)

    def _heartbeat(self, pbx: _Pbx, request: HttpRequest) -> HttpResponse:
        _post_json(request)
        self._authorize(pbx, request)
        return success()

    def _get_random(self, pbx: _Pbx, request: HttpRequest) -> HttpResponse:
        body = _post_json(request)
        self._authorize(pbx, request)
        extid, start, end = (str(body.get(k, "")).strip() for k in QUERY)
        if not (extid and start and end):
            raise YeastarError(ERR_BLANK_PARAM)
        _local_time(start), _local_time(end)  # 20019 on a bad format
        random = secrets.token_hex(16)
        issued = _IssuedRandom(pbx.account.name, (extid, start, end), time.monotonic())
        self._randoms[random] = issued
        self.issued.append(random)
        return success(extid=extid, starttime=start, endtime=end, random=random)

    def _download(self, pbx: _Pbx, request: HttpRequest) -> HttpResponse:
        self._authorize(pbx, request)
        query = request.query
        extid, start, end = (query.get(k, "") for k in QUERY)
        issued = self._randoms.pop(query.get("random", ""), None)  # single use, even on error
        if (
            issued is None
            or time.monotonic() - issued.created > pbx.account.random_ttl_seconds
            or (issued.account, issued.query) != (pbx.account.name, (extid, start, end))
        ):
            raise YeastarError(ERR_RANDOM)
        if not EXTID_RE.fullmatch(extid):
            raise YeastarError(ERR_BLANK_PARAM)
        rows = pbx.select(extid, _local_time(start), _local_time(end))
        if not rows:
            raise YeastarError(ERR_NO_CDR)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": 'attachment; filename="cdr.csv"',
        }
        return HttpResponse(200, pbx.csv_bytes(rows), headers)

    # ---- helpers --------------------------------------------------------------------------------

    def _authorize(self, pbx: _Pbx, request: HttpRequest) -> None:
        token = request.query.get("token", "")
        if not token:
            raise YeastarError(ERR_TOKEN_BLANK)
        known = self._tokens.get(token)
        if known is None or known.account != pbx.account.name:
            raise YeastarError(ERR_NO_TOKEN)
        now = time.monotonic()
        if now - known.last_used > pbx.account.token_idle_seconds:
            del self._tokens[token]
            raise YeastarError(ERR_TOKEN_TIMEOUT)
        known.last_used = now

    def _pbx(self, name: str) -> _Pbx:
        try:
            return self._pbxs[name]
        except KeyError:
            raise KeyError(f"unknown yeastar account {name!r}") from None

    @staticmethod
    def _route(path: str) -> tuple[str, str, str]:
        """``/yeastar/<account>/api/<version>/<endpoint>`` -> (account, version, endpoint)."""
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "api":
            return "", "", ""
        return parts[1], parts[3], "/".join(parts[4:])


def _json_object(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _post_json(request: HttpRequest) -> dict[str, Any]:
    if request.method != "POST":
        raise YeastarError(ERR_ONLY_POST)
    body = _json_object(request)
    if body is None:
        raise YeastarError(ERR_ONLY_JSON)
    return body


def _local_time(text: str) -> datetime:
    """``yyyy-mm-dd hh:mm:ss`` exactly, as the PBX insists (20019 otherwise)."""
    try:
        if TIME_RE.fullmatch(text):
            return datetime.strptime(text, data.TIME_FORMAT)
    except ValueError:
        pass  # right shape, impossible date
    raise YeastarError(ERR_TIME_FORMAT)
