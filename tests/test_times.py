"""The fast time conversions give exactly what the plain datetime arithmetic gives."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_callcdr.core.times import epoch_to_utc, instant_to_utc, local_to_utc, seconds_between, shifted
from tap_callcdr.core.windows import iso_utc

# DST at 01:00/02:00/03:00, a 30-minute DST (Lord Howe), southern hemisphere, none at all.
ZONES = [
    ZoneInfo(name)
    for name in (
        "America/New_York",
        "Europe/London",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Asia/Shanghai",
        "UTC",
    )
]
zones = st.sampled_from(ZONES)
moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2045, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)  # whole seconds, as vendors send
)


def reference_local(value: str, zone: ZoneInfo) -> str:
    return iso_utc(dt.datetime.fromisoformat(value).replace(tzinfo=zone))


@settings(max_examples=3000)
@given(moment=moments, zone=zones, sep=st.sampled_from([" ", "T"]))
def test_local_times_match_the_plain_conversion(moment: dt.datetime, zone: ZoneInfo, sep: str) -> None:
    value = moment.isoformat(sep=sep)
    assert local_to_utc(value, zone) == reference_local(value, zone)


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_minute_of_every_switch_day_matches(zone: ZoneInfo) -> None:
    """Around each DST switch of 2024-2026 the offset changes within a day: walk it all."""
    day = dt.datetime(2024, 1, 1)
    while day.year < 2027:
        noon = day.replace(hour=12)
        if (noon - dt.timedelta(days=1)).replace(tzinfo=zone).utcoffset() != noon.replace(
            tzinfo=zone
        ).utcoffset():
            for minute in range(-24 * 60, 24 * 60, 7):  # includes :30 switches, any second
                value = (noon + dt.timedelta(minutes=minute, seconds=minute % 60)).isoformat(sep=" ")
                assert local_to_utc(value, zone) == reference_local(value, zone), value
        day += dt.timedelta(days=1)


def test_never_happened_and_odd_shapes() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert local_to_utc("", zone) is None
    assert local_to_utc(None, zone) is None
    assert local_to_utc("0000-00-00 00:00:00", zone) is None
    assert local_to_utc("2025-10-16 17:31:13.900", zone) == "2025-10-16T09:31:13Z"  # whole seconds
    assert local_to_utc("2025-10-16", zone) == "2025-10-15T16:00:00Z"
    with pytest.raises(ValueError):
        local_to_utc("2025-13-16 17:31:13", zone)


@settings(max_examples=2000)
@given(
    moment=moments,
    zone=zones,
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    with_offset=st.booleans(),
)
def test_instants_match_the_plain_conversion(
    moment: dt.datetime, zone: ZoneInfo, offset_minutes: int, with_offset: bool
) -> None:
    if with_offset:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes)))
    value = moment.isoformat()
    parsed = dt.datetime.fromisoformat(value)
    expected = iso_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=zone))
    assert instant_to_utc(value, zone) == expected


def test_instant_shapes() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert instant_to_utc("", zone) is None
    assert instant_to_utc("2025-10-16T17:31:13+08:00", zone) == "2025-10-16T09:31:13Z"
    assert instant_to_utc("2025-10-16T17:31:13-03:30", zone) == "2025-10-16T21:01:13Z"
    assert instant_to_utc("2025-10-16T17:31:13", zone) == "2025-10-16T09:31:13Z"
    with pytest.raises(ValueError):
        instant_to_utc("2025-10-16T17:31:99+08:00", zone)


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_second_of_a_remembered_hour_matches(zone: ZoneInfo) -> None:
    """Later values of an hour come from the remembered hour: still exact."""
    for hour in ("2025-10-16 17", "2024-03-10 03", "2024-11-03 01", "2025-04-06 02", "2024-10-06 02"):
        for second in range(0, 3600, 7):
            value = f"{hour}:{second // 60:02d}:{second % 60:02d}"
            assert local_to_utc(value, zone) == reference_local(value, zone), value
            for offset in ("+08:00", "-03:00", "+05:45"):
                instant = f"{value.replace(' ', 'T')}{offset}"
                parsed = dt.datetime.fromisoformat(instant)
                assert instant_to_utc(instant, zone) == iso_utc(parsed), instant


BAD_TAILS = [":31:60", ":60:00", ":3a:00", ":31:6a", ":²3:00", ":31:²3", "x31:00", ":31x00"]


@pytest.mark.parametrize("bad", BAD_TAILS)
def test_a_remembered_hour_still_rejects_bad_minutes_and_seconds(bad: str) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert local_to_utc("2025-10-16 17:31:00", zone) == "2025-10-16T09:31:00Z"  # remembered now
    assert instant_to_utc("2025-10-16T17:31:00+08:00", zone) == "2025-10-16T09:31:00Z"
    with pytest.raises(ValueError):
        local_to_utc("2025-10-16 17" + bad, zone)
    with pytest.raises(ValueError):
        instant_to_utc("2025-10-16T17" + bad + "+08:00", zone)


@settings(max_examples=3000)
@given(st.integers(min_value=0, max_value=2**33))
def test_epoch_seconds_match_the_plain_conversion(seconds: int) -> None:
    for nearby in (seconds, seconds + 1, seconds + 3599):  # the same hour's remembered text
        assert epoch_to_utc(nearby) == iso_utc(dt.datetime.fromtimestamp(nearby, dt.UTC))


def test_an_epoch_beyond_the_calendar_is_an_arithmetic_error() -> None:
    with pytest.raises(ArithmeticError):  # convert_fields names the field for these
        epoch_to_utc(10**15)


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=2**33), st.integers(min_value=-(10**7), max_value=10**7))
def test_instant_arithmetic_matches_the_plain_conversion(seconds: int, delta: int) -> None:
    """shifted and seconds_between, on record instants (iso_utc's shape), as datetimes do
    them; twice each, the second time from the hour remembered; and on an offset's instant."""
    start = dt.datetime.fromtimestamp(seconds, dt.UTC)
    end = start + dt.timedelta(seconds=delta)
    for _ in range(2):
        assert shifted(iso_utc(start), delta) == iso_utc(end)
        assert seconds_between(iso_utc(start), iso_utc(end)) == delta
    shanghai = start.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    assert seconds_between(shanghai, iso_utc(end)) == delta
