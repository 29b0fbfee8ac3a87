"""Vendor times to UTC ISO 8601 text, the one format records carry.

These run for every time field of every record, so each is cheap in the common case:
- a value whose hour was converted before is that hour's UTC text plus its minutes and
  seconds (for offsets of whole hours, the usual case; a window's calls share hours);
- otherwise the zone is looked up once per local hour, not per value: a zone's offset is
  the same throughout almost every hour, and an hour where it changes (a DST switch at
  :30, say) takes the exact path.
Results are those of `iso_utc(datetime.fromisoformat(value).replace(tzinfo=zone))`;
tests/test_times.py checks that on every kind of hour, DST switches included.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tap_callcdr.core.windows import iso_utc, parse_instant

HOUR = dt.timedelta(hours=1)
_UNKNOWN = dt.timedelta(days=-99)  # no zone has this offset: "not looked up yet"
_offsets: dict[tuple[ZoneInfo, str], dt.timedelta | None] = {}  # None: changes within the hour
_OFFSETS_KEPT = 200_000  # local hours remembered (about 20 zone-years); then start over
_HOURS_KEPT = 10_000  # hours remembered per zone or offset (~2 MB, a year); then start over
_local_hours: dict[ZoneInfo, dict[str, str]] = {}  # 'YYYY-MM-DD HH' (local) -> 'YYYY-MM-DDTHH' (UTC)
_offset_hours: dict[str, dict[str, str]] = {}  # the same, per offset suffix ('+08:00')


def local_to_utc(value: str | None, zone: ZoneInfo) -> str | None:
    """A vendor's zone-less local time ('2025-10-16 17:31:13') as a UTC instant.

    Empty, null and all-zero values mean "never happened" (e.g. an unanswered call). An
    offset in the value is ignored: these vendors' local times are in the account's zone.
    """
    if not value or value.startswith("0000"):
        return None
    if len(value) == 19:
        hours = _local_hours.get(zone)
        head = hours.get(value[:13]) if hours is not None else None
        if head is not None and value[13:] in _MINUTES_SECONDS:
            return head + value[13:] + "Z"
    return _local_to_utc(value, zone)


def _local_to_utc(value: str, zone: ZoneInfo) -> str:
    local = dt.datetime.fromisoformat(value)
    if local.tzinfo is not None or local.microsecond:
        return iso_utc(local.replace(tzinfo=zone))
    offset = _hour_offset(zone, value[:13], local)  # 'YYYY-MM-DD HH': the local hour
    if offset is None:
        return iso_utc(local.replace(tzinfo=zone))
    text = (local - offset).isoformat() + "Z"
    if len(value) == 19 and _plain_shape(value) and not offset % HOUR:  # minutes, seconds kept
        _remember(_local_hours.setdefault(zone, {}), value[:13], text[:13])
    return text


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


def instant_to_utc(value: str | None, zone: ZoneInfo) -> str | None:
    """An ISO 8601 time read with the offset it carries ('2025-10-16T17:31:13+08:00'); one
    without an offset is in `zone`. "" means never happened."""
    if value is None or value == "":
        return None
    if len(value) == 25:
        hours = _offset_hours.get(value[19:])
        head = hours.get(value[:13]) if hours is not None else None
        if head is not None and value[13:19] in _MINUTES_SECONDS:
            return head + value[13:19] + "Z"
    return _instant_to_utc(value, zone)


def _instant_to_utc(value: str, zone: ZoneInfo) -> str:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return iso_utc(moment.replace(tzinfo=zone))
    text = iso_utc(moment)
    offset = moment.utcoffset()
    shaped = len(value) == 25 and value[19] in "+-" and value[22] == ":" and _plain_shape(value)
    if shaped and offset is not None and not offset % HOUR:
        _remember(_offset_hours.setdefault(value[19:], {}), value[:13], text[:13])
    return text


def _plain_shape(value: str) -> bool:
    """'YYYY-MM-DD HH:MM:SS…' (or with 'T'): its first 13 characters name one hour."""
    return value[4] == "-" and value[7] == "-" and value[10] in " T" and value[13:19] in _MINUTES_SECONDS


# Every valid ':MM:SS' (what fromisoformat accepts there): one set lookup checks a value.
_MINUTES_SECONDS = frozenset(f":{m:02d}:{s:02d}" for m in range(60) for s in range(60))


def _remember(hours: dict[str, str], local_hour: str, utc_hour: str) -> None:
    if len(hours) >= _HOURS_KEPT:
        hours.clear()
    hours[local_hour] = utc_hour


_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_TAILS = tuple(f":{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))  # by second of hour
_epoch_hours: dict[int, str] = {}  # hours since 1970 -> 'YYYY-MM-DDTHH'


def epoch_to_utc(seconds: int) -> str:
    """Epoch seconds as UTC text; the hour's text is made once."""
    hour, rest = divmod(seconds, 3600)
    head = _epoch_hours.get(hour)
    if head is None:
        head = (_EPOCH + dt.timedelta(hours=hour)).isoformat()[:13]
        _remember_epoch_hour(hour, head)
    return head + _EPOCH_TAILS[rest]


def _remember_epoch_hour(hour: int, head: str) -> None:
    if len(_epoch_hours) >= _HOURS_KEPT:
        _epoch_hours.clear()
    _epoch_hours[hour] = head


# ---- arithmetic on the instants records carry (the unified `calls` mappings use it)


def seconds_between(start: str, end: str) -> int:
    """Whole seconds from one record instant ('2025-10-16T09:31:13Z') to another."""
    return epoch_seconds(end) - epoch_seconds(start)


def shifted(instant: str, seconds: int) -> str:
    """A record instant moved by `seconds` (negative: earlier), in the same format."""
    return epoch_to_utc(epoch_seconds(instant) + seconds)


_TAIL_SECONDS = {tail: second for second, tail in enumerate(_EPOCH_TAILS)}  # ':MM:SSZ' -> s
_hour_epochs: dict[str, int] = {}  # 'YYYY-MM-DDTHH' (UTC) -> epoch seconds at its start
_EPOCH_UTC = _EPOCH.replace(tzinfo=dt.UTC)


def epoch_seconds(instant: str) -> int:
    """A record instant (iso_utc's shape; any ISO 8601 instant, slower) as epoch seconds:
    epoch_to_utc's inverse, with the hour read once (a datetime per value was most of a
    mapping's time)."""
    base, rest = _hour_epochs.get(instant[:13]), _TAIL_SECONDS.get(instant[13:])
    if base is not None and rest is not None:
        return base + rest
    seconds = (parse_instant(instant) - _EPOCH_UTC) // dt.timedelta(seconds=1)
    if rest is not None:  # iso_utc's shape: its hour's start is known from now on
        if len(_hour_epochs) >= _HOURS_KEPT:
            _hour_epochs.clear()
        _hour_epochs[instant[:13]] = seconds - rest
    return seconds
