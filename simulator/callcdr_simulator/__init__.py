"""A local simulator of the telephony vendors' CDR APIs, for tests and demos of tap-callcdr.

One server hosts every vendor of ``vendors.VENDORS`` under its own path prefix (``/generic/``
...), with shared fault injection, control endpoints (``/_control/...``) and request log. A
vendor's own pieces (its account type, demo accounts, constants) are imported from its module,
e.g. ``callcdr_simulator.itnio``. It imports nothing from tap_callcdr: a test oracle shares no
code with what it tests.
"""

from .core import HttpRequest, HttpResponse, RequestInfo, Vendor
from .faults import Fault, FaultPlan, parse_spec
from .server import Simulator
from .tls import SimulatorTLS, simulator_tls
from .vendors import VENDORS, vendor_class

__all__ = [
    "VENDORS",
    "Fault",
    "FaultPlan",
    "HttpRequest",
    "HttpResponse",
    "RequestInfo",
    "Simulator",
    "SimulatorTLS",
    "Vendor",
    "parse_spec",
    "simulator_tls",
    "vendor_class",
]
