"""Sign a webhook the way each provider does: the sending side of ``hookline send``.

:func:`sign` returns the headers a provider would attach to ``body`` sent to ``url``
(and the URL itself, which Twilio extends with ``bodySHA256`` for a JSON body and WeCom
with its signature; and for WeCom and Feishu the encrypted body to send instead). Every
scheme of ``verify`` is covered, so a user can try a hook before the provider calls it.
The algorithms are written out here from ``shared/reference/webhook-signatures.md``
rather than shared with the verifiers, so that each side checks the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs
import jwt
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._ids import new_id

__all__ = ["SCHEMES", "Signed", "sign"]

_FORM = "application/x-www-form-urlencoded"


@attrs.frozen
class Signed:
    """What to send: ``url`` (Twilio and WeCom add to it) and the ``headers`` to add;
    ``body`` and ``content_type`` replace the given ones when the scheme encrypts the
    body (WeCom, Feishu), None otherwise."""

    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    content_type: str | None = None


@attrs.frozen
class _Message:
    """What one scheme signs, with the defaults of :func:`sign` filled in."""

    secret: str
    body: bytes
    url: str
    content_type: str | None
    stamp: int
    ident: str
    options: Mapping[str, str]

    @property
    def key(self) -> bytes:
        return self.secret.encode()

    def signed(self, headers: Mapping[str, str]) -> Signed:
        return Signed(self.url, headers)


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
    ``audience``, ``issuer``, ``subject`` and ``expires_in`` (seconds, default 300);
    ``twilio`` uses ``algorithm`` (``HMAC_SHA256`` for a SharedKey ``secret``) and
    ``key`` (its id); ``wecom`` uses ``encoding_aes_key`` and ``corp_id`` (required;
    ``secret`` is the Token) and ``agent_id``; ``feishu`` takes the Encrypt Key as
    ``secret`` and sends ``body`` (an event, with its token) encrypted and signed;
    ``dingtalk_events`` takes the token as ``secret`` and ``aes_key`` and ``app_key``.

    Raises :class:`ValueError` for an unknown scheme or a missing option.
    """
    signer = _SIGNERS.get(scheme)
    if signer is None:
        raise ValueError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}")
    message = _Message(
        secret=secret,
        body=body,
        url=url,
        content_type=content_type,
        stamp=int(time.time()) if timestamp is None else timestamp,
        ident=message_id or f"msg_{new_id()}",
        options=options or {},
    )
    return signer(message)


def _github(m: _Message) -> Signed:
    return m.signed({"X-Hub-Signature-256": "sha256=" + _mac(m.key, m.body).hex()})


def _gitlab(m: _Message) -> Signed:
    return m.signed({"X-Gitlab-Token": m.secret})


def _stripe(m: _Message) -> Signed:
    digest = _mac(m.key, f"{m.stamp}.".encode() + m.body).hex()
    return m.signed({"Stripe-Signature": f"t={m.stamp},v1={digest}"})


def _slack(m: _Message) -> Signed:
    digest = _mac(m.key, f"v0:{m.stamp}:".encode() + m.body).hex()
    return m.signed(
        {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(m.stamp)}
    )


def _standard_webhooks(m: _Message) -> Signed:
    text = m.secret.removeprefix("whsec_")
    raw_key = base64.b64decode(text + "=" * (-len(text) % 4))
    digest = _b64(_mac(raw_key, f"{m.ident}.{m.stamp}.".encode() + m.body))
    return m.signed(
        {
            "webhook-id": m.ident,
            "webhook-timestamp": str(m.stamp),
            "webhook-signature": f"v1,{digest}",
        }
    )


def _shopify(m: _Message) -> Signed:
    return m.signed({"X-Shopify-Hmac-Sha256": _b64(_mac(m.key, m.body))})


def _twilio(m: _Message) -> Signed:
    url = m.url
    params: list[tuple[str, str]] = []
    if m.content_type is not None and m.content_type.split(";")[0].strip().lower() == _FORM:
        params = parse_qsl(m.body.decode(), keep_blank_values=True)
    elif m.body or m.content_type is not None:
        separator = "&" if urlsplit(url).query else "?"
        url = f"{url}{separator}bodySHA256={hashlib.sha256(m.body).hexdigest()}"
    text = url + "".join(name + value for name, value in sorted(set(params)))
    algorithm = m.options.get("algorithm", "HMAC_SHA1").upper()
    if algorithm not in ("HMAC_SHA1", "HMAC_SHA256"):
        raise ValueError("twilio's algorithm is HMAC_SHA1 or HMAC_SHA256")
    digest = hmac.new(m.key, text.encode(), algorithm.removeprefix("HMAC_").lower()).digest()
    headers = {"X-Twilio-Signature": _b64(digest)}
    if algorithm == "HMAC_SHA256":
        key_id = m.options.get("key", "webhooks_sharedkey")
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={key_id},algorithm={algorithm}"
    return Signed(url, headers)


def _dingtalk(m: _Message) -> Signed:
    millis = str(m.stamp * 1000)
    digest = _mac(m.key, f"{millis}\n{m.secret}".encode())
    return m.signed({"timestamp": millis, "sign": _b64(digest)})


def _aes_cbc(key: bytes, iv: bytes, plain: bytes, block_bits: int) -> bytes:
    padder = padding.PKCS7(block_bits).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _wecom(m: _Message) -> Signed:
    corp_id = _option(m.options, "corp_id")
    key = base64.b64decode(_option(m.options, "encoding_aes_key") + "=")
    plain = secrets.token_bytes(16) + len(m.body).to_bytes(4, "big") + m.body + corp_id.encode()
    # WeCom pads to its 32-byte key length, not AES's 16-byte block.
    encrypted = _b64(_aes_cbc(key, key[:16], plain, 256))
    nonce = str(secrets.randbelow(10**10))
    stamp = str(m.stamp)
    joined = "".join(sorted((m.secret, stamp, nonce, encrypted))).encode()
    signature = hashlib.sha1(joined)  # noqa: S324 (WeCom's algorithm)
    query = {"msg_signature": signature.hexdigest(), "timestamp": stamp, "nonce": nonce}
    separator = "&" if urlsplit(m.url).query else "?"
    agent = m.options.get("agent_id", "")
    envelope = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<AgentID><![CDATA[{agent}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return Signed(
        f"{m.url}{separator}{urlencode(query)}", {}, envelope.encode(), "text/xml; charset=utf-8"
    )


def _dingtalk_events(m: _Message) -> Signed:
    app_key = _option(m.options, "app_key")
    key = base64.b64decode(_option(m.options, "aes_key") + "=")
    plain = secrets.token_bytes(16) + len(m.body).to_bytes(4, "big") + m.body + app_key.encode()
    encrypted = _b64(_aes_cbc(key, key[:16], plain, 256))
    nonce, stamp = secrets.token_hex(4), str(m.stamp * 1000)
    joined = "".join(sorted((m.secret, stamp, nonce, encrypted))).encode()
    digest = hashlib.sha1(joined).hexdigest()  # noqa: S324 (DingTalk's algorithm)
    query = urlencode({"signature": digest, "timestamp": stamp, "nonce": nonce})
    separator = "&" if urlsplit(m.url).query else "?"
    body = json.dumps({"encrypt": encrypted}).encode()
    return Signed(f"{m.url}{separator}{query}", {}, body, "application/json")


def _feishu(m: _Message) -> Signed:
    iv = secrets.token_bytes(16)
    key = hashlib.sha256(m.key).digest()
    encrypted = _b64(iv + _aes_cbc(key, iv, m.body, 128))
    body = json.dumps({"encrypt": encrypted}).encode()
    stamp, nonce = str(m.stamp), secrets.token_hex(8)
    signature = hashlib.sha256(f"{stamp}{nonce}{m.secret}".encode() + body).hexdigest()
    headers = {
        "X-Lark-Request-Timestamp": stamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature,
    }
    return Signed(m.url, headers, body, "application/json")


def _generic_hmac(m: _Message) -> Signed:
    options = m.options
    header = _option(options, "header")
    template = options.get("signed", "{body}").encode()
    content = (
        template.replace(b"{timestamp}", str(m.stamp).encode())
        .replace(b"{id}", m.ident.encode())
        .replace(b"{body}", m.body)
    )
    raw = _mac(m.key, content, options.get("algorithm", "sha256"))
    encoded = raw.hex() if options.get("encoding", "hex") == "hex" else _b64(raw)
    headers = {header: options.get("prefix", "") + encoded}
    if "timestamp_header" in options:
        headers[options["timestamp_header"]] = str(m.stamp)
    if "id_header" in options:
        headers[options["id_header"]] = m.ident
    return m.signed(headers)


def _basic(m: _Message) -> Signed:
    pair = f"{_option(m.options, 'username')}:{m.secret}".encode()
    return m.signed({"Authorization": f"Basic {_b64(pair)}"})


def _bearer(m: _Message) -> Signed:
    return m.signed({"Authorization": f"Bearer {m.secret}"})


def _header(m: _Message) -> Signed:
    return m.signed({_option(m.options, "name"): m.secret})


def _jwt(m: _Message) -> Signed:
    claims: dict[str, object] = {
        "iat": m.stamp,
        "exp": m.stamp + int(m.options.get("expires_in", "300")),
        "jti": m.ident,
    }
    for name, claim in (("audience", "aud"), ("issuer", "iss"), ("subject", "sub")):
        if name in m.options:
            claims[claim] = m.options[name]
    token = jwt.encode(claims, m.secret, algorithm=m.options.get("algorithm", "HS256"))
    return m.signed({"Authorization": f"Bearer {token}"})


_SIGNERS: Mapping[str, Callable[[_Message], Signed]] = {
    "github": _github,
    "gitlab": _gitlab,
    "stripe": _stripe,
    "slack": _slack,
    "standard_webhooks": _standard_webhooks,
    "shopify": _shopify,
    "twilio": _twilio,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "feishu": _feishu,
    "dingtalk_events": _dingtalk_events,
    "hmac": _generic_hmac,
    "basic": _basic,
    "bearer": _bearer,
    "header": _header,
    "jwt": _jwt,
}
SCHEMES: tuple[str, ...] = tuple(_SIGNERS)
"""The schemes :func:`sign` knows, in the order ``verify`` lists them."""


def _option(options: Mapping[str, str], name: str) -> str:
    if name not in options:
        raise ValueError(f"this scheme needs the option {name!r}")
    return options[name]
