"""The message encryption WeCom (and DingTalk's event subscription) share.

Tencent's "WXBizMsgCrypt" design: the 43-character ``EncodingAESKey`` is base64 of a
32-byte AES key (the trailing ``=`` left off); a message is AES-256-CBC encrypted with
the key's first 16 bytes as IV, over ``random(16) + length(4, network order) + message
+ receive id``, PKCS#7-padded to 32-byte blocks, and sent in base64. The signature is
the hex SHA-1 of the token, timestamp, nonce and ciphertext sorted as strings and
joined. The receive id is the corp id (WeCom) or app key (DingTalk): decrypting checks
it, so a message for another tenant is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import struct

from ._aes import cbc_decrypt, cbc_encrypt, pad, unpad

__all__ = ["BLOCK", "decrypt", "encrypt", "message_key", "signature"]

BLOCK = 32
_RANDOM = 16
_LENGTH = struct.Struct(">I")


def message_key(encoding_aes_key: str) -> bytes:
    """The AES key of an ``EncodingAESKey``. Raises :class:`ValueError` unless it is 43
    base64 characters encoding 32 bytes."""
    text = encoding_aes_key.strip()
    if len(text) != 43:
        raise ValueError("an EncodingAESKey has 43 characters")
    try:
        key = base64.b64decode(text + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("an EncodingAESKey is base64") from exc
    return key


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """The hex SHA-1 of the four values sorted and joined (``msg_signature``)."""
    joined = "".join(sorted((token, timestamp, nonce, encrypted))).encode()
    # SHA-1 is WeCom's choice, not ours; the signed values are public anyway.
    return hashlib.sha1(joined).hexdigest()  # noqa: S324


def encrypt(key: bytes, message: bytes, receive_id: str, *, random: bytes | None = None) -> str:
    """``message`` for ``receive_id`` encrypted under ``key``, in base64."""
    head = random if random is not None else secrets.token_bytes(_RANDOM)
    plain = head + _LENGTH.pack(len(message)) + message + receive_id.encode()
    return base64.b64encode(cbc_encrypt(key, key[:16], pad(plain, BLOCK))).decode()


def decrypt(key: bytes, encrypted: str) -> tuple[bytes, str]:
    """The message and receive id inside ``encrypted`` (base64). Raises
    :class:`ValueError` when it is not base64, not whole blocks, badly padded, or its
    length field points outside it."""
    try:
        cipher = base64.b64decode(encrypted.strip(), validate=True)
    except binascii.Error as exc:
        raise ValueError("the ciphertext is not base64") from exc
    plain = unpad(cbc_decrypt(key, key[:16], cipher), BLOCK)
    if len(plain) < _RANDOM + _LENGTH.size:
        raise ValueError("the message is too short")
    (length,) = _LENGTH.unpack_from(plain, _RANDOM)
    start = _RANDOM + _LENGTH.size
    if start + length > len(plain):
        raise ValueError("the message length is out of range")
    receive_id = plain[start + length :].decode("utf-8", "replace")
    return plain[start : start + length], receive_id
