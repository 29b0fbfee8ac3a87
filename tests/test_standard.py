"""The Singer SDK's standard tap tests for every stream, against the simulator over real sockets.

One test class per vendor of tests/vendors.py (TestGenericCDR, TestTencentCDR, ...), each
against its own simulator (the tap discovers only the streams of the vendors it has accounts
for); a vendor reached over HTTPS (Yeastar) gets a throwaway trustme CA passed as the account's
`ca_bundle` (TLS verification stays on).
"""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
from pathlib import Path

from callcdr_simulator import Simulator, simulator_tls
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from vendors import TESTED, VendorUnderTest

from tap_callcdr.tap import TapCallCDR

# `calls` has fields a vendor never fills (generic has no cost): the SDK's test of such a
# field's type has no value to test. test_calls_stream.py checks that every vendor's calls land.
SUITE = SuiteConfig(ignore_no_records=False, ignore_no_records_for_streams=["calls"])
ACCOUNTS = ["hq", "branch"]

# The SDK builds its test classes at import time, so the simulators must already be up.
ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
_TLS_DIR = Path(tempfile.mkdtemp(prefix="callcdr-standard-tls-"))
atexit.register(shutil.rmtree, _TLS_DIR, True)
_TLS = simulator_tls(_TLS_DIR / "ca.pem")


def _config(vendor: VendorUnderTest) -> dict:
    accounts = vendor.demo_accounts(ACCOUNTS, calls=200, days=3, **vendor.standard_demo)
    sim = Simulator(accounts, anchor=ANCHOR, ssl_context=_TLS.context if vendor.https else None)
    sim.start()
    atexit.register(sim.stop)
    return vendor.tap_config(sim, days=4, ca_file=_TLS.ca_file)


for _vendor in TESTED:
    globals()[f"Test{_vendor.name.capitalize()}CDR"] = get_tap_test_class(
        tap_class=TapCallCDR, config=_config(_vendor), suite_config=SUITE
    )
