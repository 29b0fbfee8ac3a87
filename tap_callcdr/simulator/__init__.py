"""A local simulator of the telephony vendors' CDR APIs, for tests and demos of tap-callcdr.

One server hosts every vendor under its own path prefix (``/generic/`` ...), with shared fault
injection, control endpoints (``/_control/...``) and request log.
"""

from .core import HttpRequest, HttpResponse, RequestInfo, Vendor
from .faults import Fault, FaultPlan, parse_spec
from .generic import GenericAccount, GenericVendor, demo_accounts
from .itnio import ItnioAccount, ItnioVendor, itnio_demo_accounts
from .server import Simulator
from .tencent import TencentAccount, TencentVendor, tencent_demo_accounts
from .yeastar import YeastarAccount, YeastarVendor, yeastar_demo_accounts

__all__ = [
    "Fault",
    "FaultPlan",
    "GenericAccount",
    "GenericVendor",
    "HttpRequest",
    "HttpResponse",
    "ItnioAccount",
    "ItnioVendor",
    "RequestInfo",
    "Simulator",
    "TencentAccount",
    "TencentVendor",
    "Vendor",
    "YeastarAccount",
    "YeastarVendor",
    "demo_accounts",
    "itnio_demo_accounts",
    "parse_spec",
    "tencent_demo_accounts",
    "yeastar_demo_accounts",
]
