"""The generic call-center API: `App.Sip_Cdr.GetBill` (form-data POST, token).

VENDOR (spec.py) is loaded on first use (tap_callcdr/vendors/__init__.py).
"""

from __future__ import annotations

import typing as t

from tap_callcdr.vendors import vendor_attribute

if t.TYPE_CHECKING:
    from tap_callcdr.core.vendor import VendorSpec

    VENDOR: VendorSpec

__getattr__ = vendor_attribute(__name__)
