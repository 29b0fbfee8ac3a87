"""Plumbing shared by the server and every vendor module: request/response values,
form parsing and the ``Vendor`` interface a vendor module implements to plug into the server."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
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
    """One simulated vendor; the server routes ``/<name>/...`` to it."""

    name: ClassVar[str]
    secret_params: ClassVar[frozenset[str]] = frozenset()
    # The vendor's documented "try again later" error codes: the fault mix's vendor_error
    transient_codes: ClassVar[tuple[int, ...]] = ()

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
