"""Twilio's ``X-Twilio-Signature``: HMAC-SHA1 over the URL it called and its parameters.

The signed text is the full public URL (scheme, host, port, path, query) followed by
each POST parameter's name and value, sorted by name then value. A JSON body is not in
the text; instead the URL carries ``bodySHA256=<hex sha256(body)>``, checked as well
(any other body without it is refused: nothing would sign it).
Twilio is not consistent about the default port, so the URL is tried both with it
(``:443``/``:80`` added when absent) and without any port, as its own libraries do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import attrs

from ..definition import Fields
from ..errors import Forbidden
from ._signed import (
    MALFORMED,
    MISMATCH,
    SignedRequest,
    decode_base64,
    matches_any,
    read_keys,
    require_header,
)

__all__ = ["Twilio", "twilio_signature", "url_variants"]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def url_variants(url: str) -> tuple[str, ...]:
    """``url`` without any port, and with its port (the scheme's default when absent)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    host = parts.netloc
    if port is not None:
        host = host[: host.rfind(":")]
    bare = parts._replace(netloc=host).geturl()
    with_port = url if port is not None else _with_port(parts)
    return tuple(dict.fromkeys((bare, with_port)))


def _with_port(parts: SplitResult) -> str:
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None:
        return parts.geturl()
    return parts._replace(netloc=f"{parts.netloc}:{default}").geturl()


def twilio_signature(key: bytes, url: str, params: Iterable[tuple[str, str]]) -> bytes:
    """The raw HMAC-SHA1 digest Twilio sends (base64-encoded) for ``url`` and ``params``."""
    text = url + "".join(name + value for name, value in sorted(set(params)))
    return hmac.new(key, text.encode(), hashlib.sha1).digest()


@attrs.frozen
class Twilio:
    """``X-Twilio-Signature`` keyed with the auth token (``secret``/``secrets``)."""

    keys: tuple[bytes, ...]
    secret_headers: frozenset[str] = frozenset({"x-twilio-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> Twilio:
        return cls(keys=read_keys(fields, what="the auth token"))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        given = decode_base64(require_header(request, "X-Twilio-Signature"))
        if given is None:
            raise Forbidden(MALFORMED)
        try:
            query = urlsplit(request.url).query
        except ValueError as exc:  # the URL Twilio signs cannot be this one
            raise Forbidden(MISMATCH) from exc
        body_hashes = parse_qs(query, keep_blank_values=True).get("bodySHA256")
        # A body that is neither form parameters nor hashed into the URL is not signed.
        body_ok = request.form is not None or not request.body
        params: tuple[tuple[str, str], ...] = request.form or ()
        if body_hashes:
            # The body is signed through its hash in the URL, not as parameters.
            digest = hashlib.sha256(request.body).hexdigest().encode()
            body_ok = hmac.compare_digest(digest, body_hashes[0].lower().encode())
            params = ()
        expected = [
            twilio_signature(key, url, params)
            for key in self.keys
            for url in url_variants(request.url)
        ]
        if not (matches_any(expected, [given]) and body_ok):
            raise Forbidden(MISMATCH)
        return None
