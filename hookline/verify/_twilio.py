"""Twilio's ``X-Twilio-Signature``: HMAC-SHA1 over the URL it called and its parameters.

The signed text is the full public URL (scheme, host, port, path, query) followed by
each POST parameter's name and value, sorted by name then value. A JSON body is not in
the text; instead the URL carries ``bodySHA256=<hex sha256(body)>``, checked as well
(any other body without it is refused: nothing would sign it).
Twilio is not consistent about the default port, so the URL is tried both with it
(``:443``/``:80`` added when absent) and without any port, as its own libraries do.

A webhook signed with a SharedKey names its algorithm in
``X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256``; without that
header (or without ``algorithm=``) it is the auth token's HMAC-SHA1. Both kinds of
secret go in ``secret``/``secrets``, so one list holds them during a migration. An
algorithm this version does not know is refused, as twilio-python 9.13 does.
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

__all__ = ["Twilio", "signature_algorithm", "twilio_signature", "url_variants"]

_DEFAULT_PORTS = {"https": 443, "http": 80}
ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


def signature_algorithm(settings: str | None) -> str:
    """The algorithm ``X-Twilio-Webhooks-Signature-Settings`` names (upper case),
    ``HMAC_SHA1`` when it names none."""
    for part in (settings or "").split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


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


def twilio_signature(
    key: bytes, url: str, params: Iterable[tuple[str, str]], digest: str = "sha1"
) -> bytes:
    """The raw HMAC digest Twilio sends (base64-encoded) for ``url`` and ``params``."""
    text = url + "".join(name + value for name, value in sorted(set(params)))
    return hmac.new(key, text.encode(), digest).digest()


@attrs.frozen
class Twilio:
    """``X-Twilio-Signature`` keyed with the auth token or a SharedKey secret
    (``secret``/``secrets``)."""

    keys: tuple[bytes, ...]
    secret_headers: frozenset[str] = frozenset({"x-twilio-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> Twilio:
        return cls(keys=read_keys(fields, what="the auth token or SharedKey secret"))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        given = decode_base64(require_header(request, "X-Twilio-Signature"))
        if given is None:
            raise Forbidden(MALFORMED)
        algorithm = ALGORITHMS.get(signature_algorithm(request.header(SETTINGS_HEADER)))
        if algorithm is None:
            raise Forbidden("the signature algorithm named by Twilio is not supported")
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
            twilio_signature(key, url, params, algorithm)
            for key in self.keys
            for url in url_variants(request.url)
        ]
        if not (matches_any(expected, [given]) and body_ok):
            raise Forbidden(MISMATCH)
        return None
