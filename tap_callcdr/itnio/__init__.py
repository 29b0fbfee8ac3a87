"""ITNIO voice API (also sold white-label): `voice/recordSipQuery` and `voice/recordGroupQuery`,
JSON POSTs signed with MD5 headers, 31 days per query, the last two months only.

VENDOR (spec.py) is loaded on first use, not on import: the row worker (itnio/worker.py)
imports modules of this package and must not pay for the SDK it never uses.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from tap_callcdr.vendor import VendorSpec

    VENDOR: VendorSpec


def __getattr__(name: str) -> t.Any:
    if name == "VENDOR":
        from tap_callcdr.itnio.spec import VENDOR

        return VENDOR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
