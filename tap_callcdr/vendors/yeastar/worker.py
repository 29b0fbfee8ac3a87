"""A row worker: turns a CDR file, or a part of one, into record lines in its own process,
so files are converted on several cores (the tap's own process is one core: the GIL).

    task "tap_callcdr.vendors.yeastar.worker:convert_file", run by tap_callcdr/fastpath/worker.py
    on the parts rowworkers.FILE_AT_NEWLINES cuts a file into

A job names the CSV file and the byte range to read, the record lines file to write, the
file's encoding, the account's name and zone and the conformance check; the task answers
with the count of records written, or raises a Fallback. It converts only what the tap's
own path would emit unchanged (records.build_record, then the same conformance check); anything
else (a header with missing or extra columns, a value that does not convert, bad bytes or
CSV, a record across a cut) is a fallback: the tap then reads that file itself, warnings and
errors as always. Imports no SDK, so it starts in well under 0.1 s.
"""

from __future__ import annotations

import codecs
import csv
import io
import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.fastpath.worker import Fallback, line_encoder
from tap_callcdr.vendors.yeastar.columns import CSV_COLUMNS
from tap_callcdr.vendors.yeastar.records import CsvRow, Layout, build_record, converters, header_names

CHUNK_BYTES = 1024 * 1024  # read at once by a worker: memory stays flat whatever the part's size


def convert_file(job: dict[str, t.Any]) -> int:
    """The lines of job["input"] from byte job["start"] to job["stop"] (None: the end), each as
    a record's JSON on a line of job["out"]; the count.

    A part that starts past the header reads the header from the file's start. A part that
    ends at `stop` must end there on a record's end as the csv module reads the whole file:
    a record running past it (a quoted field with a line break) ends the part inside quotes,
    which the strict reader refuses, and the tap reads the file itself.
    """
    convert = converters(ZoneInfo(job["zone"]))
    encode = line_encoder(job)
    account, count = job["account"], 0
    with open(job["input"], "rb") as raw, open(job["out"], "wb") as out:
        lines = _Lines(raw, job["encoding"])
        header = header_names(next(csv.reader(lines), []))
        layout = Layout(header, CSV_COLUMNS)
        if not layout.canonical:
            raise Fallback("columns other than the documented ones")
        start, stop = max(job["start"], lines.position), job["stop"]  # the header read already
        if stop is not None and start > stop:
            raise Fallback("a record runs across the split")
        part = _part_lines(raw, job["encoding"], start, stop)
        batch: list[bytes] = []
        try:
            for fields in csv.reader(part, strict=True):
                if fields:
                    if len(fields) != len(header):
                        raise Fallback("a line with another field count")
                    batch.append(encode(build_record(CsvRow(fields, layout), account, convert)))
                    if len(batch) == 1000:
                        count += _write(out, batch)
        except csv.Error as error:
            raise Fallback(f"a record runs across the split, or quoting left to the tap: {error}") from None
        count += _write(out, batch)
    return count


def _part_lines(raw: t.BinaryIO, encoding: str, start: int, stop: int | None) -> t.Iterator[str]:
    """The text lines of bytes start..stop of `raw` (stop None: the end), as the tap's own
    reader splits them (newline=""), read CHUNK_BYTES at a time, each chunk cut after a newline
    (see _Lines for the encodings) and split by the io module, not a Python call per line."""
    raw.seek(start)
    decoder = codecs.getincrementaldecoder(encoding)()
    left = -1 if stop is None else stop - start  # -1: to the end
    while left:
        data = raw.read(CHUNK_BYTES if left < 0 else min(CHUNK_BYTES, left))
        if not data:
            break
        if not data.endswith(b"\n"):  # the rest of the line (a split point ends one)
            data += raw.readline(-1 if left < 0 else max(0, left - len(data)))
        if left > 0:
            left -= len(data)
        yield from io.StringIO(decoder.decode(data), newline="")
    if tail := decoder.decode(b"", final=True):
        yield tail


class _Lines:
    """A file's lines decoded one by one, knowing the byte offset after the last one read.

    Only for encodings where a newline byte is never part of another character (utf-8, gbk,
    gb18030, big5, ...): then splitting the bytes at newlines and decoding each part is what
    decoding the whole and splitting it gives (CdrTable reads with newline="", no translation).
    """

    def __init__(self, raw: t.BinaryIO, encoding: str) -> None:
        self.raw, self.encoding, self.position = raw, encoding, 0

    def __iter__(self) -> t.Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.position += len(line)
        return line.decode(self.encoding)


def _write(out: t.IO[bytes], lines: list[bytes]) -> int:
    if lines:
        out.write(b"\n".join(lines) + b"\n")
    written = len(lines)
    lines.clear()
    return written
