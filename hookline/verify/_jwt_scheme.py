"""The ``jwt`` scheme: ``Authorization: Bearer <JSON Web Token>``, decoded with PyJWT.

The accepted ``algorithms`` are pinned in the definition and must be of one family:
HMAC (``HS256``...) keyed by ``secret``/``secrets``, or public-key (``RS256``,
``ES256``, ``PS256``, ``EdDSA``...) with ``public_key``. ``none`` is refused, and so is
mixing the families, which is what algorithm-confusion attacks rely on. Keys are parsed
once at load time.

Time claims are checked here against the ``now`` the caller passes (not the wall
clock), with PyJWT's own rules: ``exp`` must be after ``now - leeway``, ``nbf`` and
``iat`` not after ``now + leeway``; a time claim that is not a finite number (``NaN``,
``Infinity``, ``1e400``) makes the token invalid. ``require`` lists claims that must be present
(default ``[exp]``: a token that never expires is a password). The decoded claims
are returned and become ``$context.jwt``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden
from ._credentials import BEARER_CHALLENGE, authorization
from ._signed import SignedRequest, read_secrets

__all__ = ["HMAC_ALGORITHMS", "PUBLIC_KEY_ALGORITHMS", "Jwt"]

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES256K",
    "ES384",
    "ES512",
    "EdDSA",
)
INVALID = "the token is not valid"
_TIME_CLAIMS = ("exp", "nbf", "iat")


@attrs.frozen
class Jwt:
    """A bearer JWT signed with one of ``keys`` by one of ``algorithms``."""

    keys: tuple[Any, ...]
    algorithms: tuple[str, ...]
    audience: tuple[str, ...] | None = None
    issuer: tuple[str, ...] | None = None
    leeway: float = 0.0
    require: tuple[str, ...] = ("exp",)
    secret_headers: frozenset[str] = frozenset({"authorization"})

    @classmethod
    def compile(cls, fields: Fields) -> Jwt:
        known = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS
        algorithms = fields.strings("algorithms")
        if not algorithms:
            fields.fail("algorithms", "a non-empty list such as [HS256]; the field is missing")
        for index, name in enumerate(algorithms):
            if name not in known:
                fields.fail(f"algorithms[{index}]", "one of " + ", ".join(known), name)
        hmac_family = algorithms[0] in HMAC_ALGORITHMS
        if any((name in HMAC_ALGORITHMS) != hmac_family for name in algorithms):
            fields.fail("algorithms", "algorithms of one family: all HS*, or none", algorithms)
        if hmac_family:
            if fields.has("public_key"):
                fields.fail("public_key", "no public key with HS* algorithms (use secret)")
            fields.value("public_key", None)
            raw: tuple[str, ...] = read_secrets(fields)
        else:
            if fields.has("secret") or fields.has("secrets"):
                fields.fail("secret", f"no secret with {algorithms[0]} (use public_key)")
            raw = (fields.string("public_key", expected="a PEM public key"),)
        keys = tuple(_prepare(fields, algorithms, key, hmac_family) for key in raw)
        return cls(
            keys=keys,
            algorithms=algorithms,
            audience=_one_or_many(fields, "audience"),
            issuer=_one_or_many(fields, "issuer"),
            leeway=fields.duration("leeway", 0.0, positive=False),
            require=fields.strings("require", ("exp",)),
        )

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        import jwt

        token = authorization(request, "Bearer", BEARER_CHALLENGE)
        claims = None
        for key in self.keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=list(self.algorithms),
                    audience=None if self.audience is None else list(self.audience),
                    issuer=None if self.issuer is None else list(self.issuer),
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "require": list(self.require),
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise Forbidden(INVALID) from exc
            break
        if claims is None:
            raise Forbidden(INVALID)
        self._check_times(claims, now)
        return claims

    def _check_times(self, claims: Mapping[str, Any], now: float) -> None:
        times = {}
        for name in _TIME_CLAIMS:
            if name in claims:
                value = claims[name]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise Forbidden(INVALID)
                if isinstance(value, float) and not math.isfinite(value):
                    # NaN, Infinity and 1e400 (read as Infinity) are no time.
                    raise Forbidden(INVALID)
                times[name] = int(value)
        if "exp" in times and times["exp"] <= now - self.leeway:
            raise Forbidden("the token has expired")
        for name in ("nbf", "iat"):
            if name in times and times[name] > now + self.leeway:
                raise Forbidden("the token is not valid yet")


def _prepare(fields: Fields, algorithms: tuple[str, ...], key: str, hmac_family: bool) -> Any:
    """``key`` parsed for every algorithm, or the definition refused."""
    # PyJWT (and the cryptography package under it) is imported by the first workflow
    # that verifies JWTs, not with hookline: it costs more to import than the engine.
    import jwt

    field = ("secret" if fields.has("secret") else "secrets") if hmac_family else "public_key"
    prepared: Any = key
    for name in algorithms:
        try:
            prepared = jwt.get_algorithm_by_name(name).prepare_key(prepared)
        except (jwt.PyJWTError, ValueError, TypeError):
            what = "an HMAC secret (not a PEM key)" if hmac_family else f"a PEM key for {name}"
            fields.fail(field, what)
    return prepared


def _one_or_many(fields: Fields, name: str) -> tuple[str, ...] | None:
    found = fields.value(name, None)
    if found is None:
        return None
    if isinstance(found, str):
        return (found,)
    return fields.strings(name) or fields.fail(name, "a string or a non-empty list", found)
