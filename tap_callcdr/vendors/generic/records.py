"""GetBill rows to records: what post_process does, in a module that imports no SDK.

The record of a row: `account`, then every field converted (UTC times from the account's
local ones, integers, text as it is), v1 names under their column.
"""

from __future__ import annotations

import functools
import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.core.fields import FieldConverters, RowError, Text, as_text, to_integer
from tap_callcdr.core.times import local_to_utc
from tap_callcdr.vendors.generic.columns import INTEGER_FIELDS, RENAMED, STRING_FIELDS, TIME_FIELDS


@functools.cache
def converters(zone: ZoneInfo) -> FieldConverters:
    """Each column's converter, for an account in `zone`."""

    def utc(value: t.Any) -> str | None:
        return local_to_utc(value, zone)

    return FieldConverters({
        **dict.fromkeys(TIME_FIELDS, utc),
        **dict.fromkeys(INTEGER_FIELDS, to_integer),
        **dict.fromkeys(STRING_FIELDS, Text(as_text)),
    }, lead=("account",))


def build_record(row: dict[str, t.Any], account: str, convert: FieldConverters) -> dict[str, t.Any]:
    """The record of one row (v1 names renamed in it); a value its converter refuses raises
    (CONVERSION_ERRORS)."""
    for old, new in RENAMED.items():
        if old in row:
            row.setdefault(new, row.pop(old))
    record = convert.record(row, account)
    if record["id"] is None or record["starttime"] is None:
        raise RowError(f"record without id or starttime: {row}")
    return record
