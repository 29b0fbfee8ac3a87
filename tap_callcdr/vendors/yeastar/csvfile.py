"""The CDR download: spooled to disk as it arrives, then read row by row.

Spooling (not parsing while downloading) is what makes a cut connection harmless: a window's
rows are emitted only once its whole file is here, so the retry that fetches it again (with a
new random) never emits half a window twice. Memory stays flat: past SPOOL_BYTES the spool
is a temporary file.
"""

from __future__ import annotations

import csv
import io
import tempfile
import typing as t
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tap_callcdr.core.answers import excerpt
from tap_callcdr.core.errors import IncompleteAnswerError, MalformedResponseError
from tap_callcdr.vendors.yeastar.records import CsvRow, Layout, header_names

SPOOL_BYTES = 1 << 20
CHUNK_BYTES = 1 << 16
MAX_JSON_BYTES = 1 << 20  # an error answer is a few bytes; more is not an error answer

Describe = Callable[[str], str]


def first_bytes(chunks: Iterator[bytes]) -> bytes:
    """The first non-empty chunk, to tell a JSON error answer from a CSV file."""
    return next((chunk for chunk in chunks if chunk), b"")


def looks_like_json(first: bytes) -> bool:
    return first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def looks_like_a_page(first: bytes) -> bool:
    """An HTML/XML page (a proxy's or gateway's) where the CSV file should be."""
    return first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def read_json(first: bytes, chunks: Iterator[bytes]) -> bytes:
    body = bytearray(first)
    for chunk in chunks:
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            break
    return bytes(body)


def spool(
    first: bytes, chunks: Iterable[bytes], describe: Describe, directory: Path | None = None
) -> t.IO[bytes]:
    """Copy the whole body to a spool; the caller closes it. With a `directory`, the spool is
    a named file there (for a row worker to read by name), removed when closed.

    A file whose last row has no line end was cut in transit (the PBX ends every row with
    one), even when a proxy framed the cut body with a matching Content-Length: retried."""
    if not first:
        raise IncompleteAnswerError(describe("the PBX sent an empty CDR file"))
    file = (  # returned open
        tempfile.NamedTemporaryFile(dir=directory, suffix=".csv")  # noqa: SIM115
        if directory is not None
        else tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    )
    try:
        last = first
        file.write(first)
        for chunk in chunks:
            file.write(chunk)
            last = chunk or last
        if not last.endswith(b"\n"):
            raise IncompleteAnswerError(describe(cut_row(last)))
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return t.cast(t.IO[bytes], file)


def cut_row(last: bytes) -> str:
    """What a file cut inside a row says, quoting the cut row (what the last chunk holds of it)."""
    row = last[last.rfind(b"\n") + 1 :]
    return f"the CDR file ends inside a row (no line end after it): {excerpt(row)}"


class CdrTable:
    """The rows of a CDR file by column name; closing it closes the file.

    Column names are as written, minus a BOM and surrounding spaces. Blank lines are skipped;
    a row whose field count differs from the header's is corrupt (an unquoted comma, a cut
    line) and stops the run rather than shifting values into the wrong columns.
    """

    def __init__(
        self, file: t.IO[bytes], *, encoding: str, describe: Describe, documented: Sequence[str] = ()
    ) -> None:
        self.encoding, self.describe = encoding, describe
        self.text = io.TextIOWrapper(file, encoding=encoding, newline="")  # owns `file` now
        self.reader = csv.reader(self.text)
        try:
            with _decoding(describe, encoding):
                raw = next(self.reader, [])
        except BaseException:
            self.close()
            raise
        self.header = header_names(raw)
        if len(set(self.header)) != len(self.header):
            self.close()
            raise MalformedResponseError(describe(f"CSV header repeats a column: {raw}"))
        self.layout = Layout(self.header, documented)

    def __iter__(self) -> Iterator[CsvRow]:
        layout, width = self.layout, len(self.header)
        with _decoding(self.describe, self.encoding):
            for fields in self.reader:
                if not fields:
                    continue
                if len(fields) != width:
                    raise MalformedResponseError(
                        self.describe(
                            f"CSV line {self.reader.line_num} has {len(fields)} fields, the "
                            f"header {width} (it starts {fields[0]!r})"
                        )
                    )
                yield CsvRow(fields, layout)

    def close(self) -> None:
        self.text.close()

    def __enter__(self) -> CdrTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _decoding(describe: Describe, encoding: str) -> Iterator[None]:
    """Bad bytes or broken quoting as one line naming the setting that may fix it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise MalformedResponseError(
            describe(
                f"the CDR file is not {encoding} ({exc.reason} at byte {exc.start}): "
                "set 'csv_encoding' of this account (e.g. gbk)"
            )
        ) from None
    except csv.Error as exc:
        raise MalformedResponseError(describe(f"the CDR file is not valid CSV: {exc}")) from None
