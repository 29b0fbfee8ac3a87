"""Vendor times to UTC ISO 8601 text, the one format records carry.

These run for every time field of every record, so the zone lookup is done once per
local hour rather than per value: a zone's offset is the same throughout almost every
hour, and an hour where it changes (a DST switch at :30, say) takes the exact path.
Results are the same as `iso_utc(datetime.fromisoformat(value).replace(tzinfo=zone))`;
tests/test_times.py checks that on every kind of hour, DST switches included.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tap_callcdr.windows import iso_utc

_UNKNOWN = dt.timedelta(days=-99)  # no zone has this offset: "not looked up yet"
_offsets: dict[tuple[ZoneInfo, str], dt.timedelta | None] = {}  # None: changes within the hour
_OFFSETS_KEPT = 200_000  # local hours remembered (about 20 zone-years); then start over


def local_to_utc(value: str | None, zone: ZoneInfo) -> str | None:
    """A vendor's zone-less local time ('2025-10-16 17:31:13') as a UTC instant.

    Empty, null and all-zero values mean "never happened" (e.g. an unanswered call). An
    offset in the value is ignored: these vendors' local times are in the account's zone.
    """
    if not value or value.startswith("0000"):
        return None
    local = dt.datetime.fromisoformat(value)
    if local.tzinfo is not None or local.microsecond:
        return iso_utc(local.replace(tzinfo=zone))
    offset = _hour_offset(zone, value[:13], local)  # 'YYYY-MM-DD HH': the local hour
    if offset is None:
        return iso_utc(local.replace(tzinfo=zone))
    return (local - offset).isoformat() + "Z"


def _hour_offset(zone: ZoneInfo, hour_key: str, local: dt.datetime) -> dt.timedelta | None:
    """The zone's offset throughout `local`'s hour; None if it changes within the hour.

    `hour_key`, the value's first 13 characters, names the hour for any ISO 8601 shape
    fromisoformat reads (extended 'YYYY-MM-DD HH', basic 'YYYYMMDDTHHMM', a date alone).
    """
    key = (zone, hour_key)
    offset = _offsets.get(key, _UNKNOWN)
    if offset is _UNKNOWN:
        start = local.replace(minute=0, second=0, tzinfo=zone)
        first, last = start.utcoffset(), start.replace(minute=59, second=59).utcoffset()
        offset = first if first == last else None
        if len(_offsets) >= _OFFSETS_KEPT:
            _offsets.clear()
        _offsets[key] = offset
    return offset


_fixed_offsets: dict[str, dt.timedelta] = {}


def instant_to_utc(value: str | None, zone: ZoneInfo) -> str | None:
    """An ISO 8601 time read with the offset it carries ('2025-10-16T17:31:13+08:00'); one
    without an offset is in `zone`. "" means never happened."""
    if value is None or value == "":
        return None
    if len(value) == 25 and value[10] in "T " and value[19] in "+-" and value[22] == ":":
        offset = _fixed_offsets.get(value[19:])
        if offset is None:
            offset = dt.datetime.fromisoformat(value).utcoffset()
            assert offset is not None
            _fixed_offsets[value[19:]] = offset
        return (dt.datetime.fromisoformat(value[:19]) - offset).isoformat() + "Z"
    moment = dt.datetime.fromisoformat(value)
    return iso_utc(moment if moment.tzinfo else moment.replace(tzinfo=zone))
