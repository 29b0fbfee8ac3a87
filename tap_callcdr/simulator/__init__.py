"""A local simulator of the telephony vendors' CDR APIs, for tests and demos of tap-callcdr.

One server hosts every vendor under its own path prefix (``/generic/`` ...), with shared fault
injection, control endpoints (``/_control/...``) and request log.
"""

from .core import HttpRequest, HttpResponse, RequestInfo, Vendor
from .faults import Fault, FaultPlan, parse_spec
from .generic import GenericAccount, GenericVendor, demo_accounts
from .server import Simulator

__all__ = [
    "Fault",
    "FaultPlan",
    "GenericAccount",
    "GenericVendor",
    "HttpRequest",
    "HttpResponse",
    "RequestInfo",
    "Simulator",
    "Vendor",
    "demo_accounts",
    "parse_spec",
]
