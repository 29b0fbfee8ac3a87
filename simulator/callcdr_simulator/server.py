"""The shared simulator server: routes ``/<vendor>/...`` to vendor modules and ``/_control/...``
to the control API, applies the fault plan and keeps the request log."""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import control
from .core import HttpRequest, HttpResponse, Vendor, html_response, json_response, nginx_page
from .data import utc_now_minute
from .faults import Fault, FaultPlan
from .vendors import VENDORS

HOST = "127.0.0.1"


NGINX_PAGES = {
    500: nginx_page(500, "Internal Server Error"),
    502: nginx_page(502, "Bad Gateway"),
    429: nginx_page(429, "Too Many Requests"),
}
QUIET_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError)


class Simulator:
    """All simulated vendors (``vendors.VENDORS``) behind one local HTTP(S) server.

    ``accounts``: the accounts of any vendors, each served by the vendor its type belongs to
    (a vendor given none has none); None: every vendor's demo accounts (generic hq, branch).
    A vendor is ``sim.vendors[name]``, or ``sim.<name>`` for short (``sim.itnio``)."""

    def __init__(
        self,
        accounts: Iterable[Any] | None = None,
        port: int = 0,
        anchor: datetime | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        anchor = anchor or utc_now_minute()
        self.anchor = (anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)).astimezone(UTC)
        self.faults = FaultPlan()
        if accounts is None:
            accounts = [a for vendor in VENDORS for a in vendor.demo_accounts(vendor.demo_names)]
        by_vendor = _by_vendor(accounts)
        self.vendors: dict[str, Vendor] = {
            vendor.name: vendor(by_vendor.get(vendor, []), self.anchor) for vendor in VENDORS
        }
        self._port = port
        self._ssl_context = ssl_context
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        server = _Server((HOST, self._port), _Handler)
        server.sim = self
        if self._ssl_context is not None:  # handshake lazily in the handler thread, not in accept
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._port = int(server.server_address[1])  # a restart comes back on the same port
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="callcdr-simulator",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()  # in-flight requests fail, as when a real vendor goes away
        server.server_close()
        self._stopping.set()  # wakes `slow` faults, whose answers now go nowhere
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{HOST}:{self.port}"

    # ---- shared state -------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """``sim.generic`` is ``sim.vendors["generic"]`` (tests reach vendors this way)."""
        vendors = self.__dict__.get("vendors", {})
        if name in vendors:
            return vendors[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def vendor(self, name: str) -> Vendor:
        try:
            return self.vendors[name]
        except KeyError:
            raise KeyError(f"unknown vendor {name!r}; have {sorted(self.vendors)}") from None

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of the vendor request log, oldest first."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    # ---- request handling ---------------------------------------------------------------------

    def dispatch(self, request: HttpRequest) -> tuple[HttpResponse, bool]:
        """Answer one request; the flag asks the handler to cut the body in half (truncate)."""
        if request.path == "/_control" or request.path.startswith("/_control/"):
            return control.handle(self, request), False
        vendor = self.vendors.get(request.path.split("/")[1])
        if vendor is None:
            return json_response({"error": f"no vendor at {request.path}"}, 404), False
        info = vendor.describe(request)
        fault = self.faults.take(vendor.name, info.kind, info.service, info.account) or self.faults.draw(
            vendor.name, info.kind, vendor.transient_codes
        )
        entry = {
            "vendor": vendor.name,
            "method": request.method,
            "path": request.path,
            "service": info.service,
            "account": info.account,
            "params": info.params,
            "fault": fault.kind if fault else None,
        }
        with self._log_lock:
            self._log.append(entry)
        return self._answer(vendor, request, fault)

    def _answer(
        self, vendor: Vendor, request: HttpRequest, fault: Fault | None
    ) -> tuple[HttpResponse, bool]:
        kind = fault.kind if fault else None
        params = dict(fault.params) if fault else {}
        if kind in ("http_500", "http_502"):
            status = int(kind[-3:])
            return html_response(NGINX_PAGES[status], status), False
        if kind == "http_429":
            response = html_response(NGINX_PAGES[429], 429)
            response.headers["Retry-After"] = str(params.get("retry_after", 1))
            return response, False
        if kind == "malformed":
            return html_response(str(params.get("body", "<html>502 Bad Gateway</html>"))), False
        if kind == "vendor_error":
            return vendor.error_response(int(params.pop("code")), **params), False
        if kind == "slow":
            self._stopping.wait(float(params.get("seconds", 1)))
        if kind == "expire_tokens":
            vendor.expire_tokens()
        if kind == "late_calls":
            self._add_late_calls(vendor, int(params.get("n", 5)), float(params.get("minutes", 60)))
        request.fault = kind
        response = vendor.handle(request)
        if kind == "empty":
            response.body = b""
        if kind == "cut":
            response.body = cut_inside(response.body, float(params.get("at", 0.5)))
        return response, kind == "truncate"

    @staticmethod
    def _add_late_calls(vendor: Vendor, n: int, minutes: float) -> None:
        """Calls whose CDRs land late: they started up to `minutes` ago."""
        now = datetime.now(UTC)
        for account in vendor.accounts():
            vendor.add_calls(account, n, now - timedelta(minutes=minutes), now - timedelta(minutes=1))


def _by_vendor(accounts: Iterable[Any]) -> dict[type[Vendor], list[Any]]:
    """The accounts grouped by the vendor whose account type each is."""
    owners = {vendor.account_type: vendor for vendor in VENDORS}
    grouped: dict[type[Vendor], list[Any]] = {}
    for account in accounts:
        vendor = owners.get(type(account))
        if vendor is None:
            known = ", ".join(t.__name__ for t in owners)
            raise TypeError(f"{type(account).__name__} is no simulated vendor's account ({known})")
        grouped.setdefault(vendor, []).append(account)
    return grouped


def cut_inside(body: bytes, at: float) -> bytes:
    """The body cut at fraction `at` of its length, inside its value: at least one byte kept and
    one lost, and not just after a line end (a CSV file cut at a row boundary is a complete,
    shorter file that no client can tell from the whole one)."""
    end = min(max(int(len(body) * at), 1), len(body) - 1)
    while end > 1 and body[end - 1] in b"\r\n":
        end -= 1
    return body[: max(end, 0)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Connections waiting to be accepted (the standard library's 5 dropped a burst of clients
    # while the server was busy: each waited a second for its SYN to be sent again).
    request_queue_size = 1024
    sim: Simulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop keep-alive connections so stop() really takes the vendor away."""
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], QUIET_ERRORS):  # clients hanging up are normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real vendors' nginx
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every keep-alive request
    server: _Server

    def version_string(self) -> str:
        return "nginx"  # what the real vendors' front ends announce

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; the simulator keeps its own request log."""

    def _serve(self) -> None:
        try:
            request = self._read_request()
            try:
                response, truncate = self.server.sim.dispatch(request)
            except Exception:
                traceback.print_exc()
                response, truncate = html_response("simulator bug, see its stderr", 500), False
            self._write(response, truncate)
        except QUIET_ERRORS:
            self.close_connection = True

    def _read_request(self) -> HttpRequest:
        parts = urlsplit(self.path)
        return HttpRequest(
            method=self.command,
            path=parts.path or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=self._read_body(),
            client_ip=self.client_address[0],
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunked(self) -> bytes:
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _write(self, response: HttpResponse, truncate: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))  # the full length, always
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2] if truncate else response.body)
        self.wfile.flush()
        if truncate:
            self.close_connection = True  # the client is left waiting for the missing half
