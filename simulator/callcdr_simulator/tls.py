"""HTTPS for the simulator: a throwaway test CA, whose PEM a client trusts (a tap account's
``ca_bundle``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SimulatorTLS:
    """A throwaway CA and a server context for 127.0.0.1/localhost signed by it."""

    context: ssl.SSLContext
    ca_file: Path


def simulator_tls(ca_file: Path) -> SimulatorTLS:
    """Make a test CA (``trustme``: the ``https`` extra), write its PEM to ``ca_file`` for clients."""
    import trustme

    ca = trustme.CA(organization_name="callcdr-simulator test CA")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca.cert_pem.write_to_path(str(ca_file))
    return SimulatorTLS(context, Path(ca_file))
