"""The retry policy every vendor shares: bounded, jittered waits that honour Retry-After within
the ceiling; one log line per retry; every attempt sent counted in METRIC http_request_count."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import typing as t
from collections.abc import Callable, Iterator

import generic_helpers
import itnio_helpers
import pytest
import requests
import tencent_helpers
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from callcdr_simulator.itnio import itnio_demo_accounts
from callcdr_simulator.tencent import tencent_demo_accounts
from harness import run_cli, run_tap
from singer_sdk.exceptions import RetriableAPIError

from tap_callcdr.core.errors import ConfigError, TokenRejectedError
from tap_callcdr.tap import TapCallCDR, check_config
from tap_callcdr.vendors.generic.stream import GenericCDRStream

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
RETRY_LINE = re.compile(r"Retrying in ([0-9.]+) s \(retry (\d+) of (\d+)\): ")


class Draws(random.Random):
    """A random source that returns the given draws in turn (then repeats the last)."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0) if len(self.draws) > 1 else self.draws[0]


def stream(**config: t.Any) -> GenericCDRStream:
    account = {"name": "hq", "api_url": "http://127.0.0.1:9/", "token": "t"}
    tap = TapCallCDR(config={"start_date": "2026-01-01T00:00:00Z", "generic_accounts": [account], **config})
    return GenericCDRStream(tap=tap)


def waits(generic: GenericCDRStream, errors: list[BaseException]) -> list[float]:
    """The waits backoff would sleep before each retry, for attempts failing with `errors`."""
    sequence = generic.backoff_wait_generator()
    next(sequence)  # primed, as backoff does
    return [sequence.send(error) for error in errors]


def too_many_requests(retry_after: str) -> RetriableAPIError:
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = retry_after
    return RetriableAPIError("429", response)


# -- the wait sequence ---------------------------------------------------------------------


def test_waits_double_up_to_the_ceiling_and_never_beyond() -> None:
    """max_retries 10 used to reach one wait of 1,024 s; now each step is capped (default 60)."""
    generic = stream(retry_wait_seconds=2, max_retries=10)
    generic.retry_random = Draws(1.0)  # the top of every jitter range
    assert waits(generic, [RetriableAPIError("500")] * 10) == [2, 4, 8, 16, 32, 60, 60, 60, 60, 60]


def test_equal_jitter_keeps_at_least_half_of_each_step() -> None:
    """The bottom of the range is half the step: a flapping vendor still gets breathing room."""
    generic = stream(retry_wait_seconds=2, retry_max_wait_seconds=10)
    generic.retry_random = Draws(0.0, 0.5, 0.0, 0.25, 0.0)
    assert waits(generic, [RetriableAPIError("500")] * 5) == [1.0, 3.0, 4.0, 6.25, 5.0]


def test_seeded_waits_spread_within_their_ranges() -> None:
    seen = []
    for seed in range(20):
        generic = stream(retry_wait_seconds=1, retry_max_wait_seconds=5)
        generic.retry_random = random.Random(seed)
        sequence = waits(generic, [RetriableAPIError("500")] * 6)
        steps = [1, 2, 4, 5, 5, 5]
        assert all(step / 2 <= wait <= step for wait, step in zip(sequence, steps, strict=True))
        seen.append(sequence[0])
    assert len(set(seen)) > 10, "accounts failing together must not retry in step"


def test_retry_after_is_honoured_within_the_ceiling() -> None:
    generic = stream(retry_wait_seconds=0.5, retry_max_wait_seconds=30)
    generic.retry_random = Draws(0.0)
    got = waits(generic, [too_many_requests("7"), too_many_requests("3600"), RetriableAPIError("500")])
    assert got == [7.0, 30.0, 1.0]  # below: as sent; above: the ceiling; then the schedule again


def test_a_rejected_token_is_retried_at_once() -> None:
    assert waits(stream(), [TokenRejectedError("600"), RetriableAPIError("500")])[0] == 0.0


@pytest.mark.parametrize("value", [0, -1])
def test_the_ceiling_must_be_positive(value: float) -> None:
    config = {"start_date": "2026-01-01T00:00:00Z", "retry_max_wait_seconds": value,
              "generic_accounts": [{"name": "hq", "api_url": "http://x/", "token": "t"}]}  # fmt: skip
    with pytest.raises(ConfigError, match="'retry_max_wait_seconds'"):
        check_config(config)


# -- through the simulator ---------------------------------------------------------------------


def test_a_ceiling_of_zero_is_one_line_naming_it_before_any_request() -> None:
    with Simulator(demo_accounts(["hq"], calls=5), anchor=ANCHOR) as sim:
        run = run_cli(generic_helpers.tap_config(sim, retry_max_wait_seconds=0))
        assert run.returncode == 1 and "Traceback" not in run.stderr
        [error] = [line for line in run.stderr.splitlines() if "ERROR" in line]
        assert "'retry_max_wait_seconds'" in error
        assert sim.requests == []


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(
        [
            *demo_accounts(["hq"], calls=200, days=2),
            *tencent_demo_accounts(["cn"], calls=200, days=2),
            *itnio_demo_accounts(["intl"], calls=150, group_calls=0, days=2),
        ],
        anchor=ANCHOR,
    ).start()
    yield simulator
    simulator.stop()


CONFIGS: dict[str, Callable[..., dict[str, t.Any]]] = {
    "generic": lambda sim, **kw: generic_helpers.tap_config(sim, days=3, **kw),
    "tencent": lambda sim, **kw: tencent_helpers.tap_config(sim, days=3, **kw),
    "itnio": lambda sim, **kw: itnio_helpers.tap_config(sim, days=3, **kw),
}


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if RETRY_LINE.search(r.getMessage())]


def test_retry_after_over_the_ceiling_waits_the_ceiling(sim: Simulator, caplog) -> None:
    sim.faults.add("http_429", after=1, retry_after=3600)
    with caplog.at_level(logging.INFO):
        run = run_tap(CONFIGS["generic"](sim, retry_max_wait_seconds=0.3))
    assert run.error is None, run.error
    [line] = retry_lines(caplog)
    assert RETRY_LINE.search(line.getMessage()).group(1) == "0.30"  # type: ignore[union-attr]


def test_retry_after_under_the_ceiling_is_waited_in_full(sim: Simulator, caplog) -> None:
    sim.faults.add("http_429", after=1, retry_after=0.4)
    with caplog.at_level(logging.INFO):
        run = run_tap(CONFIGS["generic"](sim, retry_wait_seconds=0.01, retry_max_wait_seconds=60))
    assert run.error is None, run.error
    [line] = retry_lines(caplog)
    assert RETRY_LINE.search(line.getMessage()).group(1) == "0.40"  # type: ignore[union-attr]


@pytest.mark.parametrize("vendor", sorted(CONFIGS))
def test_each_retry_is_one_warning_naming_account_wait_and_cause(
    sim: Simulator, caplog: pytest.LogCaptureFixture, vendor: str
) -> None:
    sim.faults.add("http_502", vendor=vendor, times=2)
    with caplog.at_level(logging.DEBUG):
        run = run_tap(CONFIGS[vendor](sim))
    assert run.error is None, run.error
    lines = retry_lines(caplog)
    assert [RETRY_LINE.search(r.getMessage()).group(2, 3) for r in lines] == [("1", "3"), ("2", "3")]  # type: ignore[union-attr]
    for record in lines:
        assert record.levelno == logging.WARNING
        assert "account '" in record.getMessage() and "HTTP 502" in record.getMessage()
    assert "Backing off" not in caplog.text, "backoff's own line repeats ours"


def metric_total(caplog: pytest.LogCaptureFixture) -> int:
    points = [json.loads(m.split("METRIC: ", 1)[1]) for m in caplog.messages if "METRIC: " in m]
    return sum(p["value"] for p in points if p["metric"] == "http_request_count")


@pytest.mark.parametrize("vendor", sorted(CONFIGS))
@pytest.mark.parametrize("kind", ["http_500", "slow"])
def test_metric_counts_every_attempt_sent(
    sim: Simulator, caplog: pytest.LogCaptureFixture, vendor: str, kind: str
) -> None:
    sim.faults.add(kind, vendor=vendor, times=3, seconds=3)
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        run = run_tap(CONFIGS[vendor](sim, request_timeout_seconds=1))
    assert run.error is None, run.error
    assert len([r for r in sim.requests if r["fault"] == kind]) == 3
    assert metric_total(caplog) == len(sim.requests)


@pytest.mark.parametrize("vendor", sorted(CONFIGS))
def test_metric_counts_the_attempts_of_a_request_given_up(
    sim: Simulator, caplog: pytest.LogCaptureFixture, vendor: str
) -> None:
    sim.faults.add("http_500", vendor=vendor, times=-1)
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        run = run_tap(CONFIGS[vendor](sim, max_retries=2), expect_error=RetriableAPIError)
    assert isinstance(run.error, RetriableAPIError)
    assert metric_total(caplog) == len(sim.requests) >= 3


def test_a_login_is_retried_by_the_same_policy(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    """Logins used backoff's own unbounded waits, with no word in the log."""
    sim.faults.add("http_500", applies_to="login", times=2)
    with caplog.at_level(logging.INFO):
        run = run_tap(CONFIGS["generic"](sim, retry_wait_seconds=0.01, retry_max_wait_seconds=0.02))
    assert run.error is None, run.error
    lines = [r.getMessage() for r in retry_lines(caplog)]
    assert len(lines) == 2 and all("account 'hq': login: HTTP 500" in line for line in lines), lines
    assert all(float(RETRY_LINE.search(line).group(1)) <= 0.02 for line in lines)  # type: ignore[union-attr]
