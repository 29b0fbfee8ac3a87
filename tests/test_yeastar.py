"""yeastar_cdr against the simulated PBX over real HTTPS sockets: completeness, the CSV quirks,
login and token rules, every errno, truncated downloads, TLS settings and resuming."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import ssl
import tracemalloc
import typing as t
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import trustme
from callcdr_simulator import Simulator, SimulatorTLS, simulator_tls
from callcdr_simulator.yeastar import yeastar_demo_accounts
from harness import ExpectedError, run_cli, run_tap
from hypothesis import given, settings
from hypothesis import strategies as st
from yeastar_helpers import (
    ANCHOR,
    STREAM,
    assert_complete,
    bookmark,
    expected,
    key,
    requests_to,
    start,
    tap_config,
)

from tap_callcdr.core.errors import (
    ConfigError,
    IncompleteAnswerError,
    MalformedResponseError,
    RenewalRejectedError,
    TransientVendorError,
    VendorError,
)
from tap_callcdr.core.redact import scrub
from tap_callcdr.core.windows import Window, iso_utc
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.vendors.yeastar import csvfile
from tap_callcdr.vendors.yeastar.auth import YeastarTokenAuthenticator
from tap_callcdr.vendors.yeastar.columns import CSV_COLUMNS
from tap_callcdr.vendors.yeastar.records import _json_text, row_id
from tap_callcdr.vendors.yeastar.transport import api_base, with_query

DOWNLOAD, RANDOM, LOGIN = "cdr/download", "cdr/get_random", "login"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SimulatorTLS:
    return simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")


@pytest.fixture
def sim(tls: SimulatorTLS) -> Iterator[Simulator]:
    simulator = start(tls, yeastar_demo_accounts(["pbx1", "pbx2"], calls=200))
    yield simulator
    simulator.stop()


def run(
    sim: Simulator,
    tls: SimulatorTLS,
    *names: str,
    expect_error: ExpectedError | None = None,
    **overrides: t.Any,
) -> t.Any:
    config = tap_config(sim, *names, ca_file=tls.ca_file, **overrides)
    return run_tap(config, expect_error=expect_error)


# -- completeness and shape ---------------------------------------------------------------


def test_every_row_of_every_pbx_lands_once_in_utc_over_verified_tls(sim, tls) -> None:
    result = run(sim, tls)
    assert result.error is None
    records = result.records(STREAM)
    assert_complete(sim, records)
    assert {r["account"] for r in records} == {"pbx1", "pbx2"}
    assert all(isinstance(r["callduraction"], int) for r in records)


def test_transferred_legs_share_callid_but_get_their_own_row_id(sim, tls) -> None:
    records = run(sim, tls, "pbx1").records(STREAM)
    legs = Counter(r["callid"] for r in records)
    callid = next(c for c, n in legs.items() if n == 2)
    ids = {r["row_id"] for r in records if r["callid"] == callid}
    assert len(ids) == 2
    again = run(sim, tls, "pbx1").records(STREAM)  # stable: reruns upsert, never duplicate
    assert {r["row_id"] for r in again} == {r["row_id"] for r in records}


def test_nine_oclock_shanghai_is_one_oclock_utc_and_zones_are_honoured(tls) -> None:
    accounts = yeastar_demo_accounts(["sh"], calls=0)
    accounts += yeastar_demo_accounts(["ny"], calls=40, timezone="America/New_York")
    with start(tls, accounts) as sim:
        sim.yeastar.add_calls("sh", 1, dt.datetime(2026, 11, 20, 9), dt.datetime(2026, 11, 20, 9))
        config = tap_config(sim, "sh", ca_file=tls.ca_file, start_date="2026-11-19T00:00:00Z")
        [first, *_] = run_tap(config).records(STREAM)
        assert first["timestart"] == "2026-11-20T01:00:00Z"
        assert_complete(sim, run(sim, tls, "ny").records(STREAM), "ny")


@pytest.mark.parametrize("bom_crlf", [True, False])
def test_csv_quirks_bom_crlf_quotes_chinese_new_and_missing_columns(tls, caplog, bom_crlf) -> None:
    accounts = yeastar_demo_accounts(
        ["new"], calls=120, bom=bom_crlf, crlf=bom_crlf, extra_columns=["callername", "Uniqueid"]
    )
    accounts += yeastar_demo_accounts(["old"], calls=80, missing_columns=["pincode", "sn"])
    with start(tls, accounts) as sim:
        with caplog.at_level(logging.WARNING):
            records = run(sim, tls).records(STREAM)
        assert_complete(sim, records)
    new = [r for r in records if r["account"] == "new"]
    assert all(set(r["extra"]) == {"callername", "Uniqueid"} for r in new)
    assert any("," in r["extra"]["callername"] for r in new)  # quoted commas survive
    assert any("中国电信, 主线" in (r["srctrunkname"], r["dsttrunkname"]) for r in new)
    old = [r for r in records if r["account"] == "old"]
    assert all(r["pincode"] is None and r["sn"] is None and r["extra"] is None for r in old)
    assert "has no column(s) ['pincode', 'sn']" in caplog.text


def test_extid_and_inclusive_local_windows_reach_the_pbx(sim, tls) -> None:
    config = tap_config(sim, "pbx1", ca_file=tls.ca_file, days=2, window_hours=6)
    config["yeastar_accounts"][0]["extid"] = "1000, 1001"
    records = run_tap(config).records(STREAM)
    assert records
    assert all({r["callfrom"], r["callto"]} & {"1000", "1001"} for r in records)
    asked = [r["params"] for r in requests_to(sim, RANDOM)]
    assert {p["extid"] for p in asked} == {"1000,1001"}
    starts = [dt.datetime.fromisoformat(p["starttime"]) for p in asked]
    ends = [dt.datetime.fromisoformat(p["endtime"]) for p in asked]
    spans = zip(starts[:-1], ends[:-1], strict=True)  # the last window stops at "now"
    assert all(e - s == dt.timedelta(hours=6, seconds=-1) for s, e in spans)
    assert all(n - e == dt.timedelta(seconds=1) for e, n in zip(ends, starts[1:], strict=False))
    assert starts[0].replace(tzinfo=SHANGHAI) == ANCHOR - dt.timedelta(days=2)


def test_query_spaces_are_percent_20_and_secrets_are_masked_in_messages() -> None:
    url = with_query("https://pbx:8088/api/v1.1.0/cdr/download", {"endtime": "2026-01-02 03:04:05"})
    assert url.endswith("?endtime=2026-01-02%2003:04:05")
    assert api_base({"api_url": "https://10.0.0.5"}) == "https://10.0.0.5:8088/api/v1.1.0/"
    oem = {"api_url": "https://pbx.lan:443/", "api_version": "v0.0.1"}
    assert api_base(oem) == "https://pbx.lan:443/api/v0.0.1/"
    text = "Max retries exceeded with url: /cdr/download?extid=all&token=abc&random=def (x)"
    assert scrub(text).endswith("/cdr/download?extid=all&token=***&random=*** (x)")


# -- login and tokens --------------------------------------------------------------------------


def test_wrong_password_stops_after_one_login_attempt(sim, tls) -> None:
    result = run(sim, tls, "pbx1", account={"password": "wrong"}, expect_error=VendorError)
    assert isinstance(result.error, VendorError)
    message = str(result.error)
    assert "\n" not in message and "pbx1" in message and "errno 20003" in message
    assert "'password'" in message
    assert len(requests_to(sim, LOGIN)) == 1 and not requests_to(sim, RANDOM)
    assert bookmark(result.last_state, "pbx1") is None


def test_five_failed_logins_lock_the_api_and_the_tap_says_so(sim, tls) -> None:
    for _ in range(5):  # five separate runs, e.g. a scheduler retrying a misconfigured tap
        wrong = run(sim, tls, "pbx1", account={"password": "wrong"}, expect_error=VendorError)
        assert "20003" in str(wrong.error)
    # the right password, but locked out for 10 minutes
    result = run(sim, tls, "pbx1", expect_error=VendorError)
    assert isinstance(result.error, VendorError)
    assert "errno 20002" in str(result.error) and "locked" in str(result.error)
    assert len(requests_to(sim, LOGIN)) == 6


def test_token_expiry_mid_run_logs_in_again_once(sim, tls) -> None:
    sim.faults.add("expire_tokens", vendor="yeastar", after=1)  # before the download
    result = run(sim, tls, "pbx1")
    assert result.error is None
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert len(requests_to(sim, LOGIN)) == 2


def test_random_faults_do_not_spend_the_windows_retries(sim, tls) -> None:
    """get_random has its own retries: 3 faults there and 3 on the download fit max_retries 3
    (a window retried as a whole would give up after 4 tries of the pair)."""
    sim.faults.add("http_500", vendor="yeastar", service=RANDOM, times=3)
    sim.faults.add("http_500", vendor="yeastar", service=DOWNLOAD, times=3)
    result = run(sim, tls, "pbx1")  # max_retries 3
    assert_complete(sim, result.records(STREAM), "pbx1")
    faulted = [r["service"] for r in sim.requests if r["fault"] == "http_500"]
    assert faulted.count(RANDOM) == 3 and faulted.count(DOWNLOAD) == 3


def test_token_rejected_right_after_a_fresh_login_is_retried_after_a_wait(sim, tls) -> None:
    sim.faults.add("vendor_error", vendor="yeastar", code=20004, times=2)
    result = run(sim, tls, "pbx1")
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert len(requests_to(sim, LOGIN)) == 3


def test_a_token_never_accepted_stops_after_max_retries(sim, tls) -> None:
    sim.faults.add("vendor_error", vendor="yeastar", code=20004, times=-1)
    result = run(sim, tls, "pbx1", expect_error=RenewalRejectedError)  # max_retries 3
    assert "rejected again after a new login" in str(result.error) and "pbx1" in str(result.error)
    assert len(requests_to(sim, LOGIN)) == 3 + 1  # a new login for every try


def test_logins_whose_answer_is_lost_stop_before_the_lock(sim, tls) -> None:
    """5 failed logins lock the PBX's API; a lost answer may have been one: a 5th is not
    sent, whatever max_retries allows."""
    sim.faults.add("cut", vendor="yeastar", service=LOGIN, times=-1)
    result = run(sim, tls, "pbx1", max_retries=10, expect_error=VendorError)
    assert "4 logins in a row got no answer" in str(result.error) and "pbx1" in str(result.error)
    assert len(requests_to(sim, LOGIN)) == 4


@pytest.mark.parametrize(
    "fault", [{"kind": "vendor_error", "code": 10025}, {"kind": "http_429"}], ids=["busy", "429"]
)
def test_logins_the_pbx_answers_busy_are_not_counted_as_lost(sim, tls, fault) -> None:
    """A login the PBX answered "busy" (its own code) or 429 reached no failed-login count: it
    is retried like any transient answer, never taken for a lost answer (which may have been a
    failed login), so 5 of them do not stop the account (the chaos test met 4 in a row)."""
    kind = fault.pop("kind")
    sim.faults.add(kind, vendor="yeastar", service=LOGIN, times=5, **fault)
    result = run(sim, tls, "pbx1", max_retries=10)
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert len(requests_to(sim, LOGIN)) == 6


def test_idle_token_gets_a_heartbeat_and_a_dead_one_a_new_login(sim, tls, monkeypatch) -> None:
    monkeypatch.setattr(YeastarTokenAuthenticator, "keepalive_after", -1.0)  # always "idle"
    sim.faults.add("expire_tokens", vendor="yeastar", applies_to="login", after=2)
    result = run(sim, tls, "pbx1", window_hours=48)
    assert result.error is None
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert len(requests_to(sim, "heartbeat")) > 2
    assert len(requests_to(sim, LOGIN)) == 2  # the heartbeat found the token dead: one re-login


# -- the request METRIC ------------------------------------------------------------------------


def request_metric(log: str) -> int:
    """What the tap's METRIC lines say it requested (the sum of every http_request_count)."""
    points = [json.loads(line.split("METRIC: ", 1)[1]) for line in log.splitlines() if "METRIC: " in line]
    return sum(p["value"] for p in points if p["metric"] == "http_request_count")


def test_metric_counts_every_request_login_heartbeat_and_retries_included(
    sim, tls, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(YeastarTokenAuthenticator, "keepalive_after", -1.0)  # heartbeats
    sim.faults.add("expire_tokens", vendor="yeastar", applies_to="login", after=2)  # a re-login
    sim.faults.add("vendor_error", vendor="yeastar", code=20020, after=3)  # a window read twice
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        result = run(sim, tls, window_hours=48)  # two PBXs, read in parallel threads
    assert result.error is None
    seen = Counter(r["service"] for r in sim.requests)
    assert seen[LOGIN] >= 3 and seen["heartbeat"] > 2 and seen[DOWNLOAD] > 4
    # The 20020 hit a random or a download, whichever thread came first: either way retried.
    assert [r["service"] for r in sim.requests if r["fault"] == "vendor_error"] in ([RANDOM], [DOWNLOAD])
    assert request_metric(caplog.text) == len(sim.requests)


def test_metric_lines_a_meltano_user_sees_add_up_to_the_requests(sim, tls) -> None:
    result = run_cli(tap_config(sim, "pbx1", ca_file=tls.ca_file, window_hours=72))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sim.requests) == 1 + 2 * 3  # login, then get_random + download for 3 windows
    assert request_metric(result.stderr) == len(sim.requests)


# -- the download: errnos, truncation -----------------------------------------------------------


def test_expired_random_20020_gets_a_new_random(sim, tls) -> None:
    sim.faults.add("vendor_error", vendor="yeastar", code=20020, after=1)  # the first download
    result = run(sim, tls, "pbx1")
    assert result.error is None
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert len(requests_to(sim, RANDOM)) == len(requests_to(sim, DOWNLOAD)) == 2


def test_a_random_that_always_expires_gives_up_with_one_line(tls) -> None:
    with start(tls, yeastar_demo_accounts(["slow"], calls=20, random_ttl_seconds=-1)) as sim:
        result = run(sim, tls, expect_error=TransientVendorError)
    assert "errno 20020" in str(result.error) and "\n" not in str(result.error)
    assert result.records(STREAM) == [] and bookmark(result.last_state, "slow") is None


def test_no_cdr_in_range_20021_is_an_empty_window(tls) -> None:
    with start(tls, yeastar_demo_accounts(["quiet"], calls=0)) as sim:
        result = run(sim, tls)
        assert result.error is None and result.records(STREAM) == []
        assert len(requests_to(sim, DOWNLOAD)) == 1  # answered 20021, not retried
    assert bookmark(result.last_state, "quiet") is not None  # every window read completely


def test_bad_time_format_20019_is_fatal_and_keeps_the_bookmark_of_finished_windows(sim, tls):
    sim.faults.add("vendor_error", vendor="yeastar", code=20019, after=6)  # 4th window's random
    result = run(sim, tls, "pbx1", days=5, window_hours=24, expect_error=VendorError)
    assert isinstance(result.error, VendorError) and "errno 20019" in str(result.error)
    assert len(requests_to(sim, RANDOM)) == 4  # not retried
    mark = bookmark(result.last_state, "pbx1")
    fourth = dt.datetime.fromisoformat(requests_to(sim, RANDOM)[3]["params"]["starttime"])
    assert mark == iso_utc(fourth.replace(tzinfo=SHANGHAI))  # the end of the third window
    start = iso_utc(ANCHOR - dt.timedelta(days=5))
    due = {k for k, v in expected(sim, "pbx1").items() if start <= v["timestart"] < mark}
    assert due == set(map(key, result.records(STREAM)))


@pytest.mark.parametrize("errno", [10025, 30003])
def test_busy_pbx_errnos_back_off_then_succeed(sim, tls, errno) -> None:
    sim.faults.add("vendor_error", vendor="yeastar", code=errno, times=2, after=1)
    result = run(sim, tls, "pbx1")
    assert result.error is None
    assert_complete(sim, result.records(STREAM), "pbx1")
    assert sum(r["fault"] == "vendor_error" for r in sim.requests) == 2


def test_truncated_download_is_fetched_again_with_a_new_random(sim, tls) -> None:
    sim.faults.add("truncate", vendor="yeastar", after=1)  # cut the first CSV file mid-way
    result = run(sim, tls, "pbx1")
    assert result.error is None
    assert_complete(sim, result.records(STREAM), "pbx1")  # nothing twice, nothing lost
    downloads = requests_to(sim, DOWNLOAD)
    assert downloads[0]["fault"] == "truncate" and len(requests_to(sim, RANDOM)) == 2


def test_downloads_cut_every_time_never_advance_the_bookmark(sim, tls) -> None:
    sim.faults.add("truncate", vendor="yeastar", times=-1)
    result = run(sim, tls, "pbx1", expect_error=TransientVendorError)
    assert result.error is not None and "\n" not in str(result.error)
    assert result.records(STREAM) == [] and bookmark(result.last_state, "pbx1") is None


def test_html_instead_of_json_is_retried_then_one_clear_line(sim, tls) -> None:
    sim.faults.add("malformed", vendor="yeastar", times=-1)  # a 2xx HTML page: retried first
    result = run(sim, tls, "pbx1", expect_error=IncompleteAnswerError)
    assert isinstance(result.error, IncompleteAnswerError)
    assert "answer is not JSON" in str(result.error) and "pbx1" in str(result.error)


def test_a_corrupt_csv_row_stops_the_run_instead_of_shifting_columns(tls, monkeypatch) -> None:
    with start(tls, yeastar_demo_accounts(["bad"], calls=30)) as sim:
        pbx = sim.yeastar._pbx("bad")
        pbx.rows[3].values["callto"] = "1001"
        real = pbx.csv_bytes
        corrupt = lambda rows: real(rows).replace(b",1001,", b",10,01,", 1)  # noqa: E731
        monkeypatch.setattr(pbx, "csv_bytes", corrupt)
        result = run(sim, tls, expect_error=MalformedResponseError)
    assert isinstance(result.error, MalformedResponseError)
    assert "fields, the header 14" in str(result.error)


# -- memory ----------------------------------------------------------------------------------


def test_memory_stays_flat_while_a_large_file_is_read(tls, monkeypatch) -> None:
    """Past the spool size the file is on disk and rows are parsed one by one."""
    spools: list[t.Any] = []
    real_spool = csvfile.spool
    monkeypatch.setattr(csvfile, "spool", lambda *a: spools.append(real_spool(*a)) or spools[-1])
    with start(tls, yeastar_demo_accounts(["big"], calls=12000, days=1)) as sim:
        tap = TapCallCDR(config=tap_config(sim, ca_file=tls.ca_file), validate_config=True)
        stream = tap.streams[STREAM]
        context = {"account": "big"}
        window = Window(sim.anchor - dt.timedelta(days=2), sim.anchor)
        size = len(sim.yeastar._pbx("big").csv_bytes(sim.yeastar._pbx("big").rows))
        rows = stream.records_in_window(stream.account(context), window)
        first = next(rows)  # the download is spooled by now
        tracemalloc.start()
        try:
            count = 1 + sum(1 for row in rows if stream.post_process(row, context))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert first and count == len(sim.yeastar.truth("big"))
    assert spools[0]._rolled  # the body went to a temporary file, not memory
    assert size > 1_500_000 and peak < size / 10


# -- TLS ---------------------------------------------------------------------------------------


def test_without_ca_bundle_the_cli_fails_with_one_line_naming_the_setting(sim) -> None:
    done = run_cli(tap_config(sim, "pbx1", ca_file=None))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]  # the tap's own verdict, after the SDK's generic line
    assert "| ERROR" in last and "yeastar_accounts[0].ca_bundle" in last and "not trusted" in last
    assert not requests_to(sim, LOGIN)  # the handshake failed: no password was sent


def test_certificate_for_another_name_points_at_api_url(tls, tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)  # not "localhost"
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    accounts = yeastar_demo_accounts(["pbx1"], calls=5)
    with Simulator(accounts, anchor=ANCHOR, ssl_context=context) as sim:
        url = sim.url.replace("127.0.0.1", "localhost") + "/yeastar/pbx1"
        config = tap_config(sim, ca_file=tmp_path / "ca.pem", account={"api_url": url})
        result = run_tap(config, expect_error=VendorError)
    assert isinstance(result.error, VendorError) and "mismatch" in str(result.error)
    assert "'yeastar_accounts[0].api_url'" in str(result.error)


def test_verify_tls_false_works_loudly_and_no_secret_reaches_the_logs(sim) -> None:
    sim.faults.add("http_500", vendor="yeastar", after=1)
    sim.faults.add("truncate", vendor="yeastar", after=3)
    sim.faults.add("vendor_error", vendor="yeastar", code=20020, after=5)
    config = tap_config(sim, "pbx1", ca_file=None, account={"verify_tls": False})
    done = run_cli(config)
    assert done.returncode == 0, done.stderr
    assert_complete(sim, done.records(STREAM), "pbx1")
    assert "TLS certificate verification is OFF" in done.stderr
    assert "Retrying" in done.stderr  # the faults did produce log lines
    password = sim.yeastar.account("pbx1").password
    secrets = [password, hashlib.md5(password.encode()).hexdigest(), *sim.yeastar.issued]
    output = done.stderr + str(done.messages)
    assert [s for s in secrets if s in output] == []


def test_pbx_gone_mid_run_gives_up_in_one_line_without_the_token(sim, tls, caplog, monkeypatch):
    """Connection errors quote the URL, and the URL carries ?token=: it must be masked."""
    download = sim.yeastar._download

    def vanish(pbx: t.Any, request: t.Any) -> t.Any:  # the PBX reboots mid-download
        sim.stop()
        return download(pbx, request)

    monkeypatch.setattr(sim.yeastar, "_download", vanish)
    with caplog.at_level(logging.INFO):
        result = run(sim, tls, "pbx1", expect_error=TransientVendorError)
    message = str(result.error)
    assert "\n" not in message and "pbx1" in message and "Connection refused" in message
    assert not [s for s in sim.yeastar.issued if s in message or s in caplog.text]
    assert result.records(STREAM) == [] and bookmark(result.last_state, "pbx1") is None


def test_discovery_declares_the_password_secret(sim) -> None:
    schema = TapCallCDR.config_jsonschema["properties"]["yeastar_accounts"]["items"]
    assert schema["properties"]["password"].get("secret") is True


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"password": ""}, "yeastar_accounts[0].password"),
        ({"extid": "1000;1001"}, "yeastar_accounts[0].extid"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "yeastar_accounts[0].ca_bundle"),
        ({"verify_tls": False}, "yeastar_accounts[0].verify_tls"),  # with a ca_bundle
        ({"api_url": "https://10.0.0.5:8088/api/v1.1.0"}, "yeastar_accounts[0].api_url"),
        ({"api_version": "1.1"}, "yeastar_accounts[0].api_version"),
        ({"csv_encoding": "klingon"}, "yeastar_accounts[0].csv_encoding"),
    ],
)
def test_bad_account_settings_are_named(sim, tls, change, setting) -> None:
    result = run(sim, tls, "pbx1", account=change, expect_error=ConfigError)
    assert isinstance(result.error, ConfigError) and f"'{setting}'" in str(result.error)
    assert not sim.requests


def test_wrong_api_version_is_a_hint_and_oem_v0_0_1_works(tls) -> None:
    with start(tls, yeastar_demo_accounts(["oem"], calls=30, api_version="v0.0.1")) as sim:
        wrong = run(sim, tls, account={"api_version": "v1.1.0"}, expect_error=VendorError)
        right = run(sim, tls)
        assert_complete(sim, right.records(STREAM))
    assert isinstance(wrong.error, VendorError) and "HTTP 404" in str(wrong.error)
    assert "'yeastar_accounts[0].api_version'" in str(wrong.error)  # the setting's full path


# -- runs and resuming -------------------------------------------------------------------------


def test_second_run_reads_from_bookmark_minus_lookback_and_gets_late_calls(sim, tls) -> None:
    config = tap_config(sim, "pbx1", ca_file=tls.ca_file, lookback_minutes=60)
    first = run_tap(config)
    mark = dt.datetime.fromisoformat(bookmark(first.last_state, "pbx1"))
    sim.clear_requests()
    late = sim.yeastar.add_calls("pbx1", 3, mark - dt.timedelta(minutes=50), mark)
    second = run_tap(config, state=first.last_state)
    got = set(map(key, second.records(STREAM)))
    late_ids = {c["callid"] for c in late}
    assert {k for k in expected(sim, "pbx1") if k[1] in late_ids} <= got
    window_start = dt.datetime.fromisoformat(requests_to(sim, RANDOM)[0]["params"]["starttime"])
    assert window_start.replace(tzinfo=SHANGHAI) == mark - dt.timedelta(minutes=60)
    assert len(got & set(map(key, first.records(STREAM)))) < len(first.records(STREAM)) / 10


def test_far_future_state_returns_nothing(sim, tls) -> None:
    state = {
        "bookmarks": {
            STREAM: {
                "partitions": [
                    {
                        "context": {"account": "pbx1"},
                        "replication_key": "timestart",
                        "replication_key_value": "2099-01-01T00:00:00Z",
                    }
                ]
            }
        }
    }
    # raises if the run did not finish cleanly
    result = run_tap(tap_config(sim, "pbx1", ca_file=tls.ca_file), state=state)
    assert result.records(STREAM) == [] and not sim.requests
    assert bookmark(result.last_state, "pbx1") == "2099-01-01T00:00:00Z"


# -- the simulator's own protocol ----------------------------------------------------------------


def test_simulator_random_is_single_use_and_bound_to_its_query(sim, tls) -> None:
    base = f"{sim.url}/yeastar/pbx1/api/v1.1.0/"
    ca = str(tls.ca_file)
    password = hashlib.md5(b"pbx1-S3cr3t").hexdigest()
    login = requests.post(base + "login", json={"username": "api", "password": password}, verify=ca)
    token = login.json()["token"]
    query = {"extid": "all", "starttime": "2000-01-01 00:00:00", "endtime": "2099-01-01 00:00:00"}

    def download(random: str, **change: str) -> requests.Response:
        params = {**query, "token": token, "random": random, **change}
        return requests.get(base + "cdr/download", params=params, verify=ca, timeout=5)

    def get_random(body: dict[str, str]) -> dict[str, str]:
        url = base + "cdr/get_random"
        return requests.post(url, params={"token": token}, json=body, verify=ca, timeout=5).json()

    def new_random() -> str:
        return get_random(query)["random"]

    random = new_random()
    assert download(random).content.startswith(b"\xef\xbb\xbfcallid,timestart,")
    assert download(random).json() == {"status": "Failed", "errno": "20020"}  # used
    assert download(new_random(), extid="1000").json()["errno"] == "20020"  # other query
    assert get_random({**query, "starttime": "2000-01-01T00:00:00"})["errno"] == "20019"
    assert requests.get(base + "login", verify=ca).json()["errno"] == "20001"
    assert download(new_random(), token="nope").json()["errno"] == "20004"
    assert requests.get(f"{sim.url}/yeastar/pbx1/api/v9/login", verify=ca).status_code == 404


def test_simulator_csv_rows_round_trip_through_the_tap_reader(tls, tmp_path: Path) -> None:
    with start(tls, yeastar_demo_accounts(["r"], calls=50, extra_columns=["备注"])) as sim:
        pbx = sim.yeastar._pbx("r")
        spool = tmp_path / "cdr.csv"
        spool.write_bytes(pbx.csv_bytes(pbx.rows))
        with csvfile.CdrTable(spool.open("rb"), encoding="utf-8", describe=str) as rows:
            assert rows.header[0] == "callid" and "备注" in rows.header
            assert list(rows) == sim.yeastar.truth("r")


def test_secrets_never_reach_logs_or_records_even_at_debug(sim, tls) -> None:
    """The token and random travel in URLs, which urllib3 logs at DEBUG: masked there too."""
    sim.faults.add("http_500", vendor="yeastar", after=1)  # a retry log line quoting the request
    config = tap_config(sim, ca_file=tls.ca_file)
    result = run_cli(config, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr
    assert "GET /yeastar/" in result.stderr, "urllib3's DEBUG lines were not captured"
    tokens = list(sim.yeastar._tokens)  # randoms are single use: gone once downloaded
    assert len(tokens) == 2
    output = result.stderr + json.dumps(result.messages, ensure_ascii=False)
    passwords = [account["password"] for account in config["yeastar_accounts"]]
    for secret in [*passwords, *tokens]:
        assert secret not in output
    assert "random=***" in output and not re.search(r"(random|token)=[0-9a-f]", output)


@settings(max_examples=500)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_row_id_text_is_exactly_json_dumps(values: list[str | None]) -> None:
    """row_id's input must never change: the ids of rows already loaded depend on it."""
    assert _json_text(values) == json.dumps(values, ensure_ascii=False)


def test_row_id_is_stable() -> None:
    row = dict.fromkeys(CSV_COLUMNS, "x") | {"callid": "1760608273.123", "src": '张三 "1001"\n'}
    text = json.dumps([row.get(name) for name in CSV_COLUMNS], ensure_ascii=False)
    assert row_id(row) == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def test_records_carry_the_row_id_of_their_row(tls) -> None:
    """post_process hashes the values it then converts: they must be in CSV_COLUMNS order."""
    with start(tls, yeastar_demo_accounts(["r"], calls=30, days=1, extra_columns=["备注"])) as sim:
        stream = TapCallCDR(config=tap_config(sim, ca_file=tls.ca_file)).streams[STREAM]
        rows = sim.yeastar.truth("r")
        for row in rows:
            text = json.dumps([row.get(name) for name in CSV_COLUMNS], ensure_ascii=False)
            expected = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
            assert stream.post_process(dict(row), {"account": "r"})["row_id"] == expected
