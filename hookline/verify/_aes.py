"""AES-256-CBC with PKCS#7 padding, as the Chinese chat platforms encrypt callbacks.

WeCom and DingTalk pad to a 32-byte block (their key length), Feishu to AES's own
16 bytes; both are PKCS#7 otherwise. Padding is checked whole, so a tampered last
block is refused rather than yielding a shortened message.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["cbc_decrypt", "cbc_encrypt", "pad", "unpad"]

AES_BLOCK = 16


def pad(data: bytes, block: int) -> bytes:
    """``data`` PKCS#7-padded to a multiple of ``block`` (1 to ``block`` bytes added)."""
    count = block - len(data) % block
    return data + bytes([count]) * count


def unpad(data: bytes, block: int) -> bytes:
    """``data`` without its PKCS#7 padding. Raises :class:`ValueError` when the padding
    is not valid."""
    count = data[-1] if data else 0
    if not 1 <= count <= min(block, len(data)) or data[-count:] != bytes([count]) * count:
        raise ValueError("the padding is not valid")
    return data[:-count]


def cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """AES-CBC of ``plain`` (already padded to 16-byte blocks)."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def cbc_decrypt(key: bytes, iv: bytes, cipher: bytes) -> bytes:
    """AES-CBC decryption of ``cipher``. Raises :class:`ValueError` when it is empty or
    not whole 16-byte blocks."""
    if not cipher or len(cipher) % AES_BLOCK:
        raise ValueError("the ciphertext is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(cipher) + decryptor.finalize()
