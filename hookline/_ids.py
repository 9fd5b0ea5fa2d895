"""Identifiers that sort by creation time: ULID-like, 26 Crockford base32 characters.

An id is a 48-bit millisecond timestamp followed by 80 random bits. Within one process
ids are strictly increasing: a second id in the same millisecond (or after the wall clock
stepped back) is the previous one plus one, so sorting ids sorts by creation order. That
is what lets an id double as a pagination cursor.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["id_time", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_BYTES = _RANDOM_BITS // 8
_LENGTH = 26
# Encoded ten bits at a time: 13 lookups of a character pair instead of 26 shifts.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
_SHIFTS = tuple(range(_LENGTH * 5 - 10, -1, -10))
# Random bytes are read from the OS in batches: one system call per 256 ids.
_REFILL = _RANDOM_BYTES * 256

_lock = threading.Lock()
_last = 0
_random = b""
_offset = 0


def _encode(value: int) -> str:
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id() -> str:
    """A new id, greater than every id this process made before.

    Safe to call from any thread.
    """
    global _last, _random, _offset
    millis = time.time_ns() // 1_000_000
    with _lock:
        if _offset == len(_random):
            _random, _offset = os.urandom(_REFILL), 0
        start, _offset = _offset, _offset + _RANDOM_BYTES
        candidate = (millis << _RANDOM_BITS) | int.from_bytes(_random[start:_offset], "big")
        # Same millisecond or a clock step back: keep the order by counting up from the
        # last id; a carry out of the random part moves on to the next millisecond.
        if candidate <= _last:
            candidate = _last + 1
        _last = candidate
    return _encode(candidate)


def id_time(id: str) -> float:
    """The creation time (seconds since the epoch, millisecond precision) inside ``id``.

    Raises ValueError if ``id`` is not 26 Crockford base32 characters.
    """
    if len(id) != _LENGTH:
        raise ValueError(f"expected a 26-character id, got {id!r}")
    value = 0
    for char in id.upper():
        digit = _ALPHABET.find(char)
        if digit < 0:
            raise ValueError(f"expected a Crockford base32 id, got {id!r}")
        value = (value << 5) | digit
    return (value >> _RANDOM_BITS) / 1000
