"""A row worker: turns CDR files into record lines in its own process, so the files of
several PBXs are converted on several cores (the tap's own process is one core: the GIL).

    python -m tap_callcdr.yeastar.worker     # started by offload.RowWorkers, not by hand

Reads one job per line on stdin (JSON: the CSV file to read and the record lines file to
write, the file's encoding, the account's name and zone, the conformance check) and answers
each with one line on stdout: {"records": n}, or {"fallback": why}. It converts only what the
tap's own path would emit unchanged (rows.build_record, then the same conformance check);
anything else (a header with missing or extra columns, a value that does not convert, bad
bytes or CSV) is a fallback: the tap then reads that file itself, warnings and errors as
always. Imports no SDK, so it starts in well under 0.1 s.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import typing as t
from zoneinfo import ZoneInfo

import msgspec

from tap_callcdr.conformance import ConformanceCheck
from tap_callcdr.yeastar.columns import CSV_COLUMNS
from tap_callcdr.yeastar.rows import CsvRow, Layout, build_record, converters, header_names

ENCODE = msgspec.json.Encoder().encode  # str, int and None only (checked): as the SDK's encoder


class Fallback(Exception):
    """The tap reads this file itself."""


def convert_file(job: dict[str, t.Any]) -> int:
    """Every line of job["csv"] as a record's JSON on a line of job["out"]; the count."""
    convert = converters(ZoneInfo(job["zone"]))
    check = ConformanceCheck.of(job["keys"], job["usable"]) if job["check"] else None
    account, count = job["account"], 0
    with open(job["csv"], "rb") as raw, open(job["out"], "wb") as out:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=job["encoding"], newline=""))
        header = header_names(next(reader, []))
        layout = Layout(header, CSV_COLUMNS)
        if not layout.canonical:
            raise Fallback("columns other than the documented ones")
        lines: list[bytes] = []
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise Fallback("a line with another field count")
            record = build_record(CsvRow(fields, layout), account, convert)
            if check is not None and not check.unchanged(record):
                raise Fallback("a record the SDK's conformance would change")
            lines.append(ENCODE(record))
            if len(lines) == 1000:
                count += _write(out, lines)
        count += _write(out, lines)
    return count


def _write(out: t.IO[bytes], lines: list[bytes]) -> int:
    if lines:
        out.write(b"\n".join(lines) + b"\n")
    written = len(lines)
    lines.clear()
    return written


def answer(job: dict[str, t.Any]) -> dict[str, t.Any]:
    try:
        return {"records": convert_file(job)}
    except Fallback as why:
        return {"fallback": str(why)}
    except Exception as error:  # whatever it is, the tap's own path reports it
        return {"fallback": f"{type(error).__name__}: {error}"[:300]}


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
