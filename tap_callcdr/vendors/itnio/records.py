"""ITNIO answers' rows to records: what post_process does, in a module light enough for the
row worker (itnio/worker.py) to import without the SDK.

The record of a row: `account`, then every field converted (UTC times, integers, exact
decimals, text as it is).
"""

from __future__ import annotations

import decimal
import functools
import json
import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.core.fields import FieldConverters, RowError, Text, to_integer
from tap_callcdr.core.times import instant_to_utc
from tap_callcdr.vendors.itnio.columns import INTEGER_FIELDS, TIME_FIELDS


@functools.cache
def converters(zone: ZoneInfo, strings: tuple[str, ...], decimals: tuple[str, ...]) -> FieldConverters:
    """Each field's converter, for an account in `zone` (one pass per record)."""

    def utc(value: t.Any) -> str | None:
        return instant_to_utc(value, zone)

    return FieldConverters({
        **dict.fromkeys(strings, Text(_text)),
        **dict.fromkeys(TIME_FIELDS, utc),
        **dict.fromkeys(INTEGER_FIELDS, to_integer),
        **dict.fromkeys(decimals, _decimal),
    }, lead=("account",))


def build_record(row: t.Mapping[str, t.Any], account: str, convert: FieldConverters) -> dict[str, t.Any]:
    """The record of one row; a value its converter refuses raises (CONVERSION_ERRORS)."""
    record = convert.record(row, account)
    if not record["voiceId"] or record["callTime"] is None:
        raise RowError(f"record without voiceId or callTime: {row}")
    return record


def in_window(row: t.Mapping[str, t.Any], utc: t.Callable[[t.Any], str | None], sent: str, end: str) -> bool:
    """The row belongs to the window that ends at `end` (UTC text; `sent`: that end as sent to
    the vendor): its callTime is before it, or missing (build_record then says why). A record
    at exactly the end is the next window's. A callTime `utc` refuses raises."""
    value = row.get("callTime")
    if text_before(value, sent):
        return True
    call_time = utc(value)
    return call_time is None or call_time < end


def text_before(value: t.Any, sent: str) -> bool:
    """`value` is before `sent`, told by the text: both have the shape and offset of
    isoformat(timespec="seconds"). (A value of that shape that is no time fails later.)"""
    return (
        type(value) is str and len(value) == len(sent) and value[10] == "T"
        and value[19:] == sent[19:] and value < sent
    )  # fmt: skip


def _decimal(value: t.Any) -> decimal.Decimal | None:
    """The vendor's digits exactly (JSON numbers arrive as Decimal too, see envelope)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(value)
    number = decimal.Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(value)
    return number


def _text(value: t.Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
