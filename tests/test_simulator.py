"""The vendor simulator over real sockets: generic GetBill protocol, faults, control API, CLI."""

# The vendor writes full-width colons and commas in its messages; tests assert them verbatim.
# ruff: noqa: RUF001

from __future__ import annotations

import contextlib
import json
import re
import selectors
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
import requests
import vendors
from callcdr_simulator import VENDORS, Simulator, parse_spec
from callcdr_simulator.cli import build_parser, build_simulator
from callcdr_simulator.faults import MIX_KINDS
from callcdr_simulator.generic import GenericAccount, demo_accounts
from callcdr_simulator.itnio import GROUP, SIP, itnio_demo_accounts
from vendors import STREAMS, TESTED, VENDOR_NAMES

from tap_callcdr.tap import VENDORS as TAP_VENDORS

ANCHOR = datetime(2025, 10, 16, 10, 0, tzinfo=UTC)  # 18:00 in Asia/Shanghai
SIMULATOR = [sys.executable, "-m", "callcdr_simulator"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
WIDE = {"starttime": "2025-09-01 00:00:00", "endtime": "2025-11-01 00:00:00"}
ALL = {**WIDE, "syncflag": 3, "direction": 3, "callmethod": 0, "itemsperpage": 1000}
V2_FIELDS = [
    "id", "companycode", "direction", "type", "callmethod", "starttime", "answertime", "endtime",
    "duration", "billsec", "userid", "memberid", "chengshudu", "ext", "disnumber", "destnumber",
    "extnumber", "recordfilename", "downloadip", "hangupdirection", "hangupcause", "uuid",
    "userkey", "customuuid", "taskid", "round", "recordurl",
]  # fmt: skip
V1_FIELDS = [
    "id", "extnumber", "destnumber", "displaynumber", "starttime", "answertime", "endtime",
    "duration", "billsec", "direction", "callmethod", "userid", "memberid", "chengshudu",
    "customuuid", "recordfilename", "downloadip", "hangupdirection", "hangupcause", "userkey",
]  # fmt: skip


@pytest.fixture
def sim():
    accounts = demo_accounts(calls=200)
    accounts.append(
        GenericAccount("old", "old-appid", "old-key", static_token="old-static", doc_version="v1")
    )
    with Simulator(accounts, anchor=ANCHOR) as running:
        yield running


def post(sim: Simulator, **form) -> requests.Response:
    return requests.post(f"{sim.url}/generic/", data=form, timeout=5)


def login(sim: Simulator, account: str = "hq") -> str:
    acct = sim.generic.account(account)
    body = post(sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey)
    return body.json()["data"]["result"]["token"]


def failure(code: int, msg: str) -> dict:
    errors = {"code": code, "msg": msg}
    return {"ret": 200, "data": {"status": 1, "desc": "获取失败", "errors": errors}, "msg": ""}


def bill(sim: Simulator, token: str, **params) -> dict:
    response = post(sim, service="App.Sip_Cdr.GetBill", token=token, **params)
    assert response.status_code == 200
    return response.json()


def bills(sim: Simulator, token: str, **params) -> list[dict]:
    body = bill(sim, token, **{**ALL, **params})
    assert body["ret"] == 200 and body["data"]["status"] == 0, body
    return body["data"]["result"]["bills"]


# ---- login and tokens -----------------------------------------------------------------------


def test_login_issues_token_that_reads_bills(sim):
    acct = sim.generic.account("hq")
    body = post(
        sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey
    ).json()
    assert body["ret"] == 200 and body["msg"] == ""
    assert body["data"]["status"] == 0 and body["data"]["desc"] == "登录成功"
    result = body["data"]["result"]
    assert re.fullmatch(r"[0-9a-f]{32}", result["token"]) and result["expire"] == 43200
    page = bill(sim, result["token"], **ALL)["data"]
    assert page["desc"] == "获取成功" and isinstance(page["reqtime"], int)
    assert page["result"]["totalitems"] == len(sim.generic.truth("hq")) == 200


def test_static_token_always_works_even_after_expiry(sim):
    sim.generic.expire_tokens()
    assert len(bills(sim, "hq-static-token")) == 200


def test_wrong_credentials_fail_login(sim):
    body = post(sim, service="App.Sip_Auth.Login", appid="hq-appid", accesskey="nope").json()
    assert body == {
        "ret": 200,
        "data": {
            "status": 1,
            "desc": "登录失败",
            "errors": {"code": 1002, "msg": "appid或accesskey错误"},
        },
        "msg": "",
    }


def test_unknown_token_is_ret_600(sim):
    assert bill(sim, "deadbeef", **ALL) == {"ret": 600, "data": {}, "msg": "非法请求：token无效"}


def test_expired_token_is_1010(sim):
    token = login(sim)
    sim.generic.expire_tokens()
    body = bill(sim, token, **ALL)
    assert body["ret"] == 200 and body["data"]["status"] == 1
    assert body["data"]["errors"] == {"code": 1010, "msg": "token已过期"}


def test_token_ttl_per_account():
    with Simulator(demo_accounts(["a"], calls=5, token_ttl=0), anchor=ANCHOR) as s:
        token = login(s, "a")
        assert bill(s, token, **ALL)["data"]["errors"]["code"] == 1010


def test_ip_whitelist_is_ret_601():
    accounts = demo_accounts(["a"], calls=5, ip_whitelist=["10.9.8.7"])
    with Simulator(accounts, anchor=ANCHOR) as s:
        body = post(
            s, service="App.Sip_Auth.Login", appid="a-appid", accesskey=accounts[0].accesskey
        )
        assert body.json()["ret"] == 601
        assert bill(s, "a-static-token", **ALL)["msg"] == "IP未授权：请将服务器IP加入白名单"


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({"itemsperpage": 1001}, "非法请求：参数itemsperpage应该小于等于1000"),
        ({"itemsperpage": 0}, "非法请求：参数itemsperpage应该大于等于1"),
        ({"currentpage": 0}, "非法请求：参数currentpage应该大于等于1"),
        ({"syncflag": 4}, "非法请求：参数syncflag应该小于等于3"),
        ({"syncflag": 0}, "非法请求：参数syncflag应该大于等于1"),
        ({"syncflag": "abc"}, "非法请求：参数syncflag应该为整数"),
        ({"direction": 0}, "非法请求：参数direction应该大于等于1"),
        ({"direction": 4}, "非法请求：参数direction应该小于等于3"),
        ({"callmethod": 7}, "非法请求：参数callmethod应该小于等于6"),
        ({"callmethod": -1}, "非法请求：参数callmethod应该大于等于0"),
        ({"starttime": "2025/10/01 00:00:00"}, "非法请求：参数starttime格式错误"),
        ({"starttime": "2025-10-01"}, "非法请求：参数starttime格式错误"),
        ({"endtime": "2025-02-30 00:00:00"}, "非法请求：参数endtime格式错误"),
        ({"starttime": ""}, "非法请求：缺少必要参数starttime"),
        ({"token": ""}, "非法请求：缺少必要参数token"),
    ],
)
def test_getbill_validation_is_ret_400(sim, params, msg):
    form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token", **ALL, **params}
    body = post(sim, **form).json()
    assert body["ret"] == 400 and body["data"] == {}
    assert body["msg"].startswith(msg)


@pytest.mark.parametrize(
    ("form", "msg"),
    [
        ({"service": "App.X"}, "非法请求：服务App.X不存在"),
        ({}, "非法请求：服务App.Site.Index不存在"),
        ({"service": "App.Sip_Auth.Login", "appid": "hq-appid"}, "非法请求：缺少必要参数accesskey"),
    ],
)
def test_bad_service_or_login_params_are_ret_400(sim, form, msg):
    assert post(sim, **form).json() == {"ret": 400, "data": {}, "msg": msg}


# ---- defaults and the syncflag trap ---------------------------------------------------------


def test_defaults_return_only_unqueried_api_calls_ten_per_page(sim):
    truth = sim.generic.truth("hq")
    api_calls = sorted((r for r in truth if r["callmethod"] == 3), key=lambda r: -r["id"])
    assert 10 < len(api_calls) < len(truth) / 3  # the default visibly drops most calls
    result = bill(sim, "hq-static-token", **WIDE)["data"]["result"]
    assert (result["currentpage"], result["itemsperpage"]) == (1, 10)
    assert result["totalitems"] == len(api_calls)
    assert [b["id"] for b in result["bills"]] == [r["id"] for r in api_calls[:10]]


def test_syncflag_1_marks_returned_page_as_queried(sim):
    token = "hq-static-token"
    first = bill(sim, token, **{**ALL, "syncflag": 1, "itemsperpage": 5})["data"]["result"]
    assert first["totalitems"] == 200 and len(first["bills"]) == 5
    second = bill(sim, token, **{**ALL, "syncflag": 1, "itemsperpage": 5})["data"]["result"]
    assert second["totalitems"] == 195
    assert not {b["id"] for b in first["bills"]} & {b["id"] for b in second["bills"]}
    queried = bills(sim, token, syncflag=2)
    assert {b["id"] for b in queried} == {b["id"] for b in first["bills"] + second["bills"]}
    assert len(bills(sim, token, syncflag=3)) == len(sim.generic.truth("hq")) == 200
    sim.generic.reset_queried("hq")
    assert bills(sim, token, syncflag=2) == []


# ---- record shapes --------------------------------------------------------------------------


def test_v2_record_shape(sim):
    records = bills(sim, "hq-static-token")
    assert all(list(r) == V2_FIELDS for r in records)
    unanswered = [r for r in records if r["billsec"] == 0]
    answered = [r for r in records if r["billsec"] > 0]
    assert 0.15 < len(unanswered) / len(records) < 0.45
    assert all(r["answertime"] == "" and r["recordurl"] == "" for r in unanswered)
    assert all(r["recordfilename"] and r["recordurl"] for r in answered)
    for r in records:
        start = datetime.strptime(r["starttime"], "%Y-%m-%d %H:%M:%S")
        end = datetime.strptime(r["endtime"], "%Y-%m-%d %H:%M:%S")
        assert end - start == timedelta(seconds=r["duration"]) and r["billsec"] <= r["duration"]
        assert r["direction"] in ("callin", "callout") and 0 <= r["callmethod"] <= 6
    assert {r["direction"] for r in records} == {"callin", "callout"}
    assert any(r["chengshudu"] not in ("0", "") for r in records)
    assert any("客户" in r["ext"] for r in records)


def test_v1_record_shape(sim):
    records = bills(sim, "old-static")
    assert records and all(list(r) == V1_FIELDS for r in records)
    assert all(r["answertime"] is None for r in records if r["billsec"] == 0)
    assert all(isinstance(r["answertime"], str) for r in records if r["billsec"] > 0)
    assert sim.generic.truth("old")[0].keys() == set(V1_FIELDS)


def test_times_are_account_local_and_some_calls_are_recent(sim):
    truth = sim.generic.truth("hq")
    local_anchor = ANCHOR.astimezone(SHANGHAI).replace(tzinfo=None)
    ends = [datetime.strptime(r["endtime"], "%Y-%m-%d %H:%M:%S") for r in truth]
    starts = [datetime.strptime(r["starttime"], "%Y-%m-%d %H:%M:%S") for r in truth]
    assert max(ends) <= local_anchor
    assert min(starts) >= local_anchor - timedelta(days=7)
    assert sum(s >= local_anchor - timedelta(minutes=10) for s in starts) >= 3
    assert [r["id"] for r in truth] == sorted(r["id"] for r in truth)
    assert starts == sorted(starts)  # ids grow with start time


# ---- paging, order, filters -----------------------------------------------------------------


def test_paging_is_id_descending_and_complete(sim):
    token, seen, page = "hq-static-token", [], 1
    while True:
        result = bill(sim, token, **{**ALL, "itemsperpage": 7, "currentpage": page})
        result = result["data"]["result"]
        assert result["totalitems"] == 200 and result["currentpage"] == page
        if not result["bills"]:
            break
        seen += [b["id"] for b in result["bills"]]
        page += 1
    assert page == 30  # 29 pages of 7 for 200 rows, then an empty one
    assert seen == sorted((r["id"] for r in sim.generic.truth("hq")), reverse=True)


def test_filters(sim):
    token, truth = "hq-static-token", sim.generic.truth("hq")
    assert {r["direction"] for r in bills(sim, token, direction=1)} == {"callin"}
    assert {r["direction"] for r in bills(sim, token, direction=2)} == {"callout"}
    assert {r["callmethod"] for r in bills(sim, token, callmethod=5)} == {5}
    exts = sorted({r["extnumber"] for r in truth if r["extnumber"]})[:2]
    got = bills(sim, token, extnumber=",".join(exts))
    assert got and {r["extnumber"] for r in got} == set(exts)
    target = truth[50]
    got = bills(sim, token, destnumber=target["destnumber"])
    assert target["id"] in {r["id"] for r in got}
    assert {r["destnumber"] for r in got} == {target["destnumber"]}
    exact = {"starttime": target["starttime"], "endtime": target["starttime"]}
    assert target["id"] in {r["id"] for r in bills(sim, token, **exact)}  # bounds inclusive
    assert bills(sim, token, starttime="2025-10-17 00:00:00", endtime="2025-10-18 00:00:00") == []


def test_multipart_and_urlencoded_both_accepted(sim):
    form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token", **ALL}
    multipart = {k: (None, str(v)) for k, v in form.items()}
    via_multipart = requests.post(f"{sim.url}/generic/", files=multipart, timeout=5)
    assert via_multipart.request.headers["Content-Type"].startswith("multipart/form-data")
    via_urlencoded = post(sim, **form)
    assert via_multipart.json()["data"]["result"] == via_urlencoded.json()["data"]["result"]
    assert via_multipart.json()["data"]["result"]["totalitems"] == 200


@pytest.mark.parametrize(("path", "status"), [("", 200), ("/", 200), ("/index.php", 200),
                                             ("/index.php/", 404), ("/api", 404)])  # fmt: skip
def test_generic_api_answers_at_its_root_and_index_php_only(sim, path, status):
    """A PhalApi site behind nginx: `/` and `/index.php` run the API; `/index.php/` is no file."""
    form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token", **ALL}
    response = requests.post(f"{sim.url}/generic{path}", data=form, timeout=5)
    assert response.status_code == status
    if status == 200:
        assert response.json()["data"]["result"]["totalitems"] == 200


# ---- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502])
def test_http_error_faults(sim, status):
    sim.faults.add(f"http_{status}")
    assert (
        post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL).status_code
        == status
    )
    assert len(bills(sim, "hq-static-token")) == 200  # times=1 by default


def test_http_429_carries_retry_after(sim):
    sim.faults.add("http_429", retry_after=3)
    response = post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"


def test_slow_fault_delays_a_normal_answer(sim):
    sim.faults.add("slow", seconds=0.3)
    began = time.monotonic()
    assert len(bills(sim, "hq-static-token")) == 200
    assert time.monotonic() - began >= 0.3


def test_slow_fault_trips_client_timeout(sim):
    sim.faults.add("slow", seconds=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{sim.url}/generic/", data={"service": "App.Sip_Cdr.GetBill"}, timeout=0.2)


def test_truncate_fault_cuts_the_body(sim):
    sim.faults.add("truncate")
    form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token", **ALL}
    try:
        response = requests.post(f"{sim.url}/generic/", data=form, timeout=5)
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        pass
    else:  # a lenient client would see a short body instead
        assert len(response.content) < int(response.headers["Content-Length"])
    assert len(bills(sim, "hq-static-token")) == 200


def test_malformed_fault_is_200_non_json(sim):
    sim.faults.add("malformed")
    response = post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL)
    assert response.status_code == 200 and response.text == "<html>502 Bad Gateway</html>"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def timeless(body: bytes) -> bytes:
    """The answer without its clock: `reqtime` and `rsptime` are the seconds it was asked and
    sent (a cut may end in either, and the second may turn between two requests)."""
    return re.sub(rb'("r(?:eq|sp)time": )\d+', rb"\g<1>0", body)


@pytest.mark.parametrize("at", [0.01, 0.5, 0.99])
def test_cut_fault_is_framed_truncation_on_a_sane_connection(sim, at):
    """A proxy's cut: a proper prefix of the answer, its Content-Length matching what is sent,
    and the keep-alive connection still good for the next request."""
    form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token", **ALL}
    with requests.Session() as session:
        whole = session.post(f"{sim.url}/generic/", data=form, timeout=5).content
        sim.faults.add("cut", at=at)
        cut = session.post(f"{sim.url}/generic/", data=form, timeout=5)
        assert cut.status_code == 200 and int(cut.headers["Content-Length"]) == len(cut.content)
        assert 0 < len(cut.content) < len(whole) and timeless(whole).startswith(timeless(cut.content))
        with pytest.raises(requests.exceptions.JSONDecodeError):
            cut.json()
        assert timeless(session.post(f"{sim.url}/generic/", data=form, timeout=5).content) == timeless(whole)
    assert [r["fault"] for r in sim.requests] == [None, "cut", None]


def test_cut_never_ends_a_csv_at_a_row_boundary():
    from callcdr_simulator.server import cut_inside

    csv = b"a,b\r\n1,2\r\n3,4\r\n"
    for at in (0.0, 0.3, 0.5, 0.6, 0.99, 1.0):
        part = cut_inside(csv, at)
        assert part and csv.startswith(part) and part != csv and not part.endswith((b"\n", b"\r"))


def test_empty_fault_is_2xx_without_a_body(sim):
    sim.faults.add("empty")
    response = post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_service_targets_one_request_type(sim):
    sim.faults.add_spec("http_502:service=App.Sip_Auth.Login,times=-1")
    assert post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL).ok
    acct = sim.generic.account("hq")
    response = post(sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey)
    assert response.status_code == 502  # a login, though applies_to is "data" by default
    sim.faults.clear()
    sim.faults.add("empty", service="App.Sip_Cdr.GetBill")
    assert login(sim) and post(sim, service="App.Sip_Cdr.GetBill", token="x").content == b""


def test_account_targets_one_account_by_its_credentials(sim):
    """A fault for one account fires on its logins and on its data requests (issued or static
    token), never on another account's; the request log names each request's account."""
    sim.faults.add_spec("http_502:account=branch,applies_to=any,times=-1")
    token = login(sim, "hq")
    assert post(sim, service="App.Sip_Cdr.GetBill", token=token, **ALL).ok
    acct = sim.generic.account("branch")
    form = {"service": "App.Sip_Auth.Login", "appid": acct.appid, "accesskey": acct.accesskey}
    assert post(sim, **form).status_code == 502
    assert post(sim, service="App.Sip_Cdr.GetBill", token="branch-static-token", **ALL).status_code == 502
    assert post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL).ok
    assert [r["account"] for r in sim.requests] == ["hq", "hq", "branch", "branch", "hq"]
    sim.faults.clear()
    sim.faults.add("http_500", account="branch")
    branch = login(sim, "branch")  # a login: not counted, the fault is for data requests
    assert post(sim, service="App.Sip_Cdr.GetBill", token=branch, **ALL).status_code == 500
    assert sim.requests[-1]["account"] == "branch" and sim.faults.active() == []


def test_expire_tokens_fault(sim):
    token = login(sim)
    sim.faults.add("expire_tokens")
    assert bill(sim, token, **ALL)["data"]["errors"]["code"] == 1010
    fresh = login(sim)
    assert len(bills(sim, fresh)) == 200


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (500, {"ret": 500, "data": {}, "msg": "服务器内部错误"}),
        (600, {"ret": 600, "data": {}, "msg": "非法请求：token无效"}),
        (601, {"ret": 601, "data": {}, "msg": "IP未授权：请将服务器IP加入白名单"}),
        (602, {"ret": 602, "data": {}, "msg": "账户已禁用"}),
        (603, {"ret": 603, "data": {}, "msg": "无权限调用该接口"}),
        (604, {"ret": 604, "data": {}, "msg": "账户已欠费"}),
        (400, {"ret": 400, "data": {}, "msg": "非法请求：参数错误"}),
        (1001, failure(1001, "系统繁忙，请稍后再试")),
        (1010, failure(1010, "token已过期")),
    ],
)
def test_vendor_error_fault_envelopes(sim, code, expected):
    sim.faults.add("vendor_error", code=code)
    assert bill(sim, "hq-static-token", **ALL) == expected


def test_fault_times_after_and_login_exemption(sim):
    sim.faults.add("http_500", times=2, after=1)
    token = login(sim)  # logins are not counted by default
    statuses = [
        post(sim, service="App.Sip_Cdr.GetBill", token=token, **ALL).status_code for _ in range(4)
    ]
    assert statuses == [200, 500, 500, 200]
    assert [r["fault"] for r in sim.requests[-4:]] == [None, "http_500", "http_500", None]
    assert sim.faults.active() == []


def test_fault_can_target_login(sim):
    sim.faults.add("http_502", applies_to="login")
    assert post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL).ok
    acct = sim.generic.account("hq")
    response = post(sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey)
    assert response.status_code == 502


def test_unlimited_fault_and_other_vendor_untouched(sim):
    sim.faults.add("vendor_error", code=602, times=-1)
    sim.faults.add("http_500", vendor="yeastar", times=-1)
    assert all(bill(sim, "hq-static-token", **ALL)["ret"] == 602 for _ in range(3))
    sim.faults.clear()
    assert bill(sim, "hq-static-token", **ALL)["ret"] == 200


def _mixed_faults(sim: Simulator, n: int) -> list[str | None]:
    for _ in range(n):
        with contextlib.suppress(requests.RequestException):  # a truncate fault
            post(sim, service="App.Sip_Cdr.GetBill", token="hq-static-token", **ALL)
    return [r["fault"] for r in sim.requests[-n:]]


def test_fault_mix_fires_at_its_rate_every_kind_replayable_from_its_seed(sim):
    sim.faults.set_mix(0.5, seed=11, params={"slow": {"seconds": 0.01}})
    first = _mixed_faults(sim, 200)
    fired = [kind for kind in first if kind]
    assert 60 <= len(fired) <= 140  # 100 expected; far outside means the rate is not applied
    assert set(fired) == set(MIX_KINDS)
    mix = sim.faults.mix()
    assert mix is not None and mix["seen"] == 200 and sum(mix["fired"].values()) == len(fired)
    sim.faults.set_mix(0.5, seed=11, params={"slow": {"seconds": 0.01}})
    assert _mixed_faults(sim, 200) == first
    sim.faults.clear_mix()
    assert _mixed_faults(sim, 20) == [None] * 20 and sim.faults.mix() is None


def test_fault_mix_vendor_errors_are_the_vendors_transient_codes(sim):
    sim.faults.set_mix(1, seed=3, kinds=["vendor_error"])
    answers = [bill(sim, "hq-static-token", **ALL) for _ in range(30)]
    codes = {a["ret"] if a["ret"] != 200 else a["data"]["errors"]["code"] for a in answers}
    assert codes == set(sim.generic.transient_codes) == {500, 1001}


def test_fault_mix_reaches_logins_unless_told_and_yields_to_planned_faults(sim):
    acct = sim.generic.account("hq")
    sim.faults.set_mix(1, seed=1, kinds=["http_502"])
    response = post(sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey)
    assert response.status_code == 502
    sim.faults.set_mix(1, seed=1, kinds=["http_502"], applies_to="data")
    assert post(sim, service="App.Sip_Auth.Login", appid=acct.appid, accesskey=acct.accesskey).ok
    sim.faults.add("http_500")
    assert _mixed_faults(sim, 2) == ["http_500", "http_502"]


def test_fault_mix_rejects_bad_options(sim):
    for options, message in [
        ({"rate": 1.5}, "within 0..1"),
        ({"rate": 0.2, "kinds": ["nope"]}, "nope"),
        ({"rate": 0.2, "applies_to": "pages"}, "applies_to"),
    ]:
        with pytest.raises(ValueError, match=message):
            sim.faults.set_mix(**options)


def test_fault_mix_over_control_api_and_cli(tmp_path: Path):
    with Simulator(demo_accounts(calls=5), anchor=ANCHOR) as running:
        control = f"{running.url}/_control/fault-mix"
        assert requests.get(control, timeout=5).json() is None
        body = {"rate": 0.2, "seed": 5, "kinds": ["http_500", "truncate"]}
        assert requests.post(control, json=body, timeout=5).json()["seed"] == 5
        assert requests.get(control, timeout=5).json()["kinds"] == ["http_500", "truncate"]
        assert requests.post(control, json={"rate": 2}, timeout=5).status_code == 400
        assert requests.delete(control, timeout=5).json() == {"ok": True}
        assert running.faults.mix() is None
    args = build_parser().parse_args(["--fault-rate", "0.2", "--fault-seed", "9"])
    mix = build_simulator(args).faults.mix()
    assert mix is not None and (mix["rate"], mix["seed"], mix["kinds"]) == (0.2, 9, list(MIX_KINDS))
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"fault_mix": {"rate": 0.4, "params": {"slow": {"seconds": 3}}}}))
    mix = build_simulator(build_parser().parse_args(["--config", str(config)])).faults.mix()
    assert mix is not None and mix["rate"] == 0.4 and mix["params"] == {"slow": {"seconds": 3}}
    assert isinstance(mix["seed"], int)  # drawn, and printed so the run can be replayed


def test_parse_spec_and_bad_faults():
    assert parse_spec("http_429:times=2,after=1,retry_after=1.5") == {
        "kind": "http_429",
        "times": 2,
        "after": 1,
        "retry_after": 1.5,
    }
    assert parse_spec("vendor_error:code=1001,vendor=generic")["vendor"] == "generic"
    assert parse_spec("cut:service=cdr/get_random,at=0.25,vendor=yeastar") == {
        "kind": "cut", "service": "cdr/get_random", "at": 0.25, "vendor": "yeastar",
    }  # fmt: skip
    with Simulator([], anchor=ANCHOR) as s:
        for bad in (
            {"kind": "nope"},
            {"kind": "vendor_error"},
            {"kind": "slow", "applies_to": "x"},
        ):
            with pytest.raises(ValueError):
                s.faults.add(**bad)


# ---- ground truth, new calls, determinism ---------------------------------------------------


def test_same_seed_and_anchor_give_same_truth():
    def truth(seed: int, anchor: datetime = ANCHOR) -> list[dict]:
        return Simulator(demo_accounts(["a"], calls=50, seed=seed), anchor=anchor).generic.truth(
            "a"
        )

    assert truth(1) == truth(1)
    assert truth(1) != truth(2)
    assert truth(1) != truth(1, ANCHOR + timedelta(hours=1))
    both = Simulator(demo_accounts(calls=50), anchor=ANCHOR).generic
    hq_ids, branch_ids = (
        {r["id"] for r in both.truth("hq")},
        {r["id"] for r in both.truth("branch")},
    )
    assert not hq_ids & branch_ids and both.truth("hq") != both.truth("branch")


def test_add_calls_new_and_late(sim):
    old_max = max(r["id"] for r in sim.generic.truth("hq"))
    start = ANCHOR + timedelta(minutes=1)
    new = sim.generic.add_calls("hq", 5, start, start + timedelta(minutes=4))
    assert len(new) == 5 and min(r["id"] for r in new) > old_max
    assert all("2025-10-16 18:01:00" <= r["starttime"] <= "2025-10-16 18:05:00" for r in new)
    late_start = datetime(2025, 10, 12, 9, 0)  # naive = account-local wall time
    late = sim.generic.add_calls("hq", 2, late_start, late_start + timedelta(hours=1))
    assert min(r["id"] for r in late) > max(r["id"] for r in new)
    assert all(r["starttime"].startswith("2025-10-12 09:") for r in late)
    got = {r["id"] for r in bills(sim, "hq-static-token")}
    assert {r["id"] for r in new + late} <= got and len(got) == 207
    assert len(sim.generic.truth("hq")) == 207


# ---- control API ----------------------------------------------------------------------------


def test_control_endpoints(sim):
    base = f"{sim.url}/_control"
    assert requests.get(f"{base}/health", timeout=5).json() == {"ok": True}
    truth = requests.get(f"{base}/truth", params={"vendor": "generic", "account": "hq"}, timeout=5)
    assert truth.json() == sim.generic.truth("hq")
    payload = {
        "vendor": "generic",
        "account": "hq",
        "n": 3,
        "start": "2025-10-16T18:01:00+08:00",
        "end": "2025-10-16T10:03:00+00:00",
    }
    added = requests.post(f"{base}/calls", json=payload, timeout=5).json()
    assert len(added) == 3 and all(r["starttime"] >= "2025-10-16 18:01:00" for r in added)
    assert len(sim.generic.truth("hq")) == 203
    missing = requests.get(f"{base}/truth", params={"account": "zzz"}, timeout=5)
    assert missing.status_code == 404


def test_control_faults_and_request_log(sim):
    base = f"{sim.url}/_control"
    fault = requests.post(f"{base}/faults", json={"kind": "http_500", "times": 3}, timeout=5)
    assert fault.json()["kind"] == "http_500"
    assert len(requests.get(f"{base}/faults", timeout=5).json()) == 1
    assert requests.delete(f"{base}/faults", timeout=5).json() == {"ok": True}
    assert requests.post(f"{base}/faults", json={"kind": "bogus"}, timeout=5).status_code == 400
    for kind in ("cut", "empty"):
        made = requests.post(
            f"{base}/faults", json={"kind": kind, "service": "cdr/download", "at": 0.3}, timeout=5
        ).json()
        assert (made["kind"], made["service"], made["params"]) == (kind, "cdr/download", {"at": 0.3})
    assert requests.delete(f"{base}/faults", timeout=5).json() == {"ok": True}
    token = login(sim)
    bill(sim, token, **ALL)
    log = requests.get(f"{base}/requests", timeout=5).json()
    assert [(e["vendor"], e["path"], e["service"]) for e in log] == [
        ("generic", "/generic/", "App.Sip_Auth.Login"),
        ("generic", "/generic/", "App.Sip_Cdr.GetBill"),
    ]
    assert log[0]["params"]["accesskey"] == "***" and log[0]["params"]["appid"] == "hq-appid"
    assert log[1]["params"]["token"] == "***" and log[1]["params"]["syncflag"] == "3"
    assert token not in json.dumps(log)
    counts = requests.get(f"{base}/requests/counts", timeout=5).json()
    assert counts == {"total": 2, "by_service": {"App.Sip_Auth.Login": 1, "App.Sip_Cdr.GetBill": 1}}
    requests.delete(f"{base}/requests", timeout=5)
    assert sim.requests == []


def test_stop_drops_keepalive_connections_and_restart_keeps_the_port():
    sim = Simulator(demo_accounts(["a"], calls=5), anchor=ANCHOR).start()
    url = sim.url
    with requests.Session() as session:
        assert session.get(f"{url}/_control/health", timeout=5).ok
        sim.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{url}/_control/health", timeout=5)
        with sim.start():
            assert sim.url == url
            assert session.get(f"{url}/_control/health", timeout=5).ok


# ---- TLS (for vendors served over HTTPS) ------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_https_when_given_an_ssl_context(tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *shlex.split("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with Simulator(demo_accounts(["a"], calls=5), anchor=ANCHOR, ssl_context=context) as s:
        assert s.url.startswith("https://127.0.0.1:")
        health = requests.get(f"{s.url}/_control/health", verify=str(cert), timeout=5)
        assert health.json() == {"ok": True}
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{s.url}/_control/health", timeout=5)  # untrusted cert
        assert requests.get(f"{s.url}/_control/health", verify=str(cert), timeout=5).ok


# ---- CLI --------------------------------------------------------------------------------------


def test_cli_flags_build_the_simulator(tmp_path: Path):
    args = build_parser().parse_args(
        shlex.split(
            "--accounts x,y --calls 7 --doc-version v1 --seed 3 --anchor 2025-10-16T18:00:00+08:00"
            " --fault http_500:times=2,after=1 --fault vendor_error:code=1001"
            " --fault cut:service=cdr/download,vendor=yeastar,at=0.7 --fault empty:applies_to=any"
        )
    )
    sim = build_simulator(args)
    assert sim.generic.accounts() == ["x", "y"] and sim.anchor == ANCHOR
    assert len(sim.generic.truth("y")) == 7 and "displaynumber" in sim.generic.truth("y")[0]
    assert [(f["kind"], f["times"], f["after"], f["service"]) for f in sim.faults.active()] == [
        ("http_500", 2, 1, ""),
        ("vendor_error", 1, 0, ""),
        ("cut", 1, 0, "cdr/download"),
        ("empty", 1, 0, ""),
    ]
    config = tmp_path / "sim.json"
    config.write_text(
        json.dumps(
            {
                "generic": [
                    {"name": "c", "appid": "i", "accesskey": "k", "calls": 4, "timezone": "UTC"}
                ],
                "anchor": "2025-10-16T10:00:00Z",
            }
        )
    )
    from_file = build_simulator(build_parser().parse_args(["--config", str(config)]))
    assert from_file.generic.accounts() == ["c"] and len(from_file.generic.truth("c")) == 4


def test_cli_print_truth():
    out = subprocess.run(
        [*SIMULATOR, *shlex.split("--print-truth --calls 4 --anchor 2025-10-16T10:00:00Z")],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    ).stdout.splitlines()
    lines = [json.loads(line) for line in out]
    assert len(lines) == 8 and {x["account"] for x in lines} == {"hq", "branch"}
    assert lines[0]["vendor"] == "generic" and "disnumber" in lines[0]["record"]


def test_cli_serves_until_terminated():
    command = [*SIMULATOR, "--port", "0", "--calls", "5"]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    ) as proc:
        try:
            line = _readline(proc, timeout=10)
            match = re.fullmatch(
                r"callcdr-simulator listening on (http://127\.0\.0\.1:\d+)\n", line
            )
            assert match, line
            assert requests.get(f"{match[1]}/_control/health", timeout=5).json() == {"ok": True}
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("simulator did not print its listening line in time")
    return proc.stdout.readline()


def test_late_calls_fault_adds_calls_that_started_in_the_past() -> None:
    with Simulator(demo_accounts(["hq"], calls=10)) as sim:
        before = len(sim.generic.truth("hq"))
        sim.faults.add("late_calls", n=3, minutes=30)
        form = {"service": "App.Sip_Cdr.GetBill", "token": "hq-static-token",
                "starttime": "2020-01-01 00:00:00", "endtime": "2020-01-02 00:00:00"}  # fmt: skip
        requests.post(f"{sim.url}/generic/", data=form, timeout=5)
        truth = sim.generic.truth("hq")
        assert len(truth) == before + 3
        newest = datetime.fromisoformat(truth[-1]["starttime"]).replace(tzinfo=SHANGHAI)
        assert datetime.now(UTC) - newest < timedelta(minutes=31)


def test_control_adds_itnio_calls_to_the_endpoint_asked_for() -> None:
    itnio = itnio_demo_accounts(("intl",), calls=5, group_calls=2, days=2)
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)  # ITNIO keeps 2 months
    with Simulator(itnio, anchor=recent) as s:
        base = f"{s.url}/_control/calls"
        when = {"start": recent.isoformat(), "end": (recent + timedelta(hours=1)).isoformat()}

        def add(**fields: object) -> requests.Response:
            return requests.post(base, json={"vendor": "itnio", "n": 2, **when, **fields}, timeout=5)

        sip = add().json()  # no field: SIP calls, as before
        group = add(stream="itnio_group_cdr").json() + add(endpoint="recordGroupQuery").json()
        group += add(stream="itnio_group_cdr", endpoint="recordGroupQuery").json()
        more_sip = add(endpoint="itnio_sip_cdr").json()
        ids = lambda rows: {r["voiceId"] for r in rows}  # noqa: E731
        assert ids(group) <= ids(s.itnio.truth("intl", GROUP)) and len(ids(group)) == 6
        assert ids(sip + more_sip) <= ids(s.itnio.truth("intl", SIP))
        assert all("baseCost" in r for r in group) and not any("baseCost" in r for r in sip)
        assert len(s.itnio.truth("intl", GROUP)) == 2 + 6 and len(s.itnio.truth("intl", SIP)) == 5 + 4
        for bad in ({"stream": "itnio_cdr"}, {"stream": "itnio_sip_cdr", "endpoint": GROUP}):
            refused = add(**bad)
            assert refused.status_code == 400 and "itnio_group_cdr" in refused.json()["error"]
    with Simulator(demo_accounts(["hq"], calls=1), anchor=ANCHOR) as s:
        answer = requests.post(f"{s.url}/_control/calls", json={"stream": GROUP}, timeout=5)
        assert answer.status_code == 400 and "itnio" in answer.json()["error"]


def test_one_vendor_table_drives_the_simulator_its_cli_and_the_tests() -> None:
    """Every vendor of the tap is simulated, with its CLI flag and its row in tests/vendors.py;
    an account of no simulated vendor is refused naming its type."""
    names = {vendor.name for vendor in VENDORS}
    assert names == {vendor.key for vendor in TAP_VENDORS}
    assert set(VENDOR_NAMES) == names
    flags = {flag for action in build_parser()._actions for flag in action.option_strings}
    assert {f"--{name}-accounts" for name in names} <= flags
    assert build_parser().parse_args(["--accounts", "x"]).generic_accounts == "x"
    sim = Simulator([], anchor=ANCHOR)
    assert set(sim.vendors) == names and sim.itnio is sim.vendors["itnio"]
    with pytest.raises(TypeError, match=r"^object is no simulated vendor's account"):
        Simulator([object()], anchor=ANCHOR)


def test_the_vendor_table_lands_every_stream_of_every_vendor_end_to_end() -> None:
    """The e2e and chaos tests land the streams tests/vendors.py lists: each vendor's helper
    must name every stream the tap has for it, with its keys among the columns it checks."""
    for tested in TESTED:
        [spec] = [vendor for vendor in TAP_VENDORS if vendor.key == tested.name]
        assert {stream.name for stream in tested.streams} == {s.name for s in spec.streams}, tested.name
        for stream in tested.streams:
            assert STREAMS[stream.name] == (tested, stream)
            assert stream.identity[0] == stream.key[0] == "account", stream.name
            assert stream.replication_key in stream.time_columns, stream.name
        assert tested.e2e_accounts(2) and tested.credentials, tested.name


def test_a_vendor_without_end_to_end_facts_fails_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new vendor whose helper has only tap_config would pass every test but the e2e ones,
    which it would silently skip: tests/vendors.py refuses it, naming the helper and facts."""
    helpers = ModuleType("fifth_helpers")
    helpers.tap_config = lambda sim, **_: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fifth_helpers", helpers)
    fifth = type("FifthVendor", (), {"name": "fifth"})
    with pytest.raises(ImportError, match=r"^tests/fifth_helpers.py has no end-to-end facts \['e2e_acc"):
        vendors._tested(fifth)
    for fact in vendors.E2E_FACTS:
        setattr(helpers, fact, ())
    with pytest.raises(ImportError, match=r"no end-to-end facts \['E2E_STREAMS'\]"):
        vendors._tested(fifth)
    helpers.E2E_STREAMS = ("a stream",)  # type: ignore[attr-defined]
    with pytest.raises(ImportError, match=r"^tests/fifth_helpers.py has no FAKE_ACCOUNT"):
        vendors._tested(fifth)  # else test_strict_input would leave it out
    helpers.FAKE_ACCOUNT = {}  # type: ignore[attr-defined]
    assert vendors._tested(fifth).name == "fifth"


def test_cli_config_help_names_every_vendor_key() -> None:
    [config] = [a for a in build_parser()._actions if "--config" in a.option_strings]
    assert config.help is not None
    for key in (*VENDOR_NAMES, "anchor", "faults", "fault_mix"):
        assert f'"{key}"' in config.help


def test_cli_https_writes_its_test_ca_to_a_fresh_dir_per_process(capsys: pytest.CaptureFixture[str]) -> None:
    folders = []
    for _ in range(2):
        args = build_parser().parse_args(["--https", "--calls", "1"])
        build_simulator(args)
        assert args.ca_file.name == "ca.pem" and args.ca_file.is_file()
        assert f"test CA (a client's ca_bundle): {args.ca_file}" in capsys.readouterr().err
        folders.append(args.ca_file.parent)
    assert folders[0] != folders[1] and Path(tempfile.gettempdir()) not in folders
    code = "from callcdr_simulator import cli; a = cli.build_parser().parse_args(['--https']); " \
        "cli.build_simulator(a); print(a.ca_file)"  # fmt: skip
    printed = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert printed.stdout.strip() and not Path(printed.stdout.strip()).parent.exists(), "removed on exit"


def test_control_error_names_an_unknown_account_in_full() -> None:
    """A KeyError's message is given as it is: one ending in a quoted name keeps its last quote."""
    with Simulator(demo_accounts(["hq"], calls=1), anchor=ANCHOR) as s:
        body = {"vendor": "generic", "account": "nope", "n": 1}
        answer = requests.post(f"{s.url}/_control/calls", json=body, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"] == "unknown generic account 'nope'"


def test_a_burst_of_connections_waits_in_the_listen_queue() -> None:
    """The benchmark's 1,000 accounts connect 64 or more at a time: with the standard
    library's listen backlog of 5, connections beyond it were dropped while the server was
    busy (each retried its SYN a second later), so the simulator, not the tap, set the pace."""
    burst = 48
    with Simulator([]) as sim, sim._server._connections_lock, contextlib.ExitStack() as stack:  # type: ignore[union-attr]
        # the accept loop now waits (process_request takes this lock): only the queue holds them
        for _ in range(burst):
            stack.enter_context(socket.create_connection(("127.0.0.1", sim.port), timeout=5))
