"""The vendors as the tests see them, from the simulator's table (callcdr_simulator.VENDORS):
test_standard, test_fast_path and conftest read this, so a new vendor needs no edit here.

Each simulated vendor `<name>` has a module tests/<name>_helpers.py with
- ``tap_config(sim, *names, days=..., **overrides)``: a tap config for the simulator's accounts;
- ``HTTPS = True`` (optional) when the tap reaches its accounts over HTTPS only (with a
  ``ca_bundle``): its simulator then serves TLS and ``tap_config`` takes ``ca_file=``;
- ``STANDARD_DEMO`` (optional): more demo-account options for the SDK's standard tests.
"""

from __future__ import annotations

import importlib
import typing as t
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from callcdr_simulator import VENDORS, Simulator, Vendor


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

    @property
    def standard_demo(self) -> dict[str, t.Any]:
        return dict(getattr(self.helpers, "STANDARD_DEMO", {}))

    def demo_accounts(self, names: t.Sequence[str], **options: t.Any) -> list[t.Any]:
        return self.simulated.demo_accounts(list(names), **options)

    def tap_config(self, sim: Simulator, *, days: int, ca_file: Path | None = None) -> dict[str, t.Any]:
        tls = {"ca_file": ca_file} if self.https else {}
        return self.helpers.tap_config(sim, days=days, **tls)


def _tested(vendor: type[Vendor]) -> VendorUnderTest:
    try:
        helpers = importlib.import_module(f"{vendor.name}_helpers")
    except ModuleNotFoundError as err:
        raise ImportError(f"simulated vendor {vendor.name!r} has no tests/{vendor.name}_helpers.py") from err
    return VendorUnderTest(vendor, helpers)


TESTED: tuple[VendorUnderTest, ...] = tuple(_tested(vendor) for vendor in VENDORS)
VENDOR_NAMES: list[str] = [vendor.name for vendor in TESTED]
