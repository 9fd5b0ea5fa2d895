"""The providers' HMAC signature schemes: GitHub, Stripe, Slack, Shopify, Standard Webhooks.

Each follows ``shared/reference/webhook-signatures.md`` to the letter: the exact signed
content, key bytes and encoding of its provider, the raw body as received, and its
timestamp rule (Stripe refuses only old timestamps; Slack and Standard Webhooks refuse
both directions). A check verifies the signature before the timestamp, so a forged
request always hears "does not match", whatever its timestamp.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden, Unauthenticated
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
    read_secrets,
    require_header,
    tolerance,
)

__all__ = ["GitHub", "Shopify", "Slack", "StandardWebhooks", "Stripe", "webhook_key"]


@attrs.frozen
class GitHub:
    """``X-Hub-Signature-256: sha256=<hex>`` over the body; the legacy
    ``X-Hub-Signature: sha1=<hex>`` only with ``legacy_sha1`` and only when the sha256
    header is absent."""

    keys: tuple[bytes, ...]
    legacy_sha1: bool = False
    secret_headers: frozenset[str] = frozenset({"x-hub-signature-256", "x-hub-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> GitHub:
        return cls(keys=read_keys(fields), legacy_sha1=fields.boolean("legacy_sha1", default=False))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        value = request.header("x-hub-signature-256")
        digest, prefix = "sha256", "sha256="
        if value is None and self.legacy_sha1 and request.header("x-hub-signature"):
            value, digest, prefix = request.header("x-hub-signature"), "sha1", "sha1="
        if not value:
            raise Unauthenticated("the request has no X-Hub-Signature-256 header")
        given = decode_hex(value.strip()[len(prefix) :]) if value.startswith(prefix) else None
        if given is None:
            raise Forbidden(MALFORMED)
        if not matches_any(hmac_digests(self.keys, request.body, digest), [given]):
            raise Forbidden(MISMATCH)
        return None


@attrs.frozen
class Stripe:
    """``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``{t}.{body}``; the
    ``whsec_`` secret is the key as written. Only timestamps older than ``tolerance``
    are refused (Stripe's own rule); any ``v1`` may match (rolled secrets)."""

    keys: tuple[bytes, ...]
    tolerance: float = 300.0
    secret_headers: frozenset[str] = frozenset({"stripe-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> Stripe:
        return cls(keys=read_keys(fields), tolerance=tolerance(fields))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        value = require_header(request, "Stripe-Signature")
        stamps: list[str] = []
        signatures: list[bytes] = []
        for item in value.split(","):
            name, _, text = item.strip().partition("=")
            if name == "t":
                stamps.append(text)
            elif name == "v1" and (signature := decode_hex(text)) is not None:
                signatures.append(signature)
        if not stamps or not signatures:
            raise Forbidden(MALFORMED)
        timestamp = parse_timestamp(stamps[0])
        content = stamps[0].strip().encode() + b"." + request.body
        if not matches_any(hmac_digests(self.keys, content), signatures):
            raise Forbidden(MISMATCH)
        check_window(timestamp, now, self.tolerance, future=False)
        return None


@attrs.frozen
class Slack:
    """``X-Slack-Signature: v0=<hex>`` over ``v0:{X-Slack-Request-Timestamp}:{body}``,
    the timestamp within ``tolerance`` either way."""

    keys: tuple[bytes, ...]
    tolerance: float = 300.0
    secret_headers: frozenset[str] = frozenset({"x-slack-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> Slack:
        return cls(keys=read_keys(fields), tolerance=tolerance(fields))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        value = require_header(request, "X-Slack-Signature")
        stamp = require_header(request, "X-Slack-Request-Timestamp")
        given = decode_hex(value[3:]) if value.startswith("v0=") else None
        if given is None:
            raise Forbidden(MALFORMED)
        timestamp = parse_timestamp(stamp)
        content = b"v0:" + stamp.encode() + b":" + request.body
        if not matches_any(hmac_digests(self.keys, content), [given]):
            raise Forbidden(MISMATCH)
        check_window(timestamp, now, self.tolerance)
        return None


@attrs.frozen
class Shopify:
    """``X-Shopify-Hmac-Sha256: <base64>`` over the body, or the same header without its
    ``X-`` (``Shopify-Hmac-Sha256``), as Shopify's newer deliveries name their headers.
    Old and new client secrets both pass during a rotation (Shopify signs with the old
    one for up to an hour)."""

    keys: tuple[bytes, ...]
    secret_headers: frozenset[str] = frozenset({"x-shopify-hmac-sha256", "shopify-hmac-sha256"})

    @classmethod
    def compile(cls, fields: Fields) -> Shopify:
        return cls(keys=read_keys(fields))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        name = "X-Shopify-Hmac-Sha256"
        if request.header("x-shopify-hmac-sha256") is None:
            name = name.removeprefix("X-") if request.header("shopify-hmac-sha256") else name
        given = decode_base64(require_header(request, name))
        if given is None:
            raise Forbidden(MALFORMED)
        if not matches_any(hmac_digests(self.keys, request.body), [given]):
            raise Forbidden(MISMATCH)
        return None


def webhook_key(secret: str) -> bytes:
    """The key bytes of a Standard Webhooks secret: ``whsec_`` (optional) then base64,
    missing padding tolerated. Raises :class:`ValueError` when it does not decode."""
    text = secret.removeprefix("whsec_").strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
    if not key:
        raise ValueError("the key is empty")
    return key


@attrs.frozen
class StandardWebhooks:
    """``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64> ...``
    (or the same ``svix-*`` headers) over ``{id}.{timestamp}.{body}``. Any ``v1`` may
    match; other versions (``v1a``, ed25519) are ignored. The timestamp is checked
    within ``tolerance`` either way."""

    keys: tuple[bytes, ...]
    tolerance: float = 300.0
    secret_headers: frozenset[str] = frozenset({"webhook-signature", "svix-signature"})

    @classmethod
    def compile(cls, fields: Fields) -> StandardWebhooks:
        secrets = read_secrets(fields, what="a secret such as 'whsec_<base64>'")
        keys = []
        name = "secret" if fields.has("secret") else "secrets"
        for index, secret in enumerate(secrets):
            try:
                keys.append(webhook_key(secret))
            except ValueError:
                where = name if name == "secret" else f"secrets[{index}]"
                fields.fail(where, "a secret such as 'whsec_<base64>' (the key in base64)")
        return cls(keys=tuple(keys), tolerance=tolerance(fields))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        message_id = _either(request, "id")
        stamp = _either(request, "timestamp")
        value = _either(request, "signature")
        signatures = []
        for item in value.split():
            version, _, text = item.partition(",")
            if version == "v1" and (signature := decode_base64(text)) is not None:
                signatures.append(signature)
        timestamp = parse_timestamp(stamp)
        content = f"{message_id}.{stamp}.".encode() + request.body
        if not matches_any(hmac_digests(self.keys, content), signatures):
            raise Forbidden(MISMATCH)
        check_window(timestamp, now, self.tolerance)
        return None


def _either(request: SignedRequest, name: str) -> str:
    """``webhook-<name>``, or Svix's ``svix-<name>`` when that is what was sent."""
    value = request.header(f"webhook-{name}") or request.header(f"svix-{name}")
    if value is None or not value.strip():
        raise Unauthenticated(f"the request has no webhook-{name} header")
    return value.strip()
