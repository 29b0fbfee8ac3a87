"""The Singer SDK's standard tap tests, against the simulator over real sockets."""

from __future__ import annotations

import atexit
import datetime as dt

from generic_helpers import tap_config
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_callcdr.simulator import Simulator, demo_accounts
from tap_callcdr.tap import TapCallCDR

# The SDK builds its test class at import time, so the simulator must already be up.
ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
SIMULATOR = Simulator(demo_accounts(calls=300, days=5), anchor=ANCHOR).start()
atexit.register(SIMULATOR.stop)

TestTapCallCDR = get_tap_test_class(
    tap_class=TapCallCDR,
    config=tap_config(SIMULATOR, days=6),
    suite_config=SuiteConfig(ignore_no_records=False),
)
