"""ITNIO answers' rows to records: what post_process does, in a module light enough for the
row worker (itnio/worker.py) to import without the SDK.

The record of a row: `account`, then every field converted (UTC times, integers, exact
decimals, text as it is). Money is a Decimal, or with use_singer_decimal the same digits as
`x-singer.decimal` text (`money_as_text`).
"""

from __future__ import annotations

import decimal
import functools
import json
import re
import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.core.fields import FieldConverters, RowError, Text, to_integer
from tap_callcdr.core.times import instant_to_utc
from tap_callcdr.vendors.itnio.columns import INTEGER_FIELDS, MONEY_PRECISION, MONEY_SCALE, TIME_FIELDS


@functools.cache
def converters(
    zone: ZoneInfo, strings: tuple[str, ...], decimals: tuple[str, ...], money_as_text: bool = False
) -> FieldConverters:
    """Each field's converter, for an account in `zone` (one pass per record); money as
    Decimals, or as their text with `money_as_text` (chosen here: no cost per record)."""

    def utc(value: t.Any) -> str | None:
        return instant_to_utc(value, zone)

    return FieldConverters({
        **dict.fromkeys(strings, Text(_text)),
        **dict.fromkeys(TIME_FIELDS, utc),
        **dict.fromkeys(INTEGER_FIELDS, to_integer),
        **dict.fromkeys(decimals, _decimal_text if money_as_text else _decimal),
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


# The vendor's usual text, which fits DECIMAL(MONEY_PRECISION, MONEY_SCALE) as it is
_PLAIN_MONEY = re.compile(rf"-?[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(\.[0-9]{{1,{MONEY_SCALE}}})?")


def _decimal_text(value: t.Any) -> str | None:
    """The vendor's digits as text (fixed-point, never an exponent) for a DECIMAL(MONEY_PRECISION,
    MONEY_SCALE) column; a value that column would round or overflow is refused. Plain text
    is passed as it is (one regex match: 4x faster than through a Decimal)."""
    if type(value) is str and _PLAIN_MONEY.fullmatch(value):
        return value
    number = _decimal(value)
    if number is None:
        return None
    _, digits, exponent = number.as_tuple()  # the digits, not round(): no 28-digit context
    if int(exponent) < -MONEY_SCALE and any(digits[int(exponent) + MONEY_SCALE :]):
        raise ValueError(f"more than {MONEY_SCALE} decimals")
    if number.adjusted() >= MONEY_PRECISION - MONEY_SCALE:
        raise ValueError(f"more than {MONEY_PRECISION - MONEY_SCALE} whole digits")
    return format(number, "f")


def _text(value: t.Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
