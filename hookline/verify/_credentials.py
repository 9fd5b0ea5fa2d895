"""Shared-credential schemes: ``gitlab``, ``basic``, ``bearer`` and ``header``.

The body is not signed; the request proves itself by carrying a secret. Each secret is
compared in constant time with every configured one. Absent: 401 (with a
``WWW-Authenticate`` challenge for ``basic`` and ``bearer``); present but wrong or
unparseable: 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden, Unauthenticated
from ._signed import SignedRequest, decode_base64, matches_any, read_keys, require_header

__all__ = ["Basic", "Bearer", "SharedHeader", "authorization", "gitlab"]

WRONG = "the request credentials are not valid"
BASIC_CHALLENGE = 'Basic realm="hookline", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="hookline"'
_HEADER_NAME = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"


def authorization(request: SignedRequest, scheme: str, challenge: str) -> str:
    """The credentials of an ``Authorization: <scheme> <credentials>`` header.

    The scheme name is case-insensitive (RFC 9110). No header, or one for another
    scheme, raises ``Unauthenticated`` with ``challenge``.
    """
    value = (request.header("authorization") or "").strip()
    name, _, credentials = value.partition(" ")
    if name.lower() != scheme.lower():
        raise Unauthenticated(
            f"the request has no Authorization: {scheme} header", challenge=challenge
        )
    if not credentials.strip():
        raise Forbidden("the Authorization header is malformed")
    return credentials.strip()


@attrs.frozen
class SharedHeader:
    """The ``header`` scheme: header ``name`` (as written; matched in any case) equals
    one of the secrets."""

    name: str
    tokens: tuple[bytes, ...]

    @property
    def secret_headers(self) -> frozenset[str]:
        return frozenset({self.name.lower()})

    @classmethod
    def compile(cls, fields: Fields) -> SharedHeader:
        name = fields.string(
            "name", pattern=_HEADER_NAME, expected="a header name such as 'X-Webhook-Token'"
        )
        return cls(name=name, tokens=read_keys(fields, what="the header value"))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        given = require_header(request, self.name).encode()
        if not matches_any(self.tokens, [given]):
            raise Forbidden(WRONG)
        return None


def gitlab(fields: Fields) -> SharedHeader:
    """``X-Gitlab-Token: <secret>``: GitLab's plain shared token."""
    return SharedHeader(
        name="X-Gitlab-Token", tokens=read_keys(fields, what="the X-Gitlab-Token value")
    )


@attrs.frozen
class Bearer:
    """``Authorization: Bearer <token>`` equals one of the secrets."""

    tokens: tuple[bytes, ...]
    secret_headers: frozenset[str] = frozenset({"authorization"})

    @classmethod
    def compile(cls, fields: Fields) -> Bearer:
        return cls(tokens=read_keys(fields, what="a token"))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        given = authorization(request, "Bearer", BEARER_CHALLENGE).encode()
        if not matches_any(self.tokens, [given]):
            raise Forbidden(WRONG)
        return None


@attrs.frozen
class Basic:
    """``Authorization: Basic <base64(user:password)>`` names one of ``users``.

    Every user is compared, name and password both, so the time taken tells nothing
    about which names exist.
    """

    users: tuple[tuple[bytes, bytes], ...]
    secret_headers: frozenset[str] = frozenset({"authorization"})

    @classmethod
    def compile(cls, fields: Fields) -> Basic:
        if fields.has("users") and (fields.has("username") or fields.has("password")):
            fields.fail("users", "either users or username and password, not both")
        if fields.has("users"):
            found = fields.mapping("users")
            fields.value("username", None)
            fields.value("password", None)
            if not found:
                fields.fail("users", "a non-empty mapping of user names to passwords", found)
            for name, password in found.items():
                if not name or ":" in name:
                    fields.fail(f"users.{name}", "a user name without ':'", name)
                if not isinstance(password, str) or not password:
                    fields.fail(f"users.{name}", "a non-empty password string", password)
            users = tuple((name.encode(), password.encode()) for name, password in found.items())
            return cls(users=users)
        fields.value("users", None)
        name = fields.string("username", pattern=r"[^:]+", expected="a user name without ':'")
        password = fields.string("password", pattern=r".+", expected="a non-empty password")
        return cls(users=((name.encode(), password.encode()),))

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        encoded = authorization(request, "Basic", BASIC_CHALLENGE)
        decoded = decode_base64(encoded)
        if decoded is None or b":" not in decoded:
            raise Forbidden("the Authorization header is malformed")
        name, _, password = decoded.partition(b":")
        matched = False
        for user, secret in self.users:
            matched |= matches_any([user], [name]) & matches_any([secret], [password])
        if not matched:
            raise Forbidden(WRONG)
        return None
