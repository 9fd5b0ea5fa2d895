"""What an ASGI scope says about a webhook request: headers, target, query and origin.

The webhook route reads the ASGI scope directly, with no Quart request (see
:mod:`._ingress`); these helpers read it the way Quart would, on the raw bytes.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ._body import collect_fields
from ._client_ip import IPNetwork, Origin, resolve_origin

__all__ = [
    "Scope",
    "content_length",
    "first_header",
    "form_params",
    "query_fields",
    "raw_path",
    "request_origin",
    "request_target",
    "scope_headers",
]

Scope = Mapping[str, Any]
_FORM = "application/x-www-form-urlencoded"


def scope_headers(scope: Scope) -> dict[str, str]:
    """The sender's headers, names lower-cased, repeated ones joined with ``, ``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def first_header(scope: Scope, wanted: bytes) -> str | None:
    """The first value of header ``wanted`` (lower-case bytes), None when absent."""
    for name, value in scope["headers"]:
        if name.lower() == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def content_length(scope: Scope) -> int | None:
    """The declared Content-Length, None when absent or not a number."""
    value = first_header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def query_fields(scope: Scope) -> dict[str, str | list[str]]:
    """The query parameters: a name given once maps to its value, a repeated one to a list."""
    text = scope.get("query_string", b"").decode("latin-1")
    return collect_fields(urllib.parse.parse_qsl(text, keep_blank_values=True))


def raw_path(scope: Scope) -> str:
    """The path as sent, still percent-encoded."""
    raw = scope.get("raw_path") or scope["path"].encode()
    text: str = raw.decode("latin-1").split("?", 1)[0]
    return text


def request_target(scope: Scope) -> str:
    """The request target as sent: the raw path and the query string."""
    path = raw_path(scope)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request_origin(scope: Scope, headers: dict[str, str], proxies: Sequence[IPNetwork]) -> Origin:
    """The client and the public scheme and host, through trusted proxies only."""
    client = scope.get("client")
    peer = client[0] if client else ""
    host = headers.get("host") or _server_host(scope)
    return resolve_origin(peer, scope.get("scheme", "http"), host, headers, proxies)


def form_params(body: bytes, content_type: str | None) -> tuple[tuple[str, str], ...] | None:
    """The parameters of a form-encoded body in order, None for any other body."""
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != _FORM:
        return None
    text = body.decode("utf-8", "replace")
    return tuple(urllib.parse.parse_qsl(text, keep_blank_values=True))
