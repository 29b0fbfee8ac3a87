"""URLs, query strings and network failures of the PBX API.

The token and the download random travel in query strings, and requests/urllib3 put the
full URL into their exception messages: every network error is re-raised with those values
masked, so no secret reaches a log line or the final error.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests

from tap_callcdr.core.errors import TransientVendorError, VendorError
from tap_callcdr.core.redact import network_cause, network_reason

DEFAULT_PORT = 8088  # the S-Series web/API HTTPS port
CERT_REASON = re.compile(r"certificate verify failed: ([^(')\]]+)")


def api_base(account: Mapping[str, t.Any]) -> str:
    """`https://host:port/api/<version>/`; an https URL without port means the PBX's 8088."""
    parts = urlsplit(str(account["api_url"]))
    netloc = parts.netloc
    if parts.scheme == "https" and parts.port is None:
        netloc = f"{netloc}:{DEFAULT_PORT}"
    version = account.get("api_version") or "v1.1.0"
    path = f"{parts.path.rstrip('/')}/api/{version}/"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Set query parameters as the vendor's example link has them: ':' and ',' literal (legal
    in a query), the space as %20 ('+' is form encoding, which a PBX need not undo)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *params.items()], quote_via=quote, safe=":,")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@contextmanager
def network_errors(
    describe: Callable[[str], str], setting: Callable[[str], str]
) -> Iterator[None]:
    """Network failures as the tap's errors: retriable, except an untrusted certificate.

    `setting` names an account setting in full (e.g. `yeastar_accounts[0].ca_bundle`).
    """
    try:
        yield
    except requests.exceptions.SSLError as exc:
        found = CERT_REASON.search(str(exc))
        if found is None:  # a handshake cut short is a network hiccup, not a trust problem
            raise TransientVendorError(describe(f"TLS error: {network_reason(exc)}")) from None
        reason = found[1].strip()
        if "mismatch" in reason:  # trusted, but issued for another name: no CA file fixes that
            fix = f"use the host name or IP the certificate names in '{setting('api_url')}'"
        else:
            fix = (
                f"set '{setting('ca_bundle')}' to the PEM file of the CA that signed it (or, "
                "only on a trusted LAN, 'verify_tls': false)"
            )
        message = f"the PBX's TLS certificate is not trusted ({reason}): {fix}"
        raise VendorError(describe(message)) from None
    except requests.RequestException as exc:
        raise TransientVendorError(describe(network_cause(exc, setting("api_url")))) from None

