"""Deterministic, realistic-looking CDR building blocks shared by all simulated vendors.

Every helper takes an explicit ``random.Random`` so a vendor's data depends only on its seed.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰"]
LEAD_SOURCES = ["百度推广", "抖音", "官网留言", "老客户转介绍", "展会", "微信公众号"]
MATURITY = ["0", "0", "高意向", "中意向", "低意向", "无意向", "已成交"]
MOBILE_PREFIXES = ["130", "131", "135", "136", "138", "139", "150", "152", "158", "186", "188"]
CITY_CODES = ["010", "020", "021", "0571", "0755", "028"]


def rng_for(*parts: object) -> random.Random:
    """A Random seeded from a readable key (str seeds hash stably across runs)."""
    return random.Random(":".join(str(p) for p in parts))


def mobile_number(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def landline_number(rng: random.Random) -> str:
    return rng.choice(CITY_CODES) + f"{rng.randrange(2 * 10**7, 9 * 10**7):08d}"


def customer_number(rng: random.Random) -> str:
    """Mostly mobiles, some landlines, as in a real outbound call list."""
    return mobile_number(rng) if rng.random() < 0.85 else landline_number(rng)


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, chars: int = 32) -> str:
    return f"{rng.getrandbits(chars * 4):0{chars}x}"


def ring_seconds(rng: random.Random) -> int:
    return rng.randint(3, 35)


def talk_seconds(rng: random.Random) -> int:
    """Long-tailed talk time: most calls short, a few long."""
    return max(1, min(3600, int(rng.expovariate(1 / 90))))


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def utc_now_minute() -> datetime:
    return floor_minute(datetime.now(UTC))


def as_aware(moment: datetime, zone: ZoneInfo) -> datetime:
    """Naive datetimes are read as wall time in ``zone``."""
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def local_str(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def uniform_times(rng: random.Random, n: int, start: datetime, end: datetime) -> list[datetime]:
    """n sorted whole-second moments in [start, end] (start rounded up to a whole second)."""
    if start.microsecond:
        start = start.replace(microsecond=0) + timedelta(seconds=1)
    span = max(0, int((end - start).total_seconds()))
    return sorted(start + timedelta(seconds=rng.randint(0, span)) for _ in range(n))


def business_start_times(
    rng: random.Random, n: int, start: datetime, end: datetime, zone: ZoneInfo
) -> list[datetime]:
    """n sorted start times in [start, end], mostly during local office hours (08-21)."""
    times = []
    for _ in range(n):
        for _attempt in range(3):  # a bias, not a rule: give up after a few tries
            (moment,) = uniform_times(rng, 1, start, end)
            if 8 <= moment.astimezone(zone).hour < 21:
                break
        times.append(moment)
    return sorted(times)
