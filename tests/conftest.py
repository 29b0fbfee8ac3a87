"""Shared fixtures: a throwaway PostgreSQL server, the simulator CLI, and the meltano CLI.

- ``postgres`` (session): a real PostgreSQL server on 127.0.0.1 (see tests/pg.py), default
  TimeZone Asia/Shanghai. Fails, never skips, when PostgreSQL is not installed.
- ``simulator_launcher`` (session; the caller stops what it starts) / ``start_simulator`` /
  ``simulator``: ``callcdr-simulator`` run as a subprocess on a free port (any vendors,
  optionally ``--https`` with a test CA); a handle with ``base_url``, the vendors' URLs,
  ``ca_file``, ``truth()`` and ``add_calls()``.
- ``meltano_system_db``: a fresh database on that server for Meltano's system database
  (state in PostgreSQL), as a ``MELTANO_DATABASE_URI``.
- ``meltano`` (session): the real ``meltano`` CLI on this repo's meltano.yml, with
  ``install()`` done at most once per plugin per session and ``env()`` that isolates the
  system database (state) per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from callcdr_simulator import vendor_class
from hypothesis import HealthCheck, settings

try:  # tests/ on sys.path (rootdir conftest, no tests/__init__.py) or tests as a package
    from pg import PostgresServer, PostgresUnavailable, free_port, start_postgres
except ImportError:  # pragma: no cover
    from tests.pg import PostgresServer, PostgresUnavailable, free_port, start_postgres

# Property tests check values, never speed (speed is the benchmark's business): no per-example
# deadline and no too_slow health check, which a cold 2-core CI machine trips at random (the
# first st.text() builds Hypothesis's Unicode table, over a second).
settings.register_profile("callcdr", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("callcdr")


def pytest_configure(config: pytest.Config) -> None:
    # here, not in pyproject.toml: a change there rebuilds every venv (scripts/_venv.sh)
    config.addinivalue_line(
        "markers", "chaos: all vendors under random faults and kill -9 (scripts/chaos: heavy run)"
    )


REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
READY_RE = re.compile(r"callcdr-simulator listening on (https?://\S+)")


def venv_executable(name: str) -> str:
    """A console script of the venv running pytest (falls back to PATH)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed; run scripts/test (pip install -e '.[dev]').")
    return found


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server with an empty database, for the whole session.

    Its default TimeZone is deliberately Asia/Shanghai, not UTC: a loader that stores
    wall-clock times in the session zone (instead of UTC instants) then shows up in tests.
    """
    problem = None
    try:
        server = start_postgres(dbname="callcdr_test", timezone="Asia/Shanghai")
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem is not None:  # fail (never skip), outside the except: one clean message
        pytest.fail(f"PostgreSQL is required for these tests: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def meltano_system_db(postgres: PostgresServer) -> str:
    """A `MELTANO_DATABASE_URI` of a fresh database of its own on the `postgres` server:
    Meltano's system database (so its state) in PostgreSQL, as shards running at the same
    time need (SQLite takes one writer at a time). Pass it to `Meltano.env(...,
    MELTANO_DATABASE_URI=meltano_system_db)`."""
    dbname = f"meltano_{uuid.uuid4().hex[:12]}"
    postgres.create_database(dbname)
    return postgres.meltano_database_uri(dbname)


# ---------------------------------------------------------------------------- simulator


class SimulatorProcess:
    """A running ``callcdr-simulator`` subprocess and its control API.

    ``ca_file`` is the test CA of a simulator started with ``--https``: the control API is
    then reached over verified TLS too, and it is what a yeastar account's ``ca_bundle`` gets.
    """

    def __init__(
        self, argv: list[str], log_dir: Path, ready_timeout: float = 60, ca_file: Path | None = None
    ) -> None:
        self.argv = argv
        self.ca_file = ca_file
        self.stderr_path = log_dir / f"simulator-{os.getpid()}-{time.monotonic_ns()}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=REPO_ROOT,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout_lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        try:
            self.base_url = self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"simulator gave no ready line in {timeout}s\n{self.diagnostics()}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=10)
                pytest.fail(f"simulator exited before it was ready\n{self.diagnostics()}")
            self.stdout_lines.append(line)
            match = READY_RE.search(line)
            if match:
                return match.group(1).rstrip("/")

    def diagnostics(self) -> str:
        self._stderr.flush()
        stderr = self.stderr_path.read_text(errors="replace")[-4000:]
        return (
            f"argv: {self.argv}\nexit code: {self.proc.poll()}\n"
            f"stdout: {''.join(self.stdout_lines)[-2000:]}\nstderr:\n{stderr}"
        )

    def api_url(self, vendor: str, account: str) -> str:
        """The ``api_url`` a tap account of this vendor sets to reach this account here."""
        return vendor_class(vendor).api_url(self.base_url, account)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        context = None
        if self.base_url.startswith("https://"):
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            payload = resp.read()
        return json.loads(payload) if payload.strip() else None

    def truth(self, account: str, vendor: str = "generic") -> list[dict[str, Any]]:
        """The vendor's raw records for one account, as its API has them (ITNIO: both
        endpoints' records; group-call records are the ones with ``baseCost``)."""
        query = urllib.parse.urlencode({"vendor": vendor, "account": account})
        return self._request("GET", f"/_control/truth?{query}")

    def add_calls(
        self, account: str, n: int, start: datetime, end: datetime, vendor: str = "generic"
    ) -> Any:
        """Add ``n`` new calls starting in [start, end) (aware datetimes). ITNIO: SIP calls."""
        return self._request(
            "POST",
            "/_control/calls",
            {
                "vendor": vendor,
                "account": account,
                "n": n,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._reader.join(timeout=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def default_anchor() -> datetime:
    """Simulator anchor for tests: 3 hours ago, to the minute, so all data is settled."""
    return (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)


def launch_simulator(
    log_dir: Path,
    *,
    calls: int = 200,
    days: int = 2,
    seed: int = 1,
    demo: Mapping[str, str] | None = None,
    anchor: datetime | None = None,
    https: bool = False,
    config: dict[str, Any] | None = None,
) -> SimulatorProcess:
    """Start ``callcdr-simulator`` on a free port and wait for its ready line.

    ``demo``: comma-separated demo account names by vendor (``{"tencent": "hq,branch"}``;
    a vendor not named has the CLI's default: generic hq and branch, the others none);
    ``config`` is the JSON of ``--config`` (accounts given in full by vendor: ``{"generic":
    [...], "itnio": [...]}``), which overrides those names.
    ``https`` serves everything over TLS with a throwaway CA written into ``log_dir``
    (``.ca_file`` of the handle). The caller stops it (``.stop()``).
    """
    anchor = anchor or default_anchor()
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    argv = [
        venv_executable("callcdr-simulator"),
        "--port",
        str(free_port()),
        "--calls",
        str(calls),
        "--days",
        str(days),
        "--seed",
        str(seed),
        "--anchor",
        anchor.isoformat(),
    ]
    for vendor, names in (demo or {}).items():
        argv += [f"--{vendor_class(vendor).name}-accounts", names]
    if config is not None:
        config_file = log_dir / f"simulator-{tag}.json"
        config_file.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        argv += ["--config", str(config_file)]
    ca_file = None
    if https:
        ca_file = log_dir / f"simulator-{tag}-ca.pem"
        argv += ["--https", "--ca-file", str(ca_file)]
    return SimulatorProcess(argv, log_dir=log_dir, ca_file=ca_file)


@pytest.fixture(scope="session")
def simulator_launcher() -> Callable[..., SimulatorProcess]:
    """``launch_simulator`` itself, for fixtures of a wider scope than ``start_simulator``
    (the caller stops what it starts)."""
    return launch_simulator


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., SimulatorProcess]]:
    """Factory: ``start_simulator(calls=200, days=2, seed=1, demo=None, anchor=datetime,
    https=False, config=None)`` (see ``launch_simulator``) starts a fresh simulator; every
    one started is stopped at teardown."""
    started: list[SimulatorProcess] = []

    def _start(**kwargs: Any) -> SimulatorProcess:
        sim = launch_simulator(tmp_path, **kwargs)
        started.append(sim)
        return sim

    yield _start
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator(start_simulator: Callable[..., SimulatorProcess]) -> SimulatorProcess:
    """A simulator with the default small data set (200 calls over 2 days, seed 1)."""
    return start_simulator()


# ------------------------------------------------------------------------------ meltano

# Variables that configure the plugins or meltano itself: never inherit them from the
# developer's shell, so tests see only what they set.
_ISOLATED_PREFIXES = (
    "TAP_CALLCDR_",
    "TARGET_POSTGRES_",
    "TARGET_DUCKDB_",
    "TARGET_JSONL_",
    "TARGET_SNOWFLAKE_",
    "FAKESNOW_",
    "MELTANO_",
)


class Meltano:
    """The real ``meltano`` CLI on the repository's meltano.yml."""

    def __init__(self, session_dir: Path) -> None:
        self.executable = venv_executable("meltano")
        self.root = REPO_ROOT
        self.session_dir = session_dir
        self._installed: set[str] = set()
        self._lock = threading.Lock()

    def env(self, state_dir: Path, **extra: str) -> dict[str, str]:
        """Environment for one meltano call; system DB (and so state) lives in state_dir."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
        env.update(
            MELTANO_PROJECT_ROOT=str(self.root),
            MELTANO_DATABASE_URI=f"sqlite:///{state_dir / 'meltano.db'}",
            MELTANO_ENVIRONMENT="dev",
            MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
            MELTANO_DISABLE_TRACKING="true",
            MELTANO_CLI_LOG_LEVEL="info",
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def __call__(
        self, *args: str, env: dict[str, str], timeout: float = 900, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, *args],
            cwd=self.root,
            env=env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check(
        self, *args: str, env: dict[str, str], timeout: float = 900, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run meltano; on a non-zero exit, fail the test showing its output."""
        proc = self(*args, env=env, timeout=timeout, input=input)
        if proc.returncode != 0:
            pytest.fail(
                f"`meltano {' '.join(args)}` exited {proc.returncode}\n"
                f"--- stdout (tail) ---\n{proc.stdout[-6000:]}\n"
                f"--- stderr (tail) ---\n{proc.stderr[-12000:]}",
                pytrace=False,
            )
        return proc

    def install(self, *plugins: str) -> None:
        """``meltano install`` the plugins not yet installed in this session.

        tap-callcdr's pip_url is "-e .", and meltano reinstalls only when a pip_url changes:
        when pyproject.toml changed since that venv was made, drop it so it is rebuilt
        (same rule as scripts/_venv.sh).
        """
        with self._lock:
            missing = [p for p in plugins if p not in self._installed]
            if not missing:
                return
            tap_venv = self.root / ".meltano" / "extractors" / "tap-callcdr" / "venv"
            stamp = tap_venv / ".callcdr-pyproject"
            want = hashlib.sha256((self.root / "pyproject.toml").read_bytes()).hexdigest()
            if "tap-callcdr" in missing and tap_venv.is_dir():
                have = stamp.read_text().strip() if stamp.exists() else None
                if have != want:
                    shutil.rmtree(tap_venv)
            self.check("install", *missing, env=self.env(self.session_dir), timeout=1200)
            if tap_venv.is_dir():
                stamp.write_text(want + "\n")
            self._installed.update(missing)


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    return Meltano(tmp_path_factory.mktemp("meltano-session"))


@pytest.fixture(scope="session")
def meltano_postgres(meltano: Meltano) -> Meltano:
    """meltano with tap-callcdr and target-postgres installed (once per session)."""
    meltano.install("tap-callcdr", "target-postgres")
    return meltano
