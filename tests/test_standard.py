"""The Singer SDK's standard tap tests for every stream, against the simulator over real sockets.

One test class per vendor, each against its own simulator (the tap discovers only the streams
of the vendors it has accounts for): generic_cdr, tencent_cdr, itnio_sip_cdr + itnio_group_cdr,
and yeastar_cdr over HTTPS with a throwaway trustme CA passed as the account's `ca_bundle`
(TLS verification stays on).
"""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import generic_helpers
import itnio_helpers
import tencent_helpers
import yeastar_helpers
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_callcdr.simulator import (
    Simulator,
    demo_accounts,
    itnio_demo_accounts,
    tencent_demo_accounts,
    yeastar_demo_accounts,
)
from tap_callcdr.simulator.yeastar import simulator_tls
from tap_callcdr.tap import TapCallCDR

SUITE = SuiteConfig(ignore_no_records=False)

# The SDK builds its test classes at import time, so the simulators must already be up.
ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


def _started(sim: Simulator) -> Simulator:
    sim.start()
    atexit.register(sim.stop)
    return sim


GENERIC = _started(Simulator(demo_accounts(calls=300, days=5), anchor=ANCHOR))
TENCENT = _started(
    Simulator([], anchor=ANCHOR, tencent_accounts=tencent_demo_accounts(calls=300, days=5))
)
ITNIO = _started(
    Simulator(
        [], anchor=ANCHOR, itnio_accounts=itnio_demo_accounts(calls=200, group_calls=80, days=3)
    )
)
_TLS_DIR = Path(tempfile.mkdtemp(prefix="callcdr-standard-tls-"))
atexit.register(shutil.rmtree, _TLS_DIR, True)
_TLS = simulator_tls(_TLS_DIR / "ca.pem")
YEASTAR = _started(
    Simulator(
        [],
        anchor=ANCHOR,
        yeastar_accounts=yeastar_demo_accounts(
            ["pbx1", "pbx2"], calls=200, days=5, extra_columns=["crm_customer"]
        ),
        ssl_context=_TLS.context,
    )
)

TestGenericCDR = get_tap_test_class(
    tap_class=TapCallCDR,
    config=generic_helpers.tap_config(GENERIC, days=6),
    suite_config=SUITE,
)

TestTencentCDR = get_tap_test_class(
    tap_class=TapCallCDR,
    config=tencent_helpers.tap_config(TENCENT, days=6),
    suite_config=SUITE,
)

TestItnioCDR = get_tap_test_class(
    tap_class=TapCallCDR,
    config=itnio_helpers.tap_config(ITNIO, days=4),
    suite_config=SUITE,
)

TestYeastarCDR = get_tap_test_class(
    tap_class=TapCallCDR,
    config=yeastar_helpers.tap_config(YEASTAR, ca_file=_TLS.ca_file, days=6),
    suite_config=SUITE,
)
