"""generic_cdr under failure: tokens, vendor error codes, faults. Nothing is lost,
and what cannot be fixed by retrying stops with one line that says what to do."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import socket
import typing as t
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from generic_helpers import STREAM, bill_requests, expected, keys, logins, tap_config
from harness import assert_retried, run_cli, run_tap
from singer_sdk.exceptions import RetriableAPIError

from tap_callcdr.core.errors import (
    IncompleteAnswerError,
    MalformedResponseError,
    RenewalRejectedError,
    VendorError,
)
from tap_callcdr.core.stream import WINDOW_KEY
from tap_callcdr.tap import TapCallCDR
from tap_callcdr.vendors.generic.stream import GenericCDRStream

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(demo_accounts(["hq"], calls=300, days=3), anchor=ANCHOR).start()
    yield simulator
    simulator.stop()


def config(sim: Simulator, **overrides: t.Any) -> dict[str, t.Any]:
    return tap_config(sim, days=4, window_hours=24, **overrides)


def assert_all_landed(sim: Simulator, run: t.Any) -> None:
    assert run.error is None, run.error
    assert sorted(keys(run.records(STREAM))) == sorted(expected(sim))


# -- tokens ---------------------------------------------------------------------------------


def test_logs_in_once_per_run_and_reuses_the_token(sim: Simulator) -> None:
    assert_all_landed(sim, run_tap(config(sim)))
    assert len(logins(sim)) == 1
    assert len(bill_requests(sim)) == 5


def test_token_expiring_mid_run_logs_in_again_and_loses_nothing(sim: Simulator) -> None:
    sim.faults.add("expire_tokens", after=2)
    assert_all_landed(sim, run_tap(config(sim)))
    assert len(logins(sim)) == 2


@pytest.mark.parametrize("code", [600, 1010])
def test_token_rejected_once_is_renewed_and_the_request_retried(sim: Simulator, code: int) -> None:
    sim.faults.add("vendor_error", code=code, after=1)
    assert_all_landed(sim, run_tap(config(sim)))
    assert len(logins(sim)) == 2


def test_token_rejected_right_after_a_new_login_is_retried_after_a_wait(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst of expiries (the new token refused too) heals: a backoff wait, a third login."""
    sim.faults.add("vendor_error", code=600, times=2)
    with caplog.at_level(logging.WARNING):
        assert_all_landed(sim, run_tap(config(sim)))
    assert len(logins(sim)) == 3
    [retry] = [r.getMessage() for r in caplog.records if "token rejected again" in r.getMessage()]
    assert retry.startswith("Retrying in ")


def test_a_token_never_accepted_stops_after_max_retries_with_one_line(sim: Simulator) -> None:
    sim.faults.add("vendor_error", code=600, times=-1)
    run = run_tap(config(sim), expect_error=RenewalRejectedError)  # max_retries 3
    assert "token rejected again after a new login" in str(run.error) and "\n" not in str(run.error)
    assert len(logins(sim)) == 3 + 1  # a new login for every try


def test_a_new_login_that_keeps_failing_costs_max_retries_not_its_square(sim: Simulator) -> None:
    """A token refused mid-run needs a new login inside the request's retries; that login's
    own retries are all it gets (not retried again by the request): 1 + 3 + 1 logins."""
    sim.faults.add("vendor_error", code=600, after=1)
    sim.faults.add("http_500", applies_to="login", after=1, times=-1)
    run_tap(config(sim), expect_error=RetriableAPIError)  # max_retries 3
    assert len(logins(sim)) == 1 + 3 + 1


def test_short_lived_tokens_are_renewed_before_they_expire() -> None:
    accounts = demo_accounts(["hq"], calls=50, days=3, token_ttl=1)
    with Simulator(accounts, anchor=ANCHOR) as sim:
        assert_all_landed(sim, run_tap(config(sim)))
        # ttl/10 margin: renewed before each use rather than answering 1010 mid-window
        assert not [r for r in sim.requests if r.get("fault")]


def test_static_token_needs_no_login(sim: Simulator) -> None:
    cfg = config(sim)
    account = cfg["generic_accounts"][0]
    del account["appid"], account["accesskey"]
    account["token"] = "hq-static-token"
    assert_all_landed(sim, run_tap(cfg))
    assert logins(sim) == []


def test_rejected_static_token_without_credentials_stops_naming_the_setting(sim: Simulator) -> None:
    cfg = config(sim)
    account = cfg["generic_accounts"][0]
    del account["appid"], account["accesskey"]
    account["token"] = "not-a-token"
    run = run_tap(cfg, expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert "'token'" in str(run.error)


def test_rejected_static_token_falls_back_to_login(sim: Simulator) -> None:
    cfg = config(sim)
    cfg["generic_accounts"][0]["token"] = "stale-token"
    assert_all_landed(sim, run_tap(cfg))
    assert len(logins(sim)) == 1


def test_wrong_credentials_stop_after_one_login(sim: Simulator) -> None:
    cfg = config(sim)
    cfg["generic_accounts"][0]["accesskey"] = "wrong"
    run = run_tap(cfg, expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert "wrong credentials" in str(run.error) and "'hq'" in str(run.error)
    assert len(logins(sim)) == 1


def metric_points(log: str) -> list[dict[str, t.Any]]:
    """The tap's METRIC http_request_count points, as a Meltano user sees them in its log."""
    points = [json.loads(line.split("METRIC: ", 1)[1]) for line in log.splitlines() if "METRIC: " in line]
    return [p for p in points if p["metric"] == "http_request_count"]


def test_metric_counts_logins_too_retried_ones_included(caplog: pytest.LogCaptureFixture) -> None:
    with Simulator(demo_accounts(["hq", "branch"], calls=300, days=3), anchor=ANCHOR) as sim:
        sim.faults.add("http_500", applies_to="login")  # the first login is retried
        with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
            assert_all_landed(sim, run_tap(config(sim)))
        assert len(logins(sim)) == 3 and len(bill_requests(sim)) == 2 * 5
        points = metric_points(caplog.text)
        assert sum(p["value"] for p in points) == len(sim.requests)
        by_login = [p["tags"]["context"] for p in points if WINDOW_KEY not in p["tags"]["context"]]
        per_account = Counter(r["params"]["appid"].removesuffix("-appid") for r in logins(sim))
        assert Counter(c["account"] for c in by_login) == per_account  # which one retried: a race


# -- vendor error codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (400, "rejected the request as invalid"),
        (601, "whitelist this host"),
        (602, "disabled"),
        (603, "ask the vendor to enable it"),
        (604, "arrears"),
    ],
)
def test_fatal_codes_stop_at_once_with_a_hint(sim: Simulator, code: int, hint: str) -> None:
    sim.faults.add("vendor_error", code=code)
    run = run_tap(config(sim), expect_error=VendorError)
    assert isinstance(run.error, VendorError)
    assert hint in str(run.error) and f"ret {code}" in str(run.error)
    assert len(bill_requests(sim)) == 1, "a fatal code must not be retried"
    assert run.records(STREAM) == []


def test_ret_601_names_both_of_its_causes(sim: Simulator) -> None:
    """601 is read both as "this IP is not whitelisted" and as "this appid/accesskey may not
    use the API": the line must send the user to both, not only to the whitelist."""
    sim.faults.add("vendor_error", code=601)
    message = str(run_tap(config(sim), expect_error=VendorError).error)
    assert "whitelist this host's IP" in message
    assert "appid/accesskey" in message and "authorize" in message


@pytest.mark.parametrize("code", [500, 1001])
def test_transient_codes_are_retried(sim: Simulator, code: int) -> None:
    sim.faults.add("vendor_error", code=code, times=2)
    assert_all_landed(sim, run_tap(config(sim)))


def test_persistent_transient_errors_give_up_after_max_retries(sim: Simulator) -> None:
    sim.faults.add("vendor_error", code=1001, times=-1)
    run = run_tap(config(sim, max_retries=2), expect_error=RetriableAPIError)
    assert isinstance(run.error, RetriableAPIError)
    assert len(bill_requests(sim)) == 3


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_429", "truncate"])
def test_transient_faults_are_retried_and_lose_nothing(sim: Simulator, kind: str) -> None:
    sim.faults.add(kind, after=1, times=2, retry_after=0)
    assert_all_landed(sim, run_tap(config(sim)))
    assert len([r for r in sim.requests if r["fault"] == kind]) == 2


def test_slow_answers_time_out_and_are_retried(sim: Simulator) -> None:
    """The answer would come after 60 s: only the tap's own 1 s timeout gets the run on."""
    sim.faults.add("slow", seconds=60)  # the simulator's stop() wakes it early
    cfg = config(sim, request_timeout_seconds=1)
    assert_all_landed(sim, run_tap(cfg))
    assert_retried(bill_requests(sim), "slow")
    assert len(bill_requests(sim)) == 5 + 1


def test_a_gateway_page_is_retried_and_one_that_persists_stops_with_one_line(sim: Simulator) -> None:
    sim.faults.add("malformed", after=1, times=-1)  # a 2xx HTML page: a transport fault
    run = run_tap(config(sim), expect_error=IncompleteAnswerError)
    assert isinstance(run.error, IncompleteAnswerError)
    assert "not JSON" in str(run.error) and "\n" not in str(run.error)
    assert len([r for r in sim.requests if r["fault"] == "malformed"]) == 4  # max_retries 3


def test_retry_after_is_honoured() -> None:
    """The wait before a retry is never shorter than the vendor's Retry-After."""
    account = {"name": "hq", "api_url": "http://127.0.0.1:9/", "token": "t"}
    tap = TapCallCDR(config={"start_date": "2026-01-01T00:00:00Z", "generic_accounts": [account]})
    stream = GenericCDRStream(tap=tap)
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "7"
    stream.retry_random = random.Random()
    stream.retry_random.random = lambda: 1.0  # type: ignore[method-assign]  # the top of each jitter range
    waits = stream.backoff_wait_generator()
    next(waits)
    assert waits.send(RetriableAPIError("429", response)) == 7.0
    assert waits.send(RetriableAPIError("500")) == 4.0  # exponential again without it


# -- what a user sees ---------------------------------------------------------------------


def test_cli_reports_a_vendor_error_as_one_line_without_traceback(sim: Simulator) -> None:
    sim.faults.add("vendor_error", code=601)
    run = run_cli(config(sim))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "whitelist this host" in line]
    assert len(lines) == 1 and "generic_cdr account 'hq'" in lines[0]


def test_secrets_never_reach_logs_or_records(sim: Simulator) -> None:
    sim.faults.add("expire_tokens", after=1)
    sim.faults.add("http_500", after=2)
    cfg = config(sim)
    run = run_cli(cfg, env={"LOGLEVEL": "DEBUG"})
    assert " DEBUG " in run.stderr
    assert run.returncode == 0, run.stderr
    tokens = list(sim.generic._tokens)
    assert len(tokens) == 2, "expected a login and a re-login"
    output = run.stderr + "\n".join(map(str, run.messages))
    for secret in [cfg["generic_accounts"][0]["accesskey"], *tokens]:
        assert secret not in output
    assert "token" not in {k for r in run.records(STREAM) for k in r}


def test_unreachable_vendor_is_one_line_naming_the_account(sim: Simulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cfg = config(sim, max_retries=1)
    cfg["generic_accounts"][0]["api_url"] = f"http://127.0.0.1:{closed}/generic/"
    run = run_cli(cfg)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [error] = [line for line in run.stderr.splitlines() if " ERROR " in line and "Connection" in line]
    assert "generic_cdr account 'hq'" in error and "Connection refused" in error


def test_one_failing_account_does_not_stop_the_others() -> None:
    with Simulator(demo_accounts(["hq", "branch"], calls=100, days=3), anchor=ANCHOR) as sim:
        cfg = config(sim)
        cfg["generic_accounts"][0]["accesskey"] = "wrong"  # hq fails at login
        run = run_tap(cfg, expect_error=VendorError)
        assert isinstance(run.error, VendorError) and "account 'hq'" in str(run.error)
        assert sorted(keys(run.records(STREAM))) == sorted(expected(sim, "branch"))
        marks = {
            p["context"]["account"]: p.get("replication_key_value")
            for p in run.last_state["bookmarks"][STREAM]["partitions"]
        }
        assert marks.get("hq") is None and marks["branch"] is not None


def test_every_failing_account_is_named_in_one_line() -> None:
    with Simulator(demo_accounts(["hq", "branch"], calls=10, days=3), anchor=ANCHOR) as sim:
        cfg = config(sim)
        for account in cfg["generic_accounts"]:
            account["accesskey"] = "wrong"
        run = run_cli(cfg)
        assert run.returncode == 1 and "Traceback" not in run.stderr
        [line] = [line for line in run.stderr.splitlines() if "wrong credentials" in line]
        assert "2 of 2 accounts failed" in line and "'hq'" in line and "'branch'" in line


def test_a_bad_field_value_stops_naming_the_record_and_field() -> None:
    account = {"name": "hq", "api_url": "http://127.0.0.1:9/", "token": "t"}
    tap = TapCallCDR(config={"start_date": "2026-01-01T00:00:00Z", "generic_accounts": [account]})
    stream = GenericCDRStream(tap=tap)
    row = {"id": 7, "starttime": "2026-11-20 09:00:00", "duration": "8s"}
    with pytest.raises(MalformedResponseError, match=r"record id 7: field 'duration' has '8s'"):
        stream.post_process(row, {"account": "hq"})
