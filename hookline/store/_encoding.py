"""Payload encoding: plain Python values to msgpack blobs and back.

Bodies, headers, contexts, outputs, logs and answers are stored as msgpack. Decoding is
lossy in known ways: tuples come back as lists. Values msgpack cannot represent (a
datetime, a Decimal, an integer wider than 64 bits, a set) are stored as their ``str``
rather than failing the write: a node's odd result must never lose the execution record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

__all__ = ["pack", "unpack"]

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


def _fallback(value: object) -> object:
    return str(value)


def _sanitise(value: object) -> object:
    """``value`` with everything msgpack refuses replaced by its ``str``."""
    if value is None or isinstance(value, bool | float | str | bytes):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, Mapping):
        return {_sanitise_key(k): _sanitise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitise(item) for item in value]
    return str(value)


def _sanitise_key(key: object) -> object:
    if isinstance(key, str | bytes | bool | float) or key is None:
        return key
    if isinstance(key, int):
        return key if _INT_MIN <= key <= _INT_MAX else str(key)
    return str(key)


def pack(obj: object) -> bytes:
    """Encode ``obj`` as msgpack; never raises for odd values (they become strings)."""
    try:
        data: bytes = msgpack.packb(obj, use_bin_type=True, default=_fallback)
    except (OverflowError, TypeError, ValueError):
        # The rare slow path: a huge integer, an unhashable-looking key, a nested
        # structure the fast path rejected. Walk it once and stringify the odd parts.
        data = msgpack.packb(_sanitise(obj), use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Decode a blob made by :func:`pack`. Maps may have non-string keys."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
