"""Every input the user gives is checked, and every mistake is one line, on every path.

Misspelt settings (top level and in every vendor's accounts) are refused naming the nearest
known one; `--discover` (which Meltano runs before each run) refuses a bad config as sync
does; a bad `--state` file or bookmark names the file, stream and account; a state of
another shape and a `start_date` in the future are warned about; an account whose
`api_url` cannot be right (refused, 404/405/501) is told to check that setting.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import subprocess
import tempfile
import threading
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from generic_helpers import STREAM, keys, tap_config
from harness import TapRun, run_cli, tap_executable, write_json
from vendors import STREAMS, TESTED, VENDOR_NAMES

from tap_callcdr.tap import TapCallCDR

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
ROOT = Path(__file__).resolve().parent.parent
QUICK = {"max_retries": 0, "retry_wait_seconds": 0.01, "request_timeout_seconds": 5}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(demo_accounts(["hq", "branch"], calls=40, days=3), anchor=ANCHOR).start()
    yield simulator
    simulator.stop()


def error_line(run: TapRun) -> str:
    """The run's one error line; fails on a traceback or on more than one."""
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, run.stderr
    return errors[0]


def warnings_of(run: TapRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if "| WARNING" in line]


def vendor_account(vendor: str, url: str) -> dict[str, t.Any]:
    """A well-formed account of each vendor (fake credentials) at `url`."""
    [tested] = [v for v in TESTED if v.name == vendor]
    return tested.fake_account(url)


def vendor_config(vendor: str, url: str, **account: t.Any) -> dict[str, t.Any]:
    start = (ANCHOR - dt.timedelta(days=1)).isoformat()
    return {"start_date": start, **QUICK, f"{vendor}_accounts": [{**vendor_account(vendor, url), **account}]}


VENDORS = tuple(VENDOR_NAMES)  # every vendor of the table (tests/vendors.py)
# every command path that reads the config: sync, and the ones that exit in their callbacks
MODES = [(), ("--discover",), ("--test",), ("--test=schema",)]
MODE_IDS = ["sync", "discover", "test", "test-schema"]

# -- item 4: unknown settings -------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_misspelt_account_setting_is_refused_naming_the_nearest_one(
    vendor: str, mode: tuple[str, ...]
) -> None:
    config = vendor_config(vendor, "http://127.0.0.1:9/", time_zone="America/New_York")
    run = run_cli(config, extra=mode)
    assert run.returncode == 1
    line = error_line(run)
    assert f"{vendor}_accounts[0].time_zone" in line and "did you mean 'timezone'?" in line
    assert not run.messages


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_misspelt_top_level_setting_is_refused_before_any_request(
    sim: Simulator, mode: tuple[str, ...]
) -> None:
    sim.clear_requests()
    config = {**tap_config(sim), "lookback_minute": 60}
    run = run_cli(config, extra=mode)
    assert run.returncode == 1
    line = error_line(run)
    assert "'lookback_minute'" in line and "did you mean 'lookback_minutes'?" in line
    assert sim.requests == []


def test_an_unknown_setting_far_from_any_known_one_lists_what_is_known() -> None:
    config = vendor_config("tencent", "http://127.0.0.1:9/", colour="blue")
    line = error_line(run_cli(config))
    assert "tencent_accounts[0].colour" in line and "app_id" in line and "compress" in line


def test_the_sdk_capability_settings_stay_accepted(sim: Simulator) -> None:
    """What the SDK adds to the schema for the tap's capabilities (stream maps, flattening,
    batch): every one of them is accepted, and the stream map really applies."""
    builtin = {
        "stream_maps": {STREAM: {"note": "'mapped'"}},
        "stream_map_config": {},
        "faker_config": {"seed": 1, "locale": "en_US"},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "flattening_max_key_length": 255,
        "flattening_separator": "__",
        "batch_config": {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}},
    }
    about = json.loads(run_stdout(["--about", "--format=json"]))
    assert set(builtin) <= set(about["settings"]["properties"]), "the SDK's own settings changed"
    with tempfile.TemporaryDirectory() as tmp:
        path = write_json(Path(tmp, "config.json"), {**tap_config(sim), **builtin})
        catalog = json.loads(run_stdout(["--config", path, "--discover"]))
    assert {entry["tap_stream_id"] for entry in catalog["streams"]} == {STREAM, "calls"}
    unbatched = {name: value for name, value in builtin.items() if name != "batch_config"}
    synced = run_cli({**tap_config(sim, "hq", days=1), **unbatched})
    assert synced.returncode == 0, synced.stderr
    assert synced.records(STREAM) and {r["note"] for r in synced.records(STREAM)} == {"mapped"}


def run_stdout(args: list[str]) -> str:
    done = subprocess.run([tap_executable(), *args], capture_output=True, text=True, check=True)
    return done.stdout


SECRET = "hq-accesskey-S3cr3t"
ARRAY = "must be an array"


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        # an accounts list without its brackets (an easy slip in TAP_CALLCDR_GENERIC_ACCOUNTS)
        (lambda c: {**c, "generic_accounts": c["generic_accounts"][0]}, "generic_accounts", ARRAY),
        (lambda c: {**c, "generic_accounts": json.dumps(c["generic_accounts"])}, "generic_accounts", ARRAY),
        (lambda c: {**c, "generic_accounts": [{**c["generic_accounts"][0], "accesskey": [SECRET]}]},
         "generic_accounts[0].accesskey", "must be a string"),
        (lambda c: {k: v for k, v in c.items() if k != "start_date"}, "start_date", "is required"),
    ],
    ids=["object-for-list", "text-for-list", "list-for-text", "missing"],
)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_value_of_the_wrong_type_is_named_by_its_path_never_quoted(
    change: t.Callable[[dict[str, t.Any]], dict[str, t.Any]], path: str, problem: str, mode: tuple[str, ...]
) -> None:
    """JSON Schema's own message quotes the whole wrong value: here, a credential."""
    config = vendor_config("generic", "http://127.0.0.1:9/", accesskey=SECRET)
    run = run_cli(change(config), extra=mode)
    assert run.returncode == 1
    line = error_line(run)
    assert f"'{path}'" in line and problem in line
    assert SECRET not in run.stderr and "S3cr3t" not in run.stderr


def test_about_documents_that_unknown_settings_are_refused() -> None:
    settings = json.loads(run_stdout(["--about", "--format=json"]))["settings"]
    assert settings.get("additionalProperties") is False
    for vendor in VENDORS:
        account = settings["properties"][f"{vendor}_accounts"]["items"]
        assert account.get("additionalProperties") is False, vendor


def test_meltano_yml_declares_and_sets_only_settings_the_tap_accepts() -> None:
    schema = TapCallCDR.config_jsonschema
    TapCallCDR.append_builtin_config(schema)
    [tap] = [p for p in yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["extractors"]]
    declared = {setting["name"] for setting in tap["settings"]}
    assert declared <= set(schema["properties"])
    assert set(tap.get("config") or {}) <= set(schema["properties"])
    environments = yaml.safe_load((ROOT / "meltano.yml").read_text())["environments"]
    for environment in environments:
        for plugin in (environment.get("config") or {}).get("plugins", {}).get("extractors", []):
            for setting, accounts in plugin["config"].items():
                known = schema["properties"][setting]["items"]["properties"]
                for account in accounts:
                    assert set(account) <= set(known), (environment["name"], setting, account)


def readme_account_examples() -> list[tuple[str, dict[str, t.Any]]]:
    """Every account of the JSON lists the README shows (TAP_CALLCDR_<VENDOR>_ACCOUNTS='[...]')."""
    text = (ROOT / "README.md").read_text()
    shown = []
    for vendor in VENDORS:
        marker = f"TAP_CALLCDR_{vendor.upper()}_ACCOUNTS='"
        for chunk in text.split(marker)[1:]:
            accounts = json.loads(chunk.split("'", 1)[0].replace("…", ""))
            shown += [(vendor, account) for account in accounts]
    return shown


def test_readme_account_examples_use_only_known_settings() -> None:
    schema = TapCallCDR.config_jsonschema
    shown = readme_account_examples()
    for vendor, account in shown:
        known = schema["properties"][f"{vendor}_accounts"]["items"]["properties"]
        assert set(account) <= set(known), (vendor, account)
    assert shown, "the README shows no account example any more"


def test_readme_shows_an_account_of_every_vendor_that_the_tap_accepts() -> None:
    """The front page's first configuration: one account per vendor, all passing the tap's
    own checks (schema, required settings, the vendors' account checks) as shown."""
    shown = readme_account_examples()
    assert sorted({vendor for vendor, _ in shown}) == sorted(VENDORS)
    config: dict[str, t.Any] = {"start_date": "2026-01-01T00:00:00Z"}
    for vendor, account in shown:
        config.setdefault(f"{vendor}_accounts", []).append(account)
    tap = TapCallCDR(config=config, validate_config=True, parse_env_config=False)
    assert {stream.name for stream in tap.discover_streams()} == {*STREAMS, "calls"}


# -- item 5: --discover is one line too ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("window_hours", 0),
        ("start_date", "last tuesday"),
        ("lookback_minutes", "two hours"),
    ],
)
def test_discover_refuses_a_bad_config_with_the_same_one_line_as_sync(
    sim: Simulator, path: str, value: t.Any
) -> None:
    config = {**tap_config(sim), path: value}
    synced, discovered = run_cli(config), run_cli(config, extra=["--discover"])
    assert synced.returncode == discovered.returncode == 1
    assert message(error_line(discovered)) == message(error_line(synced))
    assert path in message(error_line(discovered))
    assert not discovered.messages and not discovered.stdout_bytes


def message(line: str) -> str:
    return line.rsplit("| ", 1)[-1]


@pytest.mark.parametrize(
    ("text", "problem"),
    [(None, "not found"), ('{"start_date": ', "Expecting value"), ("[1, 2]", "JSON object")],
)
def test_a_config_file_that_cannot_be_read_is_one_line_naming_it(text: str | None, problem: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "my-config.json")
        if text is not None:
            path.write_text(text)
        args = [tap_executable(), "--config", str(path)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    run = TapRun([], stderr=done.stderr, returncode=done.returncode)
    assert run.returncode == 1
    line = error_line(run)
    assert str(path) in line and problem in line


# -- item 5: the state file and its bookmarks -----------------------------------------------


def run_with_state_text(config: dict[str, t.Any], text: str) -> tuple[TapRun, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "my-state.json")
        path.write_text(text)
        return run_cli(config, extra=["--state", str(path)]), str(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"bookmarks": {"generic_cdr": ', "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"bookmarks": []}', "'bookmarks'"),
        ('{"bookmarks": {"generic_cdr": "2026-01-01"}}', "generic_cdr"),
        ('{"bookmarks": {"generic_cdr": {"partitions": {"account": "hq"}}}}', "partitions"),
    ],
)
def test_a_malformed_state_file_is_one_line_naming_the_file(
    sim: Simulator, text: str, problem: str
) -> None:
    sim.clear_requests()
    run, path = run_with_state_text(tap_config(sim), text)
    assert run.returncode == 1
    line = error_line(run)
    assert path in line and problem in line
    assert sim.requests == []


def partition(account: str, value: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    return {"context": {"account": account}, "replication_key": "starttime",
            "replication_key_value": value, **extra}  # fmt: skip


def state_of(*partitions: dict[str, t.Any], **stream_level: t.Any) -> dict[str, t.Any]:
    return {"bookmarks": {STREAM: {"partitions": list(partitions), **stream_level}}}


@pytest.mark.parametrize("value", ["yesterday", 1732838400, True, "2026-13-45T00:00:00Z"])
def test_a_bookmark_that_is_not_a_date_time_names_stream_account_and_the_reset(
    sim: Simulator, value: t.Any
) -> None:
    sim.clear_requests()
    good = (ANCHOR - dt.timedelta(days=1)).isoformat()
    run = run_cli(tap_config(sim), state=state_of(partition("hq", good), partition("branch", value)))
    assert run.returncode == 1
    line = error_line(run)
    assert STREAM in line and "'branch'" in line and repr(value) in line
    assert "meltano state clear" in line and "remove" in line
    assert sim.requests == []


def test_a_usual_state_gives_no_warning(sim: Simulator) -> None:
    first = run_cli(tap_config(sim, days=2))
    assert first.returncode == 0 and first.last_state
    second = run_cli(tap_config(sim, days=2), state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert not [w for w in warnings_of(second) if "state" in w], second.stderr


def test_a_state_without_account_partitions_is_warned_about(sim: Simulator) -> None:
    late = (ANCHOR - dt.timedelta(hours=1)).isoformat()
    state = {"bookmarks": {STREAM: {"replication_key": "starttime", "replication_key_value": late}}}
    run = run_cli(tap_config(sim, days=2), state=state)
    assert run.returncode == 0, run.stderr
    [warning] = [w for w in warnings_of(run) if "state" in w]
    assert STREAM in warning and "outside any account" in warning
    then = warning.split("This run reads")[1]
    assert "'hq'" in then and "'branch'" in then and "start_date" in then
    fresh = run_cli(tap_config(sim, days=2))
    assert sorted(keys(run.records(STREAM))) == sorted(keys(fresh.records(STREAM)))


def test_unknown_context_keys_and_accounts_no_longer_configured_are_warned_about(
    sim: Simulator,
) -> None:
    late = (ANCHOR - dt.timedelta(minutes=30)).isoformat()
    state = state_of(
        partition("hq", late),
        {"context": {"account": "branch", "region": "eu"}, "replication_key": "starttime",
         "replication_key_value": late},
        partition("closed-office", late),
    )  # fmt: skip
    run = run_cli(tap_config(sim, days=2), state=state)
    assert run.returncode == 0, run.stderr
    [warning] = [w for w in warnings_of(run) if "state" in w]
    ignored, then = warning.split("This run reads")
    assert "'region'" in ignored and "'closed-office'" in ignored and "not configured" in ignored
    assert "'branch'" in then and "start_date" in then and "'hq'" not in then
    fresh = run_cli(tap_config(sim, days=2))
    branch = [key for key in keys(fresh.records(STREAM)) if key[0] == "branch"]
    assert sorted(key for key in keys(run.records(STREAM)) if key[0] == "branch") == sorted(branch)


def test_a_state_for_a_stream_this_run_does_not_read_is_warned_about(sim: Simulator) -> None:
    late = (ANCHOR - dt.timedelta(minutes=30)).isoformat()
    state = {"bookmarks": {"tencent_cdr": {"partitions": [partition("callback", late)]}}}
    run = run_cli(tap_config(sim, days=1), state=state)
    assert run.returncode == 0, run.stderr
    [warning] = [w for w in warnings_of(run) if "state" in w]
    assert "tencent_cdr" in warning and "not read" in warning
    assert run.last_state["bookmarks"]["tencent_cdr"] == state["bookmarks"]["tencent_cdr"]


# -- item 5: start_date in the future ---------------------------------------------------------


def test_a_start_date_in_the_future_is_warned_about(sim: Simulator) -> None:
    sim.clear_requests()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    run = run_cli(tap_config(sim, start_date=future))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    [warning] = [w for w in warnings_of(run) if "start_date" in w]
    assert "future" in warning and future[:10] in warning
    assert not run.records()


# -- item 5: an api_url that cannot be right ---------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("vendor", VENDORS)
def test_connection_refused_points_at_the_accounts_api_url(vendor: str) -> None:
    run = run_cli(vendor_config(vendor, f"http://127.0.0.1:{closed_port()}/"))
    assert run.returncode == 1
    line = error_line(run)
    assert "refused" in line and f"'{vendor}_accounts[0].api_url'" in line


class StatusHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's `status` (a web server with no such API)."""

    def answer(self) -> None:
        body = b"<html><body>no such thing here</body></html>"
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args: t.Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StatusHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [404, 405, 501])
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_url_without_the_api_points_at_the_accounts_api_url(
    web_server: http.server.HTTPServer, vendor: str, status: int
) -> None:
    web_server.status = status  # type: ignore[attr-defined]
    host, port = web_server.server_address[:2]
    config = vendor_config(vendor, f"http://{host}:{port}/")
    config[f"{vendor}_accounts"].insert(0, {**vendor_account(vendor, f"http://{host}:{port}/"), "name": "ok"})
    config[f"{vendor}_accounts"][1]["name"] = "second"
    run = run_cli(config)
    assert run.returncode == 1
    line = error_line(run)
    assert f"HTTP {status}" in line and f"'{vendor}_accounts[1].api_url'" in line


def test_the_simulators_404_for_a_wrong_path_points_at_api_url(sim: Simulator) -> None:
    config = tap_config(sim, "hq")
    config["generic_accounts"][0]["api_url"] = f"{sim.url}/no-such-vendor/"
    line = error_line(run_cli(config))
    assert "login" in line and "HTTP 404" in line and "'generic_accounts[0].api_url'" in line


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_stream_map_reading_a_missing_map_config_key_is_refused_before_any_request(
    sim: Simulator, quote: str
) -> None:
    """docs/meltano.md's PII map salts with config['hash_salt']; run without
    stream_map_config (its variable not exported) it was a KeyError traceback mid-run."""
    sim.clear_requests()
    salted = f"md5(config[{quote}hash_salt{quote}] + (disnumber or ''))"
    config = {**tap_config(sim), "stream_maps": {STREAM: {"disnumber": salted}}}
    run = run_cli(config)
    assert run.returncode == 1
    line = error_line(run)
    assert "stream_map_config" in line and "'hash_salt'" in line
    assert sim.requests == [] and not run.messages
    with_salt = {**config, "stream_map_config": {"hash_salt": "pepper"}}
    assert run_cli(with_salt).returncode == 0


def test_a_negative_fraction_of_a_progress_interval_is_refused() -> None:
    config = vendor_config("generic", "http://127.0.0.1:9/")
    run = run_cli({**config, "progress_interval_seconds": -0.5})
    assert run.returncode == 1
    assert "'progress_interval_seconds'" in error_line(run) and "negative" in error_line(run)
