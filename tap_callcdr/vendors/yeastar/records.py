"""A CDR file's lines to records: what post_process does, in a module light enough for the
row worker (worker.py) to import without the SDK.

The record of a line: `account`, `row_id` (a hash of the documented columns), the documented
columns converted (UTC start, integer durations, text as it is), and `extra`: columns newer
firmware added, or None.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
import typing as t
from collections.abc import Callable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from tap_callcdr.core.fields import FieldConverters, RowError, Text, as_text, to_integer
from tap_callcdr.core.times import local_to_utc
from tap_callcdr.vendors.yeastar.columns import CSV_COLUMNS, INTEGER_FIELDS

RECORD_KEYS = ("account", "row_id", *CSV_COLUMNS, "extra")
BOM = "\ufeff"


def header_names(raw: list[str]) -> list[str]:
    """Column names as written, minus a BOM and surrounding spaces."""
    return [name.lstrip(BOM).strip() for name in raw]


class Layout:
    """A file's columns: where each is in a line, and where the documented ones are."""

    def __init__(self, header: Sequence[str], documented: Sequence[str]) -> None:
        self.header = list(header)
        self.index = {name: i for i, name in enumerate(self.header)}
        self.canonical = self.header == list(documented)  # the usual file: nothing to reorder
        self.positions = [self.index.get(name) for name in documented]
        known = set(documented)
        self.extra = [(name, i) for i, name in enumerate(self.header) if name not in known]


class CsvRow(Mapping[str, str]):
    """One line of a CDR file by column name, without a dict per line: the fields and the
    file's shared Layout. `documented` and `extra` are what a record is built from."""

    __slots__ = ("fields", "layout")

    def __init__(self, fields: list[str], layout: Layout) -> None:
        self.fields, self.layout = fields, layout

    @classmethod
    def of(cls, row: Mapping[str, str], documented: Sequence[str]) -> CsvRow:
        return cls(list(row.values()), Layout(list(row), documented))

    @property
    def documented(self) -> list[str | None]:
        """The documented columns' values in their documented order, None where absent (a copy)."""
        fields, layout = self.fields, self.layout
        if layout.canonical:
            copy: list[str | None] = list(fields)
            return copy
        return [None if i is None else fields[i] for i in layout.positions]

    @property
    def extra(self) -> dict[str, str] | None:
        """Columns beyond the documented ones (newer firmware), or None if there are none."""
        extra = self.layout.extra
        return {name: self.fields[i] for name, i in extra} if extra else None

    def __getitem__(self, name: str) -> str:
        return self.fields[self.layout.index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.header)

    def __len__(self) -> int:
        return len(self.layout.header)

    def __repr__(self) -> str:
        return repr(dict(self))


def build_record(line: CsvRow, account: str, convert: FieldConverters) -> dict[str, t.Any]:
    """The record of one line; a value its converter refuses raises (CONVERSION_ERRORS)."""
    values = line.documented  # CSV_COLUMNS order: hashed, then converted in place
    row_id = _row_id(values)
    convert.convert_in_place(values)
    record = dict(zip(RECORD_KEYS, [account, row_id, *values, line.extra], strict=True))
    if not record["callid"] or record["timestart"] is None:
        raise RowError(f"CDR row without callid/timestart: {line}")
    return record


def row_id(row: dict[str, str]) -> str:
    """Identity of one CSV row: callid repeats for every leg of a transferred call, and no
    other documented column is unique, so hash all of them (extras excluded: a firmware
    update adding columns must not change the ids of rows already loaded)."""
    return _row_id(list(map(row.get, CSV_COLUMNS)))


def _row_id(values: list[str | None]) -> str:
    """row_id of the documented columns' values, in CSV_COLUMNS order."""
    return hashlib.blake2b(_json_text(values).encode(), digest_size=16).hexdigest()


def _json_text(values: list[str | None]) -> str:
    """`json.dumps(values, ensure_ascii=False)` without building an encoder per call."""
    if _C_ENCODER is None:
        return json.dumps(values, ensure_ascii=False)
    return "".join(_C_ENCODER(values, 0))


# json.dumps's own C encoder with dumps' settings: (markers, default, encoder, indent,
# key separator, item separator, sort_keys, skipkeys, allow_nan).
_C_ENCODER = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, None, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def _iso(value: str | None) -> str | None:
    return value.strip().replace("/", "-") if value else value


@functools.cache
def converters(zone: ZoneInfo) -> FieldConverters:
    """The typed columns' converters, for a PBX in `zone` (one pass per row)."""

    def utc(value: str | None) -> str | None:
        return local_to_utc(_iso(value), zone)

    typed: dict[str, Callable[[t.Any], t.Any]] = {"timestart": utc}
    typed.update(dict.fromkeys(INTEGER_FIELDS, to_integer))
    text = Text(as_text)  # CSV text stays as it is
    # in CSV_COLUMNS order: post_process hashes the same values list before converting it
    return FieldConverters({name: typed.get(name, text) for name in CSV_COLUMNS})
