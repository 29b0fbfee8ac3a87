"""One package per vendor, all of the same shape, none importing another (tap.py lists them).

A vendor package's VENDOR is imported on first use rather than with the package: row workers
import a vendor's light modules and must not pay for the SDK that VENDOR's settings need."""

from __future__ import annotations

import importlib
import typing as t


def vendor_attribute(package: str) -> t.Callable[[str], t.Any]:
    """The package's module `__getattr__`: VENDOR comes from `<package>.spec`."""

    def attribute(name: str) -> t.Any:
        if name == "VENDOR":
            return importlib.import_module(f"{package}.spec").VENDOR
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
