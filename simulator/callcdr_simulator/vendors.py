"""The simulated vendors: the one table the server, the control API and the CLI read (and the
tap's tests, through ``tests/vendors.py``). A new vendor is its module and one entry here."""

from __future__ import annotations

from .core import Vendor
from .generic import GenericVendor
from .itnio import ItnioVendor
from .tencent import TencentVendor
from .yeastar import YeastarVendor

VENDORS: tuple[type[Vendor], ...] = (GenericVendor, TencentVendor, ItnioVendor, YeastarVendor)
BY_NAME: dict[str, type[Vendor]] = {vendor.name: vendor for vendor in VENDORS}


def vendor_class(name: str) -> type[Vendor]:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown vendor {name!r}; have {sorted(BY_NAME)}") from None
