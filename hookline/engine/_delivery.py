"""The inbound request as the engine sees it, and the ``$context`` built from it."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

import attrs

from .._ids import new_id
from ..definition import JSON
from ..store._records import DeliveryRecord, Verdict
from ._request_context import FileInfo, LazyFields, base64_text, body_text

# Headers whose values are credentials or signatures: never stored, never logged.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-hub-signature",
        "x-hub-signature-256",
        "x-gitlab-token",
        "stripe-signature",
        "x-slack-signature",
        "x-shopify-hmac-sha256",
        "x-twilio-signature",
        "webhook-signature",
        "svix-signature",
    }
)
REDACTED = "[redacted]"


def redact_headers(
    headers: Mapping[str, str], extra: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Headers with credential and signature values replaced by ``[redacted]``."""
    return {
        name: (REDACTED if name in SECRET_HEADERS or name in extra else value)
        for name, value in headers.items()
    }


@attrs.frozen
class Delivery:
    """One webhook request, parsed and verified, on its way to a workflow.

    ``headers`` names are lower-case. ``data`` is the parsed body, ``body`` the raw
    bytes exactly as received. ``text`` is the body as text when the caller already
    has it (a context stored before raw bodies were kept exact); None, the default,
    means ``$context.raw`` is decoded from ``body`` when read. ``files`` maps each
    multipart file field to a :class:`FileInfo` (or, rebuilt from an old record, to
    its description alone). ``form`` is the form's fields for a form body (None for
    other bodies). ``remote_addr`` is the client (behind trusted proxies, the address
    they forwarded for). ``jwt`` holds the claims a ``jwt`` check decoded
    (``$context.jwt``), None without one. ``secret_headers`` names the workflow's own
    secret-bearing headers (its ``verify`` checks'), redacted with the standard ones
    wherever the delivery is stored.
    """

    id: str
    workflow: str
    received_at: float
    method: str = "POST"
    path: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    query: Mapping[str, Any] = attrs.field(factory=dict)
    params: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    data: JSON = None
    text: str | None = None
    files: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    remote_addr: str = ""
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    jwt: Mapping[str, Any] | None = None
    secret_headers: frozenset[str] = frozenset()
    form: Mapping[str, Any] | None = None

    def context(self) -> LazyFields:
        """The ``$context`` object of DESIGN.md section 4.

        ``raw`` and ``raw_base64`` (and each file's ``text``, ``base64``, ``sha256``)
        are computed when first read, and left out of plain copies (see
        :mod:`._request_context`). The headers, query and params are the delivery's
        own mappings, not copies: nothing writes to a context.
        """
        received = datetime.datetime.fromtimestamp(self.received_at, tz=datetime.UTC)
        eager: dict[str, Any] = {
            "data": self.data,
            "headers": _plain(self.headers),
            "query": _plain(self.query),
            "params": _plain(self.params),
            "method": self.method,
            "path": self.path,
            "remote_addr": self.remote_addr,
            "files": dict(self.files),
            "form": self.form,
            "delivery_id": self.id,
            "received_at": received.isoformat().replace("+00:00", "Z"),
        }
        if self.jwt is not None:
            eager["jwt"] = dict(self.jwt)
        if self.extra:
            eager.update(self.extra)
        return LazyFields(eager, {"raw": self._raw, "raw_base64": self._raw_base64})

    def _raw(self) -> str | None:
        if self.text is not None:
            return self.text
        return body_text(self.body, self.headers.get("content-type"))

    def _raw_base64(self) -> str:
        return base64_text(self.body)

    def stored_context(self) -> dict[str, Any]:
        """The context as persisted: secret headers redacted, without the lazy ``raw``
        and ``raw_base64`` (the delivery record keeps the body)."""
        return {
            **self.context(),
            "headers": redact_headers(self.headers, self.secret_headers),
        }

    def body_hash(self) -> str:
        """A digest of method and body, to tell a retry from a reuse of its key."""
        return hashlib.sha256(self.method.encode() + b"\0" + self.body).hexdigest()

    def record(
        self,
        verdict: Verdict,
        *,
        workflow: str | None = None,
        reason: str | None = None,
        status: int | None = None,
        execution_id: str | None = None,
    ) -> DeliveryRecord:
        """This delivery as a stored record, headers redacted."""
        return DeliveryRecord(
            id=self.id,
            workflow=workflow if workflow is not None else (self.workflow or None),
            received_at=self.received_at,
            method=self.method,
            path=self.path,
            headers=redact_headers(self.headers, self.secret_headers),
            query=dict(self.query),
            body=self.body,
            remote_addr=self.remote_addr,
            verdict=verdict,
            reason=reason,
            status=status,
            execution_id=execution_id,
        )


def embedded_delivery(
    workflow: str,
    path: str,
    *,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, Any] | None = None,
    body: bytes | None = None,
    method: str = "POST",
    received_at: float | None = None,
) -> Delivery:
    """A delivery made in-process (no HTTP) for ``workflow`` listening on ``path``;
    without ``body``, the body is ``data`` as compact JSON. ``received_at`` defaults to
    now (unix seconds)."""
    if body is None:
        body = b"" if data is None else json.dumps(data, separators=(",", ":")).encode()
    return Delivery(
        id=new_id(),
        workflow=workflow,
        received_at=time.time() if received_at is None else received_at,
        method=method.upper(),
        path=path,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=dict(query or {}),
        body=body,
        data=data,
        remote_addr="embedded",
    )


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # A dict is shared as it is; anything else becomes one, so the context encodes.
    return mapping if type(mapping) is dict else dict(mapping)


def file_info(description: Mapping[str, Any]) -> Mapping[str, Any]:
    """A stored file description back as a :class:`FileInfo` when it kept the file's
    bytes (``base64``), else as the plain description it is."""
    if isinstance(description, FileInfo):
        return description
    encoded = description.get("base64")
    if not isinstance(encoded, str):
        return dict(description)
    try:
        content = base64.b64decode(encoded, validate=True)
    except ValueError:
        return dict(description)
    filename = description.get("filename")
    content_type = description.get("content_type")
    return FileInfo(
        filename if isinstance(filename, str) else None,
        content_type if isinstance(content_type, str) else None,
        content,
    )
