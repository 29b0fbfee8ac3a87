"""Plumbing shared by the server and every vendor module: request/response values,
form parsing and the ``Vendor`` interface a vendor module implements to plug into the server."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qsl

MASK = "***"


@dataclass
class HttpRequest:
    method: str
    path: str  # without the query string, vendor prefix included
    query: dict[str, str]
    headers: Message
    body: bytes
    client_ip: str
    fault: str | None = None  # a fault the vendor module itself must act out

    @cached_property
    def form(self) -> dict[str, str]:
        """Query string merged with a urlencoded or multipart body, body winning (PHP $_REQUEST)."""
        return {**self.query, **parse_form(self.headers.get("Content-Type", ""), self.body)}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestInfo:
    """What a vendor says about an incoming request, for fault matching and the request log."""

    kind: str  # "login" or "data"
    service: str
    params: dict[str, Any]  # secrets already masked
    account: str = ""  # the account it is for, by its credentials ("" when they name none)


def json_response(payload: Any, status: int = 200) -> HttpResponse:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json; charset=utf-8"})


def html_response(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


def nginx_page(status: int, reason: str) -> str:
    """The error page the vendors' nginx front ends send."""
    title = f"{status} {reason}"
    return (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    )


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Decode x-www-form-urlencoded or multipart/form-data; anything else yields no fields."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "multipart/form-data":
        return _parse_multipart(content_type, body)
    if mime == "application/x-www-form-urlencoded" or (not mime and body):
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name and isinstance(payload, bytes):
            fields[str(name)] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


def mask(params: dict[str, Any], secrets: frozenset[str]) -> dict[str, Any]:
    return {k: (MASK if k.lower() in secrets else v) for k, v in params.items()}


class Vendor(ABC):
    """One simulated vendor; the server routes ``/<name>/...`` to it.

    A vendor module defines one subclass and lists it in ``vendors.VENDORS``: that table is all
    the server, the control API and the CLI know of vendors. The class says what they need:
    its name (path prefix), its account type, its demo accounts, its record endpoints if it has
    several, and its own CLI options."""

    name: ClassVar[str]  # the path prefix /<name>/; the vendor in faults, the log and /_control
    account_type: ClassVar[type[Any]]  # a dataclass with `name`; from_dict(raw) reads --config's
    demo_accounts: ClassVar[Callable[..., list[Any]]]  # (names, **overrides): test credentials
    demo_names: ClassVar[tuple[str, ...]] = ()  # the demo accounts of Simulator() and the CLI
    cli_aliases: ClassVar[tuple[str, ...]] = ()  # other spellings of the CLI's --<name>-accounts
    # A vendor with several record endpoints: the tap's stream name -> the endpoint. Its
    # add_calls then takes ``endpoint=`` (POST /_control/calls: "stream" or "endpoint").
    endpoints: ClassVar[Mapping[str, str]] = {}
    secret_params: ClassVar[frozenset[str]] = frozenset()
    # The vendor's documented "try again later" error codes: the fault mix's vendor_error
    transient_codes: ClassVar[tuple[int, ...]] = ()

    @abstractmethod
    def __init__(self, accounts: list[Any], anchor: datetime) -> None: ...

    @classmethod
    def api_url(cls, base_url: str, account: str) -> str:
        """The ``api_url`` a tap account sets to reach this account here."""
        return f"{base_url}/{cls.name}/"

    @classmethod  # noqa: B027  (an optional hook)
    def add_arguments(cls, add: Callable[..., Any]) -> None:
        """This vendor's own CLI options (``--<name>-accounts`` is everyone's)."""

    @classmethod
    def demo_from_args(cls, names: list[str], args: Namespace) -> list[Any]:
        """The CLI's demo accounts of these names."""
        return cls.demo_accounts(names, calls=args.calls, days=args.days, seed=args.seed)

    def configure(self, args: Namespace) -> None:  # noqa: B027  (an optional hook)
        """Vendor-wide CLI options, once the vendor is built."""

    @abstractmethod
    def describe(self, request: HttpRequest) -> RequestInfo:
        """Classify the request (login/data) and give loggable params, without side effects."""

    @abstractmethod
    def handle(self, request: HttpRequest) -> HttpResponse: ...

    @abstractmethod
    def error_response(self, code: int, **params: Any) -> HttpResponse:
        """The vendor's own answer for a ``vendor_error`` fault with this code."""

    @abstractmethod
    def expire_tokens(self) -> None: ...

    @abstractmethod
    def truth(self, account: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def add_calls(
        self, account: str, n: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]: ...

    def accounts(self) -> list[str]:
        return []

    @abstractmethod
    def account_line(self, name: str, base_url: str) -> str:
        """How the CLI tells a user an account's test credentials (they are the simulator's)."""
