"""The vendors as the tests see them, from the simulator's table (callcdr_simulator.VENDORS):
test_standard, test_fast_path and conftest read this, so a new vendor needs no edit here.

Each simulated vendor `<name>` has a module tests/<name>_helpers.py with
- ``tap_config(sim, *names, days=..., **overrides)``: a tap config for the simulator's accounts;
- ``HTTPS = True`` (optional) when the tap reaches its accounts over HTTPS only (with a
  ``ca_bundle``): its simulator then serves TLS and ``tap_config`` takes ``ca_file=``;
- ``STANDARD_DEMO`` (optional): more demo-account options for the SDK's standard tests;
- ``FAKE_ACCOUNT``: a well-formed account's settings besides name and api_url (credentials of
  the right shape, not valid ones), for the strict-input tests of every command path;
- its end-to-end facts (``e2e_accounts``, ``E2E_STREAMS``...: tests/landed.py lists them), which
  test_e2e_meltano.py and test_chaos.py read: a helper without them stops every test that
  imports this module, naming the vendor, so no vendor skips the end-to-end tests.
"""

from __future__ import annotations

import importlib
import typing as t
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

from callcdr_simulator import VENDORS, Simulator, Vendor
from landed import LandedStream, Raw

E2E_FACTS = (
    "e2e_accounts", "e2e_tap_account", "e2e_fields", "e2e_instant", "E2E_STREAMS", "E2E_CREDENTIALS",
)  # fmt: skip


@dataclass(frozen=True)
class VendorUnderTest:
    simulated: type[Vendor]
    helpers: ModuleType

    @property
    def name(self) -> str:
        """The simulator's vendor, and the tap's `<name>_accounts`."""
        return self.simulated.name

    @property
    def https(self) -> bool:
        return bool(getattr(self.helpers, "HTTPS", False))

    def fake_account(self, url: str) -> dict[str, t.Any]:
        """A well-formed account named hq at `url` (fake credentials)."""
        return {"name": "hq", "api_url": url, **self.helpers.FAKE_ACCOUNT}

    @property
    def standard_demo(self) -> dict[str, t.Any]:
        return dict(getattr(self.helpers, "STANDARD_DEMO", {}))

    def demo_accounts(self, names: t.Sequence[str], **options: t.Any) -> list[t.Any]:
        return self.simulated.demo_accounts(list(names), **options)

    def tap_config(self, sim: Simulator, *, days: int, ca_file: Path | None = None) -> dict[str, t.Any]:
        tls = {"ca_file": ca_file} if self.https else {}
        return self.helpers.tap_config(sim, days=days, **tls)

    # ---- end to end (tests/landed.py)

    @property
    def setting(self) -> str:
        return f"{self.name}_accounts"

    @property
    def streams(self) -> tuple[LandedStream, ...]:
        return tuple(self.helpers.E2E_STREAMS)

    @property
    def credentials(self) -> tuple[str, ...]:
        return tuple(self.helpers.E2E_CREDENTIALS)

    def e2e_accounts(self, days: int) -> list[dict[str, t.Any]]:
        return list(self.helpers.e2e_accounts(days))

    def e2e_tap_account(
        self, account: dict[str, t.Any], api_url: str, ca_file: Path | None
    ) -> dict[str, t.Any]:
        return dict(self.helpers.e2e_tap_account(account, api_url, ca_file))

    def fields(self, raw: Raw) -> Raw:
        return dict(self.helpers.e2e_fields(raw))

    def instant(self, account: dict[str, t.Any], value: str | None) -> datetime | None:
        return t.cast("datetime | None", self.helpers.e2e_instant(account, value))


def _tested(vendor: type[Vendor]) -> VendorUnderTest:
    try:
        helpers = importlib.import_module(f"{vendor.name}_helpers")
    except ModuleNotFoundError as err:
        raise ImportError(f"simulated vendor {vendor.name!r} has no tests/{vendor.name}_helpers.py") from err
    missing = [fact for fact in E2E_FACTS if not hasattr(helpers, fact)]
    if missing or not helpers.E2E_STREAMS:
        raise ImportError(
            f"tests/{vendor.name}_helpers.py has no end-to-end facts {missing or ['E2E_STREAMS']}: "
            "test_e2e_meltano.py and test_chaos.py would skip it (tests/landed.py says what they are)"
        )
    if not hasattr(helpers, "FAKE_ACCOUNT"):
        raise ImportError(
            f"tests/{vendor.name}_helpers.py has no FAKE_ACCOUNT: test_strict_input.py needs a "
            "well-formed account of every vendor"
        )
    return VendorUnderTest(vendor, helpers)


TESTED: tuple[VendorUnderTest, ...] = tuple(_tested(vendor) for vendor in VENDORS)
VENDOR_NAMES: list[str] = [vendor.name for vendor in TESTED]
STREAMS: dict[str, tuple[VendorUnderTest, LandedStream]] = {
    stream.name: (vendor, stream) for vendor in TESTED for stream in vendor.streams
}
"""Every stream as the end-to-end tests land it, and its vendor."""
