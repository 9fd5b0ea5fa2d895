"""Payload encoding: plain Python values to msgpack blobs and back.

Bodies, headers, contexts, outputs, logs and answers are stored as msgpack. Decoding is
lossy in known ways: tuples come back as lists. Values msgpack cannot represent (a
datetime, a Decimal, an integer wider than 64 bits, a set) are stored as their ``str``
rather than failing the write: a node's odd result must never lose the execution record.

One kind of value cannot be stored at all: a string holding a lone surrogate
(``"\\ud800"``, which Python's JSON reader makes of an escape), since it has no UTF-8
form. :func:`pack` refuses it with a StoreError that says where it is, so the op that
carries it fails alone (the backends retry a failed batch op by op), and
:func:`unstorable` lets the engine check a node's result before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgpack

from ..errors import StoreError

__all__ = ["pack", "unpack", "unstorable"]

_SURROGATE = re.compile("[\ud800-\udfff]")

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


def _surrogate_at(value: object, path: str) -> str | None:
    """Where in ``value`` the first string with a lone surrogate is (``path`` names
    ``value``), or None."""
    if isinstance(value, str):
        return (
            (f"the string at {path}" if path else "a string") if _SURROGATE.search(value) else None
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _SURROGATE.search(key):
                return f"a key of {path}" if path else "a key"
            found = _surrogate_at(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _describe(obj: object) -> str:
    where = _surrogate_at(obj, "") or "a string"
    return f"{where} holds a lone surrogate (U+D800 to U+DFFF), which has no UTF-8 form"


def unstorable(obj: object) -> str | None:
    """None when :func:`pack` can store ``obj``; otherwise why not (a string with a
    lone surrogate, and where it is). As cheap as encoding ``obj`` once."""
    try:
        pack(obj)
    except StoreError:
        return _describe(obj)
    return None


def pack(obj: object) -> bytes:
    """Encode ``obj`` as msgpack; never raises for odd values (they become strings),
    but raises StoreError for a string with a lone surrogate (no UTF-8 form)."""
    try:
        data: bytes = msgpack.packb(obj, use_bin_type=True, default=_fallback)
    except UnicodeEncodeError:
        raise StoreError(f"cannot store the value: {_describe(obj)}") from None
    except (OverflowError, TypeError, ValueError):
        # The rare slow path: a huge integer, an unhashable-looking key, a nested
        # structure the fast path rejected. Walk it once and stringify the odd parts.
        try:
            data = msgpack.packb(_sanitise(obj), use_bin_type=True)
        except UnicodeEncodeError:
            raise StoreError(f"cannot store the value: {_describe(obj)}") from None
    return data


def unpack(data: bytes) -> Any:
    """Decode a blob made by :func:`pack`. Maps may have non-string keys."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
