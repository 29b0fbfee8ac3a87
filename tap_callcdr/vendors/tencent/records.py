"""getCdr rows to records: what post_process does, in a module that imports no SDK.

The record of a row: `account`, `callId`, then every field converted: UTC times (the doc
shows epoch seconds, "0" for a moment that never happened; its table says local time),
integer codes and seconds, text as it is.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.core.fields import FieldConverters, RowError, Text, as_text, to_integer
from tap_callcdr.core.times import epoch_to_utc, local_to_utc
from tap_callcdr.vendors.tencent.columns import INTEGER_FIELDS, STRING_FIELDS, TIME_FIELDS

DEFAULT_CALL_TYPE = 3  # the doc: a record without callType is a callback, type 3


def build_record(row: t.Mapping[str, t.Any], account: str, convert: FieldConverters) -> dict[str, t.Any]:
    """The record of one row; a value its converter refuses raises (CONVERSION_ERRORS)."""
    if not row.get("callId"):
        raise RowError(f"record without callId: {row}")
    record = convert.record(row, account, str(row["callId"]))
    if record["callType"] is None:
        record["callType"] = DEFAULT_CALL_TYPE
    return record


def utc_of(value: t.Any, zone: ZoneInfo) -> str | None:
    """Epoch seconds as the doc's example has them ("0": that moment never happened), or
    local 'yyyy-MM-dd HH:mm:ss' in the account's zone, as the doc's table says."""
    text = "" if value is None else str(value).strip()
    if text in ("", "0") or text.startswith("0000"):
        return None
    if text.isascii() and text.isdigit():
        return epoch_to_utc(int(text))
    dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")  # that shape, or ValueError
    return local_to_utc(text, zone)


@functools.cache
def converters(zone: ZoneInfo) -> FieldConverters:
    """Each column's converter, for an account in `zone` (one pass per record)."""

    def instant(value: t.Any) -> str | None:
        return utc_of(value, zone)

    return FieldConverters({
        **dict.fromkeys(TIME_FIELDS, instant),
        **dict.fromkeys(INTEGER_FIELDS, to_integer),
        **dict.fromkeys(STRING_FIELDS, Text(as_text)),
    }, lead=("account", "callId"))
