"""The generic ``hmac`` scheme, for senders that sign in a way of their own.

Configured by ``header`` (where the signature is), ``algorithm`` (sha1, sha256,
sha512), ``encoding`` (hex, base64), ``prefix`` (such as ``sha256=``) and ``signed``:
a template over ``{body}``, ``{timestamp}`` and ``{id}`` (default ``{body}``), read
from ``timestamp_header`` and ``id_header``. A signed timestamp is checked within
``tolerance`` either way; a timestamp header that is not signed is refused at load
time, since anyone could change it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden
from ._signed import (
    MALFORMED,
    MISMATCH,
    SignedRequest,
    check_window,
    decode_base64,
    decode_hex,
    hmac_digests,
    matches_any,
    parse_timestamp,
    read_keys,
    require_header,
    tolerance,
)

__all__ = ["GenericHmac", "parse_signed"]

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
PLACEHOLDERS = ("body", "timestamp", "id")
_PLACEHOLDER = re.compile(r"\{(body|timestamp|id)\}")
_HEADER_NAME = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_HEADER_EXPECTED = "a header name such as 'X-Signature'"


def parse_signed(template: str) -> tuple[str, ...]:
    """Split a ``signed`` template into literal text and placeholder names.

    Odd positions hold placeholder names (``body``, ``timestamp``, ``id``), even ones
    literal text. Raises :class:`ValueError` for any other brace.
    """
    parts = tuple(_PLACEHOLDER.split(template))
    for literal in parts[::2]:
        if "{" in literal or "}" in literal:
            raise ValueError(f"unknown placeholder in {template!r}")
    return parts


@attrs.frozen
class GenericHmac:
    """A signature over ``signed`` in ``header``, with the options above."""

    keys: tuple[bytes, ...]
    header: str
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    signed: tuple[str, ...] = ("", "body", "")
    timestamp_header: str | None = None
    id_header: str | None = None
    tolerance: float = 300.0

    @property
    def secret_headers(self) -> frozenset[str]:
        return frozenset({self.header})

    @classmethod
    def compile(cls, fields: Fields) -> GenericHmac:
        keys = read_keys(fields)
        header = fields.string("header", pattern=_HEADER_NAME, expected=_HEADER_EXPECTED)
        text = fields.string("signed", "{body}")
        try:
            signed = parse_signed(text)
        except ValueError:
            fields.fail("signed", "a template over {body}, {timestamp} and {id}", text)
        used = set(signed[1::2])
        headers = {}
        for name in ("timestamp", "id"):
            found = fields.string(f"{name}_header", None, pattern=_HEADER_NAME)
            if name in used and found is None:
                fields.fail(f"{name}_header", f"{_HEADER_EXPECTED}, since signed uses {{{name}}}")
            if found is not None and name not in used:
                fields.fail("signed", f"a template that uses {{{name}}}, or no {name}_header", text)
            headers[name] = None if found is None else found.lower()
        return cls(
            keys=keys,
            header=header.lower(),
            algorithm=fields.choice("algorithm", ALGORITHMS, "sha256"),
            encoding=fields.choice("encoding", ENCODINGS, "hex"),
            prefix=fields.string("prefix", ""),
            signed=signed,
            timestamp_header=headers["timestamp"],
            id_header=headers["id"],
            tolerance=tolerance(fields),
        )

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        value = require_header(request, self.header)
        values = {"body": request.body}
        if self.id_header is not None:
            values["id"] = require_header(request, self.id_header).encode()
        stamp = None
        if self.timestamp_header is not None:
            text = require_header(request, self.timestamp_header)
            stamp = parse_timestamp(text)
            values["timestamp"] = text.encode()
        given = None
        if value.startswith(self.prefix):
            encoded = value[len(self.prefix) :].strip()
            given = decode_hex(encoded) if self.encoding == "hex" else decode_base64(encoded)
        if given is None:
            raise Forbidden(MALFORMED)
        content = b"".join(
            values[part] if odd else part.encode()
            for odd, part in ((index % 2 == 1, part) for index, part in enumerate(self.signed))
        )
        if not matches_any(hmac_digests(self.keys, content, self.algorithm), [given]):
            raise Forbidden(MISMATCH)
        if stamp is not None:
            check_window(stamp, now, self.tolerance)
        return None
