"""Sign a webhook the way each provider does: the sending side of ``hookline send``.

:func:`sign` returns the headers a provider would attach to ``body`` sent to ``url``
(and the URL itself, which Twilio extends with ``bodySHA256`` for a JSON body). Every
scheme of ``verify`` is covered, so a user can try a hook before the provider calls it.
The algorithms are written out here from ``shared/reference/webhook-signatures.md``
rather than shared with the verifiers, so that each side checks the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import attrs
import jwt

from ._ids import new_id

__all__ = ["SCHEMES", "Signed", "sign"]

SCHEMES = (
    "github",
    "gitlab",
    "stripe",
    "slack",
    "standard_webhooks",
    "shopify",
    "twilio",
    "hmac",
    "basic",
    "bearer",
    "header",
    "jwt",
)
_FORM = "application/x-www-form-urlencoded"


@attrs.frozen
class Signed:
    """What to send: ``url`` (Twilio may add to it) and the ``headers`` to add."""

    url: str
    headers: Mapping[str, str]


def _mac(key: bytes, content: bytes, digest: str = "sha256") -> bytes:
    return hmac.new(key, content, digest).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sign(
    scheme: str,
    *,
    secret: str,
    body: bytes,
    url: str = "",
    content_type: str | None = None,
    timestamp: int | None = None,
    message_id: str | None = None,
    options: Mapping[str, str] | None = None,
) -> Signed:
    """Sign ``body`` for ``scheme`` with ``secret``.

    ``timestamp`` (Unix seconds, default now) and ``message_id`` (default a new id)
    go where the scheme signs them. ``options`` holds the scheme's other settings, named
    as in ``verify``: ``hmac`` uses ``header`` (required), ``algorithm``, ``encoding``,
    ``prefix``, ``signed``, ``timestamp_header``, ``id_header``; ``basic`` uses
    ``username`` (``secret`` is the password); ``header`` uses ``name``; ``jwt`` uses
    ``algorithm`` (default HS256; ``secret`` is then the private key for RS/ES),
    ``audience``, ``issuer``, ``subject`` and ``expires_in`` (seconds, default 300).

    Raises :class:`ValueError` for an unknown scheme or a missing option.
    """
    options = options or {}
    stamp = int(time.time()) if timestamp is None else timestamp
    ident = message_id or f"msg_{new_id()}"
    key = secret.encode()
    if scheme == "github":
        return Signed(url, {"X-Hub-Signature-256": "sha256=" + _mac(key, body).hex()})
    if scheme == "gitlab":
        return Signed(url, {"X-Gitlab-Token": secret})
    if scheme == "stripe":
        digest = _mac(key, f"{stamp}.".encode() + body).hex()
        return Signed(url, {"Stripe-Signature": f"t={stamp},v1={digest}"})
    if scheme == "slack":
        digest = _mac(key, f"v0:{stamp}:".encode() + body).hex()
        return Signed(
            url, {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(stamp)}
        )
    if scheme == "shopify":
        return Signed(url, {"X-Shopify-Hmac-Sha256": _b64(_mac(key, body))})
    if scheme == "standard_webhooks":
        text = secret.removeprefix("whsec_")
        raw_key = base64.b64decode(text + "=" * (-len(text) % 4))
        digest = _b64(_mac(raw_key, f"{ident}.{stamp}.".encode() + body))
        return Signed(
            url,
            {
                "webhook-id": ident,
                "webhook-timestamp": str(stamp),
                "webhook-signature": f"v1,{digest}",
            },
        )
    if scheme == "twilio":
        return _twilio(key, url, body, content_type)
    if scheme == "hmac":
        return Signed(url, _generic(key, body, stamp, ident, options))
    if scheme == "basic":
        pair = f"{_option(options, 'username')}:{secret}".encode()
        return Signed(url, {"Authorization": f"Basic {_b64(pair)}"})
    if scheme == "bearer":
        return Signed(url, {"Authorization": f"Bearer {secret}"})
    if scheme == "header":
        return Signed(url, {_option(options, "name"): secret})
    if scheme == "jwt":
        claims: dict[str, object] = {
            "iat": stamp,
            "exp": stamp + int(options.get("expires_in", "300")),
            "jti": ident,
        }
        for name, claim in (("audience", "aud"), ("issuer", "iss"), ("subject", "sub")):
            if name in options:
                claims[claim] = options[name]
        token = jwt.encode(claims, secret, algorithm=options.get("algorithm", "HS256"))
        return Signed(url, {"Authorization": f"Bearer {token}"})
    raise ValueError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}")


def _option(options: Mapping[str, str], name: str) -> str:
    if name not in options:
        raise ValueError(f"this scheme needs the option {name!r}")
    return options[name]


def _twilio(key: bytes, url: str, body: bytes, content_type: str | None) -> Signed:
    params: list[tuple[str, str]] = []
    if content_type is not None and content_type.split(";")[0].strip().lower() == _FORM:
        params = parse_qsl(body.decode(), keep_blank_values=True)
    elif body or content_type is not None:
        separator = "&" if urlsplit(url).query else "?"
        url = f"{url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"
    text = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(key, text.encode(), hashlib.sha1).digest()
    return Signed(url, {"X-Twilio-Signature": _b64(digest)})


def _generic(
    key: bytes, body: bytes, stamp: int, ident: str, options: Mapping[str, str]
) -> dict[str, str]:
    header = _option(options, "header")
    template = options.get("signed", "{body}").encode()
    content = (
        template.replace(b"{timestamp}", str(stamp).encode())
        .replace(b"{id}", ident.encode())
        .replace(b"{body}", body)
    )
    raw = _mac(key, content, options.get("algorithm", "sha256"))
    encoded = raw.hex() if options.get("encoding", "hex") == "hex" else _b64(raw)
    headers = {header: options.get("prefix", "") + encoded}
    if "timestamp_header" in options:
        headers[options["timestamp_header"]] = str(stamp)
    if "id_header" in options:
        headers[options["id_header"]] = ident
    return headers
