"""WeCom (企业微信) callbacks: ``msg_signature`` in the query, the message encrypted.

Every callback carries ``msg_signature``, ``timestamp`` and ``nonce`` in its query
string. The URL check is a GET whose ``echostr`` is signed and encrypted: hookline
answers it with the decrypted text itself. Messages are POSTed as XML whose
``<Encrypt>`` element is signed and encrypted (:mod:`._wxcrypt`); the decrypted XML
becomes ``$context.data`` (as a mapping) and ``$context.wecom`` (as text).

The signature is checked before the timestamp and before decrypting, so a forged
request always hears "does not match"; the decrypted receive id must be one of
``corp_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from ..definition import Fields, parse_xml
from ..errors import Forbidden, MalformedBody, Unauthenticated
from ._signed import (
    MISMATCH,
    DirectAnswer,
    Opened,
    SignedRequest,
    Verified,
    check_window,
    matches_any,
    parse_timestamp,
    read_rotating,
)
from ._wxcrypt import decrypt, message_key, signature

__all__ = [
    "WeCom",
    "aes_keys",
    "check_signature",
    "open_message",
    "query_values",
    "required_param",
]

NOT_ENVELOPE = "the body is not an XML message with an <Encrypt> element"
UNDECRYPTABLE = "the encrypted message does not decrypt with the configured key"
OTHER_RECEIVER = "the encrypted message is addressed to another receiver id"
ONE_HOUR = 3600.0


def query_values(request: SignedRequest) -> Mapping[str, str]:
    """The first value of each query parameter of the URL the sender called."""
    try:
        query = urlsplit(request.url).query
    except ValueError:
        return {}
    return {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}


def required_param(query: Mapping[str, str], name: str) -> str:
    """Query parameter ``name``; absent or empty raises ``Unauthenticated``."""
    value = query.get(name, "").strip()
    if not value:
        raise Unauthenticated(f"the request has no {name} query parameter")
    return value


def open_message(
    keys: tuple[bytes, ...], receivers: tuple[str, ...], encrypted: str
) -> tuple[bytes, bytes, str]:
    """The message inside ``encrypted`` under one of ``keys``, addressed to one of
    ``receivers``, with the key and receiver that opened it. Raises ``Forbidden`` when
    no key opens it or it is for someone else."""
    addressed_elsewhere = False
    for key in keys:
        try:
            message, receiver = decrypt(key, encrypted)
        except ValueError:
            continue
        if matches_any([receiver.encode()], [r.encode() for r in receivers]):
            return message, key, receiver
        addressed_elsewhere = True
    raise Forbidden(OTHER_RECEIVER if addressed_elsewhere else UNDECRYPTABLE)


def aes_keys(fields: Fields, name: str) -> tuple[bytes, ...]:
    """Option ``name``: 43-character EncodingAESKeys (one, or a list while rotating)."""
    written = read_rotating(fields, name, "the 43-character EncodingAESKey")
    keys = []
    for index, text in enumerate(written):
        try:
            keys.append(message_key(text))
        except ValueError:
            where = name if len(written) == 1 and fields.has(name) else f"{name}[{index}]"
            fields.fail(where, "the 43-character EncodingAESKey (base64 of 32 bytes)")
    return tuple(keys)


def check_signature(
    tokens: tuple[str, ...], stamp: str, nonce: str, encrypted: str, given: str
) -> None:
    """Raise Forbidden unless ``given`` is the SHA-1 signature of the values under one
    of ``tokens`` (rotation), compared in constant time."""
    expected = [signature(token, stamp, nonce, encrypted).encode() for token in tokens]
    if not matches_any(expected, [given.lower().encode()]):
        raise Forbidden(MISMATCH)


@attrs.frozen
class WeCom:
    """``wecom: {token, encoding_aes_key, corp_id, tolerance}``, each credential a string
    or a list (rotation). ``tolerance`` bounds the signed timestamp's age, default one
    hour either way."""

    tokens: tuple[str, ...]
    keys: tuple[bytes, ...]
    corp_ids: tuple[str, ...]
    tolerance: float = ONE_HOUR
    # The signature travels in the query string, not in a header (redacted there).
    secret_headers: frozenset[str] = frozenset()
    secret_query: frozenset[str] = frozenset({"msg_signature"})

    @classmethod
    def compile(cls, fields: Fields) -> WeCom:
        return cls(
            tokens=read_rotating(fields, "token", "the callback Token"),
            keys=aes_keys(fields, "encoding_aes_key"),
            corp_ids=read_rotating(fields, "corp_id", "the CorpID"),
            tolerance=fields.duration("tolerance", ONE_HOUR),
        )

    def check(self, request: SignedRequest, now: float) -> Verified:
        query = query_values(request)
        given = required_param(query, "msg_signature")
        stamp = required_param(query, "timestamp")
        nonce = required_param(query, "nonce")
        handshake = request.method == "GET"
        if handshake:
            # A '+' left unescaped in the query reads as a space; base64 has none.
            encrypted = required_param(query, "echostr").replace(" ", "+")
        else:
            encrypted = _envelope(request.body)
        timestamp = parse_timestamp(stamp)
        check_signature(self.tokens, stamp, nonce, encrypted, given)
        check_window(timestamp, now, self.tolerance)
        message, _, _ = open_message(self.keys, self.corp_ids, encrypted)
        if handshake:
            return Verified(
                answer=DirectAnswer(
                    body=message,
                    content_type="text/plain; charset=utf-8",
                    reason="answered WeCom's URL check (echostr)",
                )
            )
        try:
            text = message.decode()
        except UnicodeDecodeError as exc:
            raise MalformedBody("the decrypted message is not UTF-8") from exc
        return Verified(opened=Opened(data=parse_xml(message), context={"wecom": text}))


def _envelope(body: bytes) -> str:
    """The ``<Encrypt>`` text of WeCom's XML envelope."""
    try:
        mapping = parse_xml(body)
    except MalformedBody as exc:
        raise Forbidden(NOT_ENVELOPE) from exc
    root: Any = next(iter(mapping.values()), None)
    encrypted = root.get("Encrypt") if isinstance(root, dict) else None
    if not isinstance(encrypted, str) or not encrypted:
        raise Forbidden(NOT_ENVELOPE)
    return encrypted
