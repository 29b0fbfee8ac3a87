"""A row worker process (rowworkers.py starts them; not run by hand), and what its tasks use:

    python -m tap_callcdr.fastpath.worker

Reads one job per line on stdin (JSON; its "task" names the vendor code to run, as
"tap_callcdr.<module>:<function>"; `input_bytes` raw bytes follow when the input comes in
the pipe) and answers each with one line on stdout: {"records": n} when the task wrote the
records' lines to job["out"], {"records": n, "output_bytes": m} followed by the m bytes of
lines, or {"fallback": why}. Any error is a fallback: the
tap then converts that input itself, with its own warnings and errors. Tasks live in light
modules that import no SDK, so a worker starts in well under 0.1 s (tests/test_row_workers.py
checks that importing this module or a vendor's worker.py loads neither the SDK nor requests).
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import typing as t

import msgspec

from tap_callcdr.fastpath.conformance import ConformanceCheck

Task = t.Callable[[dict[str, t.Any]], "int | tuple[int, bytes]"]
_tasks: dict[str, Task] = {}
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode  # as the SDK's encoder writes


class Fallback(Exception):
    """Raised by a task: the tap converts this input itself."""


def line_encoder(job: dict[str, t.Any]) -> t.Callable[[dict[str, t.Any]], bytes]:
    """For a task: a record's JSON as the tap would write it, after the job's conformance
    check (CDRStream.worker_job); a record the SDK's conformance would change is a Fallback."""
    if not job["check"]:
        return _ENCODE
    check = ConformanceCheck.of(job["keys"], job["usable"])

    def encode(record: dict[str, t.Any]) -> bytes:
        if not check.unchanged(record):
            raise Fallback("a record the SDK's conformance would change")
        return _ENCODE(record)

    return encode


def task(name: str) -> Task:
    if name not in _tasks:
        module, _, function = name.partition(":")
        if not module.startswith("tap_callcdr."):
            raise Fallback(f"not a task of this tap: {name!r}")
        _tasks[name] = getattr(importlib.import_module(module), function)
    return _tasks[name]


def answer(job: dict[str, t.Any]) -> tuple[dict[str, t.Any], bytes]:
    """The reply to a job, and the output bytes that follow it in the pipe."""
    try:
        done = task(job["task"])(job)
    except Fallback as why:
        return {"fallback": str(why)}, b""
    except Exception as error:  # whatever it is, the tap's own path reports it
        return {"fallback": f"{type(error).__name__}: {error}"[:300]}, b""
    if isinstance(done, tuple):  # (records, their lines): answered in the pipe
        records, output = done
        return {"records": records, "output_bytes": len(output)}, output
    return {"records": done}, b""


def main() -> None:
    """Jobs in, answers out: a JSON line, then input_bytes/output_bytes raw bytes if any."""
    # Ctrl-C reaches the whole process group: the tap stops its workers itself (end of input)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while line := requests.readline():
        job = json.loads(line)
        if job.get("input_bytes"):
            job["payload"] = requests.read(job["input_bytes"])
        reply, output = answer(job)
        replies.write(json.dumps(reply).encode() + b"\n" + output)
        replies.flush()


if __name__ == "__main__":
    main()
