"""Feishu/Lark events: the verification token, ``X-Lark-Signature`` and encrypted bodies.

With an Encrypt Key set in the developer console, Feishu sends ``{"encrypt": "<base64>"}``:
AES-256-CBC under SHA-256(encrypt key), the IV being the ciphertext's first 16 bytes,
PKCS#7-padded. It then signs each event: ``X-Lark-Signature`` is the hex SHA-256 of
``X-Lark-Request-Timestamp + X-Lark-Request-Nonce + encrypt key + raw body``. The
verification token sits in the event itself: ``header.token`` (schema 2.0) or
``token`` (1.0 and the URL check).

The URL check (``"type": "url_verification"``, plain or encrypted) is answered by
hookline with ``{"challenge": ...}`` after the token check, as Feishu's own SDK does; it
carries no signature. An encrypted event's decrypted JSON becomes ``$context.data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden, MalformedBody, Unauthenticated
from ._aes import AES_BLOCK, cbc_decrypt, unpad
from ._event_json import parse_event
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
    require_header,
)

__all__ = ["Feishu", "feishu_decrypt"]

NOT_EVENT = "the body is not a Feishu event (a JSON object)"
UNDECRYPTABLE = "the encrypted event does not decrypt with the configured encrypt_key"
NO_KEY = "the event is encrypted but no encrypt_key is configured"
WRONG_TOKEN = "the event's verification token is not valid"  # noqa: S105 (a message)
ONE_HOUR = 3600.0
_SIGNATURE_HEADERS = ("X-Lark-Request-Timestamp", "X-Lark-Request-Nonce", "X-Lark-Signature")


def feishu_decrypt(encrypt_key: str, encrypted: str) -> bytes:
    """The plain text of Feishu's ``encrypt`` value. Raises :class:`ValueError` when
    it is not base64, too short, not whole blocks or badly padded."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except binascii.Error as exc:
        raise ValueError("the ciphertext is not base64") from exc
    if len(raw) < 2 * AES_BLOCK:
        raise ValueError("the ciphertext is too short")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    return unpad(cbc_decrypt(key, raw[:AES_BLOCK], raw[AES_BLOCK:]), AES_BLOCK)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Forbidden(NOT_EVENT) from exc
    if not isinstance(found, dict):
        raise Forbidden(NOT_EVENT)
    return found


def _token(event: dict[str, Any]) -> object:
    """The verification token of either schema: 2.0 has it in ``header``."""
    header = event.get("header")
    if event.get("schema") is not None and isinstance(header, dict):
        return header.get("token")
    return event.get("token")


@attrs.frozen
class Feishu:
    """``feishu: {verification_token, encrypt_key, tolerance}``: at least one of the two
    credentials, each a string or a list (rotation). ``tolerance`` bounds a signed
    timestamp's age, default one hour either way."""

    tokens: tuple[str, ...]
    encrypt_keys: tuple[str, ...]
    tolerance: float = ONE_HOUR
    secret_headers: frozenset[str] = frozenset({"x-lark-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> Feishu:
        tokens = read_rotating(
            fields, "verification_token", "the Verification Token", required=False
        )
        keys = read_rotating(fields, "encrypt_key", "the Encrypt Key", required=False)
        if not tokens and not keys:
            fields.fail("verification_token", "a verification_token, an encrypt_key, or both")
        return cls(
            tokens=tokens, encrypt_keys=keys, tolerance=fields.duration("tolerance", ONE_HOUR)
        )

    def check(self, request: SignedRequest, now: float) -> Verified:
        signed = bool(self.encrypt_keys) and request.header("x-lark-signature") is not None
        if signed:
            self._check_signature(request, now)
        body = _json_object(request.body)
        encrypted = body.get("encrypt")
        event = body if encrypted is None else self._open(encrypted, signed=signed)
        self._check_token(event)
        if event.get("type") == "url_verification":
            challenge = event.get("challenge")
            if not isinstance(challenge, str):
                raise Forbidden("the url_verification event has no challenge")
            return Verified(
                answer=DirectAnswer(
                    body=json.dumps({"challenge": challenge}).encode(),
                    content_type="application/json",
                    reason="answered Feishu's url_verification",
                )
            )
        if self.encrypt_keys and not signed:
            require_header(request, "X-Lark-Signature")
        return Verified(opened=None if encrypted is None else Opened(data=event))

    def _check_signature(self, request: SignedRequest, now: float) -> None:
        stamp, nonce, given = (require_header(request, name) for name in _SIGNATURE_HEADERS)
        timestamp = parse_timestamp(stamp)
        expected = [
            hashlib.sha256((stamp + nonce + key).encode() + request.body).hexdigest().encode()
            for key in self.encrypt_keys
        ]
        if not matches_any(expected, [given.lower().encode()]):
            raise Forbidden(MISMATCH)
        check_window(timestamp, now, self.tolerance)

    def _open(self, encrypted: object, *, signed: bool) -> dict[str, Any]:
        """The decrypted event. Unsigned (only a URL check may be), text that does not
        parse proves nothing about its sender: 403, not the 400 of a signed one."""
        try:
            return parse_event(self._decrypt(encrypted))
        except MalformedBody as exc:
            if signed:
                raise
            raise Forbidden(UNDECRYPTABLE) from exc

    def _decrypt(self, encrypted: object) -> bytes:
        if not self.encrypt_keys:
            raise Forbidden(NO_KEY)
        if isinstance(encrypted, str):
            for key in self.encrypt_keys:
                try:
                    return feishu_decrypt(key, encrypted)
                except ValueError:
                    continue
        raise Forbidden(UNDECRYPTABLE)

    def _check_token(self, event: dict[str, Any]) -> None:
        if not self.tokens:
            return
        token = _token(event)
        if not isinstance(token, str) or not token:
            raise Unauthenticated("the event has no verification token")
        if not matches_any([t.encode() for t in self.tokens], [token.encode()]):
            raise Forbidden(WRONG_TOKEN)
