"""How a vendor's records must land end to end (meltano -> target-postgres): the facts each
``tests/<vendor>_helpers.py`` declares for test_e2e_meltano.py and test_chaos.py, which read
them through ``tests/vendors.py`` and name no vendor. A helper's e2e part is

- ``e2e_accounts(days)``: the simulator's ``--config`` accounts for the e2e runs (their
  zones, doc versions, caps... differ on purpose: the tap must use each account's own);
- ``e2e_tap_account(account, api_url, ca_file)``: the tap's account config for one of them;
- ``e2e_fields(raw)``: a raw simulator record under the table's column names;
- ``e2e_instant(account, value)``: a raw time of that account as the UTC instant it means;
- ``E2E_STREAMS``: its streams as ``LandedStream``s;
- ``E2E_CREDENTIALS``: the account settings meltano.yml's demo environment copies from the
  simulator's demo accounts (same names as their attributes).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
Raw = dict[str, t.Any]


def every_record(raw: Raw) -> bool:
    return True


@dataclass(frozen=True)
class LandedStream:
    """One stream's table: what tells its rows apart and which columns are what."""

    name: str
    identity: tuple[str, ...]  # the vendor's identity of a record, account first
    replication_key: str
    time_columns: tuple[str, ...]  # vendor times: land as UTC instants
    primary_key: tuple[str, ...] = ()  # the table's, when it is not the identity
    made_by_tap: frozenset[str] = frozenset()  # columns that hold no vendor field
    money: tuple[str, ...] = ()  # NUMERIC, digit for digit
    gets_added_calls: bool = True  # the control API's new calls land in this stream
    holds: t.Callable[[Raw], bool] = every_record  # which of the vendor's truth records it has

    @property
    def key(self) -> tuple[str, ...]:
        return self.primary_key or self.identity


def local_to_utc(local: str | None, tz: ZoneInfo | str = SHANGHAI) -> datetime | None:
    """Vendor local-time string ("2026-11-20 09:00:00") to an aware UTC datetime."""
    if not local:
        return None
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).astimezone(UTC)


def epoch_to_utc(epoch: str) -> datetime | None:
    """Epoch seconds ("0": never happened)."""
    return None if epoch in ("", "0") else datetime.fromtimestamp(int(epoch), UTC)


def iso_to_utc(text: str) -> datetime | None:
    """ISO 8601 with offset ("": never happened)."""
    return datetime.fromisoformat(text).astimezone(UTC) if text else None
