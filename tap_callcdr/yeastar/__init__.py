"""Yeastar S-Series PBX API: `login`, then per window `cdr/get_random` + `cdr/download` (CSV).

VENDOR (spec.py) is loaded on first use, not on import: the row worker (worker.py) imports
modules of this package and must not pay for the SDK it never uses.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from tap_callcdr.vendor import VendorSpec

    VENDOR: VendorSpec


def __getattr__(name: str) -> t.Any:
    if name == "VENDOR":
        from tap_callcdr.yeastar.spec import VENDOR

        return VENDOR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
