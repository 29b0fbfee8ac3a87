"""Run the tap the way a user's pipeline does, and read what it emitted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from tap_callcdr.tap import TapCallCDR


@dataclass
class TapRun:
    """The Singer messages of one run, plus how it ended."""

    messages: list[dict[str, t.Any]]
    stderr: str = ""
    stdout_bytes: bytes = b""
    returncode: int = 0
    error: BaseException | None = field(default=None)

    def records(self, stream: str | None = None) -> list[dict[str, t.Any]]:
        return [
            m["record"]
            for m in self.messages
            if m["type"] == "RECORD" and (stream is None or m["stream"] == stream)
        ]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any] | None:
        return self.states[-1] if self.states else None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if " ERROR " in line or "error" in line]


def parse_messages(
    text: str, parse_float: t.Callable[[str], t.Any] | None = None
) -> list[dict[str, t.Any]]:
    return [json.loads(line, parse_float=parse_float) for line in text.splitlines() if line.startswith("{")]


ExpectedError = type[BaseException] | tuple[type[BaseException], ...]


def run_tap(
    config: dict,
    state: dict | None = None,
    *,
    expect_error: ExpectedError | None = None,
    parse_float: t.Callable[[str], t.Any] | None = None,
) -> TapRun:
    """In-process run: fast, and still every request crosses a real socket.

    A run that fails raises its error, unless the test says which error it expects
    (`expect_error`); then a run that finishes cleanly or fails otherwise raises instead,
    and `run.error` holds the error for the test's checks of its message.
    `parse_float=decimal.Decimal` reads numbers the way SDK targets do.
    """
    out = io.StringIO()
    error: BaseException | None = None
    with contextlib.redirect_stdout(out):
        try:
            tap = TapCallCDR(config=config, state=state, validate_config=True)
            try:
                tap.sync_all()
            finally:  # as the CLI does: lines not covered by a STATE still go out
                tap.message_writer.flush()
        except Exception as exc:
            error = exc
    check_error(error, expect_error)
    return TapRun(parse_messages(out.getvalue(), parse_float), error=error)


def check_error(error: BaseException | None, expected: ExpectedError | None) -> None:
    """A crash fails the test that did not expect it, and a clean finish the test that did."""
    if expected is None:
        if error is not None:
            raise error
        return
    if error is None:
        raise AssertionError(f"the run finished cleanly; expected {expected!r}")
    if not isinstance(error, expected):
        raise AssertionError(f"expected {expected!r}, got {error!r}") from error


def run_cli(
    config: dict,
    state: dict | None = None,
    *,
    extra: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
    raw: bool = False,
) -> TapRun:
    """The real console script, as Meltano invokes it (`raw`: keep stdout's exact bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [tap_executable(), "--config", write_json(Path(tmp, "config.json"), config)]
        if state is not None:
            args += ["--state", write_json(Path(tmp, "state.json"), state)]
        done = subprocess.run(
            [*args, *extra],
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**env_without_secrets(), **(env or {})},
        )
    stdout, stderr = done.stdout.decode(), done.stderr.decode(errors="replace")
    return TapRun(
        parse_messages(stdout),
        stderr=stderr,
        returncode=done.returncode,
        stdout_bytes=done.stdout if raw else b"",
    )


def tap_executable() -> str:
    return str(Path(sys.executable).with_name("tap-callcdr"))


def write_json(path: Path, value: t.Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TAP_CALLCDR")}


def assert_retried(requests: list[dict[str, t.Any]], kind: str) -> None:
    """Every request the simulator answered with fault `kind` was sent again, unchanged, and
    that retry got a normal answer (from the simulator's request log, oldest first). The log
    masks credentials: give it one account's requests."""
    faulted = [i for i, request in enumerate(requests) if request["fault"] == kind]
    assert faulted, f"no request met the {kind!r} fault"
    for i in faulted:
        sent = (requests[i]["path"], requests[i]["params"])
        again = [r for r in requests[i + 1 :] if (r["path"], r["params"]) == sent]
        assert again and again[0]["fault"] is None, f"not retried after {kind!r}: {sent}"


def assert_matches_truth(
    records: list[dict[str, t.Any]], truth: dict[tuple[str, t.Any], dict[str, t.Any]], id_field: str
) -> None:
    """Every call exactly once (keyed by account and `id_field`), with the expected values."""
    assert sorted((r["account"], r[id_field]) for r in records) == sorted(truth), (
        "missing or duplicated calls"
    )
    for record in records:
        want = truth[(record["account"], record[id_field])]
        got = {name: record[name] for name in want}
        assert got == want, f"wrong values for {record['account']}/{record[id_field]}"
