"""Each account is one object (core/account.py): opened once per stream, kept in one place,
and passed to the code that reads it, so it names itself and its settings in errors in
whatever thread that code runs."""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
import typing as t
from collections import Counter
from pathlib import Path

import generic_helpers
import itnio_helpers
import pytest
import tencent_helpers
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from harness import run_tap

from tap_callcdr.core.errors import MalformedResponseError
from tap_callcdr.core.stream import CDRStream
from tap_callcdr.tap import TapCallCDR

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
VENDORS = Path(__file__).parent.parent / "tap_callcdr" / "vendors"
START = "2026-01-01T00:00:00Z"
# Two accounts of each vendor, never contacted (only settings are read).
OFFLINE = {
    "generic_accounts": [
        {"name": name, "api_url": "http://127.0.0.1:9/", "token": "t"} for name in ("hq", "branch")
    ],
    "tencent_accounts": [
        {"name": name, "api_url": "http://127.0.0.1:9/", "id": "i", "app_id": "a"}
        for name in ("hq", "branch")
    ],
    "itnio_accounts": [
        {"name": name, "api_url": "http://127.0.0.1:9/", "api_key": "k", "api_secret": "s"}
        for name in ("hq", "branch")
    ],
    "yeastar_accounts": [
        {"name": name, "api_url": "https://127.0.0.1:9", "username": "u", "password": "p"}
        for name in ("hq", "branch")
    ],
}
# A row of each stream with one value its converter refuses.
BAD_ROWS: dict[str, tuple[dict[str, t.Any], str]] = {
    "generic_cdr": (
        {"id": 7, "starttime": "2026-11-20 09:00:00", "duration": "8s"},
        "record id 7: field 'duration' has '8s'",
    ),
    "tencent_cdr": (
        {"callId": "c7", "startSrcCallTime": "1760000000", "duration": "8s"},
        "call 'c7': field 'duration' has '8s'",
    ),
    "itnio_sip_cdr": (
        {"voiceId": "v7", "callTime": "2026-11-20T09:00:00+08:00", "callDuration": "8s"},
        "record voiceId 'v7': field 'callDuration' has '8s'",
    ),
}


def offline_stream(name: str) -> CDRStream:
    return TapCallCDR(config={"start_date": START, **OFFLINE}).streams[name]


@pytest.mark.parametrize("vendor", ["generic", "tencent", "itnio", "yeastar"])
def test_an_account_names_itself_and_its_settings(vendor: str) -> None:
    stream = next(s for s in TapCallCDR(config={"start_date": START, **OFFLINE}).streams.values()
                  if getattr(s, "vendor", None) == vendor)  # fmt: skip  (not calls: it has none)
    account = stream.account({"account": "branch"})
    assert account.name == "branch" and account.context == {"account": "branch"}
    assert account.setting("api_url") == f"{vendor}_accounts[1].api_url"
    assert account.describe("it broke") == f"{stream.name} account 'branch': it broke"
    assert account.zone.key == "Asia/Shanghai"
    # opened once: the same session and authenticator for every window and thread
    again = stream.account({"account": "branch"})
    assert again is account and again.session is account.session
    assert account.authenticator is not None and again.authenticator is account.authenticator
    assert stream.account({"account": "hq"}).session is not account.session


@pytest.mark.parametrize("stream_name", sorted(BAD_ROWS))
def test_a_bad_record_names_its_account_in_any_thread(stream_name: str) -> None:
    """post_process gets the account from its context, not from the thread it runs in."""
    stream = offline_stream(stream_name)
    row, cause = BAD_ROWS[stream_name]
    with pytest.raises(MalformedResponseError) as raised:
        stream.post_process(dict(row), {"account": "branch"})
    assert str(raised.value) == f"{stream_name} account 'branch': {cause}"


def opened_accounts(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[int, str, str]]:
    """Counts CDRStream.open_account calls per (stream object, stream name, account)."""
    opened: Counter[tuple[int, str, str]] = Counter()
    real = CDRStream.open_account

    def counted(stream: CDRStream, name: str) -> t.Any:
        opened[(id(stream), stream.name, name)] += 1
        return real(stream, name)

    monkeypatch.setattr(CDRStream, "open_account", counted)
    return opened


def test_each_account_is_opened_once_for_all_its_windows_and_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many windows (generic: a day each), many requests (Tencent), pages asked ahead in helper
    threads (ITNIO): still one account object each, opened once."""
    opened = opened_accounts(monkeypatch)
    generic = Simulator(demo_accounts(["hq", "branch"], calls=200, days=5), anchor=ANCHOR)
    tencent_accounts = tencent_demo_accounts(calls=300, days=3, cap=50)
    tencent = Simulator(tencent_accounts, anchor=ANCHOR)
    itnio_accounts = itnio_demo_accounts(calls=400, group_calls=30, days=2)
    itnio = Simulator(itnio_accounts, anchor=ANCHOR)
    with generic, tencent, itnio:
        config = {
            **generic_helpers.tap_config(generic, days=5),
            "tencent_accounts": tencent_helpers.tap_config(tencent, days=3)["tencent_accounts"],
            "itnio_accounts": itnio_helpers.tap_config(itnio, days=2)["itnio_accounts"],
        }
        run = run_tap(config)
    assert run.error is None
    pairs = {(stream, account) for _, stream, account in opened}
    assert pairs == {
        ("generic_cdr", "hq"), ("generic_cdr", "branch"),
        ("tencent_cdr", "hq"), ("tencent_cdr", "branch"),
        ("itnio_sip_cdr", "intl"), ("itnio_sip_cdr", "latam"),
        ("itnio_group_cdr", "intl"), ("itnio_group_cdr", "latam"),
    }  # fmt: skip
    assert set(opened.values()) == {1}


def test_a_retry_in_a_page_helper_thread_names_its_account(caplog: pytest.LogCaptureFixture) -> None:
    """ITNIO asks pages ahead in helper threads; a fault there is retried and the WARNING
    names the account the page belongs to."""
    accounts = itnio_demo_accounts(("intl", "latam"), calls=600, days=1)
    sim = Simulator(accounts, anchor=ANCHOR)
    with sim:
        sim.faults.add("http_500", vendor="itnio", after=3, times=3)  # each page at most 3: retried
        config = itnio_helpers.tap_config(sim, days=2, window_hours=48, parallel_accounts=1)
        with caplog.at_level(logging.WARNING):
            run = run_tap(config)
    assert run.error is None
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 3
    for line in retries:
        assert re.search(r": itnio_(sip|group)_cdr account '(intl|latam)': HTTP 500", line), line


def test_vendor_code_never_sets_or_reads_the_threads_account() -> None:
    """Vendors get the account passed; the thread's account is the base stream's affair
    (set once, where an account's reader thread starts), for the SDK's hooks only."""
    thread_bound = {"current_account", "_thread_state", "reading_account", "_reader"}
    found = []
    for path in sorted(VENDORS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in thread_bound | {"local"}:
                found.append(f"{path.relative_to(VENDORS)}:{node.lineno} .{node.attr}")
    assert found == []
