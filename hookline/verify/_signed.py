"""The request that ``verify`` checks read, and the rules every scheme shares.

Verification is sans-IO: the ingress route builds a :class:`SignedRequest` from what it
received (raw body bytes, lower-cased headers, the public URL, the client address) and
each check decides from it alone, with ``now`` passed in, so tests need no server and
no clock.

Shared rules (``shared/reference/webhook-signatures.md``): a missing header or credential
raises :class:`~hookline.errors.Unauthenticated` (401); one that is present but does not
parse, does not match, or carries a timestamp outside the window raises
:class:`~hookline.errors.Forbidden` (403). Every comparison is constant-time and runs
against every configured secret and every signature the request carries.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from ..definition import JSON, Fields
from ..errors import Forbidden, Unauthenticated

__all__ = [
    "MALFORMED",
    "MISMATCH",
    "Check",
    "DirectAnswer",
    "Opened",
    "SignedRequest",
    "Verified",
    "check_window",
    "decode_base64",
    "decode_hex",
    "hmac_digests",
    "matches_any",
    "parse_timestamp",
    "read_keys",
    "read_rotating",
    "read_secrets",
    "require_header",
    "tolerance",
]

MISMATCH = "the request signature does not match"
MALFORMED = "the signature header is malformed"
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)


@attrs.frozen
class SignedRequest:
    """One received request, as the checks see it.

    ``url`` is the public URL the sender called (scheme, host, port, path, query),
    rebuilt from trusted forwarded headers behind a proxy (Twilio signs it).
    ``headers`` has lower-case names, repeated headers joined with ``", "``. ``body`` is
    the raw bytes as received. ``form`` holds the decoded parameters of an
    ``application/x-www-form-urlencoded`` body, in order, None for any other body.
    ``client_ip`` is the client address after trusted proxies were peeled off.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    form: tuple[tuple[str, str], ...] | None = None
    client_ip: str = ""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower case), None when absent."""
        return self.headers.get(name)


@attrs.frozen
class Opened:
    """A body a check decrypted (WeCom, Feishu): ``data`` becomes ``$context.data`` in
    place of the parsed envelope, and ``context`` adds entries to ``$context`` (such as
    ``wecom``, the decrypted XML)."""

    data: JSON
    context: Mapping[str, JSON] = attrs.field(factory=dict)


@attrs.frozen
class DirectAnswer:
    """The answer to a platform's URL check (WeCom's ``echostr``, Feishu's
    ``url_verification``): hookline sends it itself, starts no execution, and records
    the delivery with ``reason``."""

    body: bytes
    content_type: str
    reason: str
    status: int = 200


@attrs.frozen
class Verified:
    """What passing every check established. ``claims`` are the decoded claims of a
    ``jwt`` check (they become ``$context.jwt``), None when no such check ran.
    ``opened`` is the body a check decrypted, ``answer`` a handshake's answer that
    replaces running the workflow, and ``reply`` the acknowledgement a platform wants
    instead of the workflow's answer once the delivery is admitted (DingTalk's
    encrypted ``success``); None when no check made one."""

    claims: Mapping[str, Any] | None = None
    opened: Opened | None = None
    answer: DirectAnswer | None = None
    reply: DirectAnswer | None = None

    def merged(self, other: Verified) -> Verified:
        """This result with what ``other`` (a later check's) established added."""
        return Verified(
            claims=other.claims if other.claims is not None else self.claims,
            opened=other.opened if other.opened is not None else self.opened,
            answer=other.answer if other.answer is not None else self.answer,
            reply=other.reply if other.reply is not None else self.reply,
        )


class Check(Protocol):
    """One compiled ``verify`` entry.

    ``secret_headers`` names the (lower-case) headers that carry a secret or a
    signature, so delivery records and logs can redact them. :meth:`check` returns
    claims (``jwt``), a :class:`Verified` (a check that decrypts or answers a
    handshake) or None, and raises ``Unauthenticated`` or ``Forbidden``.
    """

    @property
    def secret_headers(self) -> frozenset[str]: ...

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | Verified | None: ...


# -- reading options -----------------------------------------------------------------


def read_secrets(fields: Fields, *, what: str = "a secret") -> tuple[str, ...]:
    """``secret`` (one string) or ``secrets`` (a non-empty list, for rotation), exactly
    one of them. Empty strings are refused: an empty key signs anything anyone sends."""
    if fields.has("secret") and fields.has("secrets"):
        fields.fail("secrets", "either secret or secrets, not both")
    if fields.has("secrets"):
        found = fields.sequence("secrets", non_empty=True)
        for index, item in enumerate(found):
            if not isinstance(item, str) or not item:
                fields.fail(f"secrets[{index}]", f"{what} as a non-empty string", item)
        fields.value("secret", None)
        return tuple(found)
    fields.value("secrets", None)
    secret = fields.string("secret", expected=f"{what} as a non-empty string (or secrets: [...])")
    if not secret:
        fields.fail("secret", f"{what} as a non-empty string", secret)
    return (secret,)


def read_rotating(
    fields: Fields, name: str, what: str, *, required: bool = True
) -> tuple[str, ...]:
    """Option ``name``: one non-empty string, or a non-empty list of them while a
    credential is being rotated (every one is tried). Absent: an error, or () when not
    ``required``."""
    expected = f"{what} as a non-empty string (or a list of them, for rotation)"
    if not required and not fields.has(name):
        fields.value(name, None)
        return ()
    found = fields.value(name, expected=expected)
    values = [found] if isinstance(found, str) else found
    if not isinstance(values, list) or not values:
        fields.fail(name, expected, found)
    for index, item in enumerate(values):
        if not isinstance(item, str) or not item:
            where = name if isinstance(found, str) else f"{name}[{index}]"
            fields.fail(where, f"{what} as a non-empty string", item)
    return tuple(values)


def read_keys(fields: Fields, *, what: str = "a secret") -> tuple[bytes, ...]:
    """:func:`read_secrets` as the key bytes a MAC or a comparison takes."""
    return tuple(secret.encode() for secret in read_secrets(fields, what=what))


def tolerance(fields: Fields) -> float:
    """``tolerance``: how far a signed timestamp may be from now, default five minutes."""
    found: float = fields.duration("tolerance", 300.0)
    return found


# -- reading requests ----------------------------------------------------------------


def require_header(request: SignedRequest, name: str, *, challenge: str | None = None) -> str:
    """The value of header ``name`` (any case; the message keeps it as written); absent
    or empty raises ``Unauthenticated``."""
    value = request.header(name.lower())
    if value is None or not value.strip():
        raise Unauthenticated(f"the request has no {name} header", challenge=challenge)
    return value.strip()


def parse_timestamp(text: str) -> int:
    """Unix seconds written as digits; anything else raises ``Forbidden``."""
    if _TIMESTAMP.fullmatch(text.strip()) is None:
        raise Forbidden("the request timestamp is malformed")
    return int(text)


def check_window(timestamp: int, now: float, tolerance: float, *, future: bool = True) -> None:
    """Refuse a timestamp more than ``tolerance`` seconds old, or (with ``future``) ahead.

    Exactly ``tolerance`` away still passes, as in the providers' own libraries.
    """
    if now - timestamp > tolerance:
        raise Forbidden("the request timestamp is too old")
    if future and timestamp - now > tolerance:
        raise Forbidden("the request timestamp is too far in the future")


def decode_hex(text: str) -> bytes | None:
    """Hex digits (either case) as bytes, None when they are not hex."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def decode_base64(text: str) -> bytes | None:
    """Standard base64 (padding required) as bytes, None when it does not decode."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def hmac_digests(keys: Iterable[bytes], content: bytes, digest: str = "sha256") -> list[bytes]:
    """The HMAC of ``content`` under each key, for :func:`matches_any`."""
    return [hmac.new(key, content, digest).digest() for key in keys]


def matches_any(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    """Whether any given value equals any expected one.

    Every pair is compared, in constant time, without stopping at the first match, so
    the time taken says nothing about which secret or signature matched.
    """
    candidates = tuple(given)
    matched = False
    for digest in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(digest, candidate)
    return matched
