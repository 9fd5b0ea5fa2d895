"""Durations and sizes as written in definitions and config: ``250ms``, ``5s``, ``1MiB``.

Parsing is strict: a definition that says ``timeout: soon`` or ``max_body: 1 gallon``
is refused at load time with a message, never guessed at. The parsers raise
:class:`ValueError`; the loaders wrap it into a :class:`hookline.errors.DefinitionError`
or :class:`hookline.errors.ConfigError` that names the file and field.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
# One or more number+unit parts, so that "1h30m" reads as it does in Go and systemd.
_DURATION_PART = re.compile(rf"{_NUMBER}\s*([a-z]+)", re.ASCII)
_DURATION = re.compile(rf"(?:{_NUMBER}\s*[a-z]+\s*)+", re.ASCII)
_SIZE = re.compile(rf"{_NUMBER}\s*([a-z]*)", re.ASCII)
_BARE_NUMBER = re.compile(rf"[-+]?{_NUMBER}", re.ASCII)

_DURATION_HINT = "use a number and a unit (ms, s, m, h, d), such as '250ms', '5s' or '10m'"
_SIZE_HINT = "use a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), such as '512KiB' or '1MiB'"


def parse_duration(value: object) -> float:
    """Return the number of seconds a duration stands for.

    Accepts ``"250ms"``, ``"5s"``, ``"1.5s"``, ``"10m"``, ``"2h"``, ``"3d"``, combinations
    such as ``"1h30m"``, and a plain non-negative ``int`` or ``float`` (seconds).

    Raises :class:`ValueError` for negatives, booleans, empty strings, strings without a
    unit, unknown units, infinities, NaN and any other type.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration cannot be a boolean ({value!r}); {_DURATION_HINT}")
    if isinstance(value, int | float):
        return float(_check_number(value, "duration"))
    if not isinstance(value, str):
        raise ValueError(f"a duration must be a string or a number, not {type(value).__name__}")
    text = value.strip().lower()
    if not text:
        raise ValueError(f"a duration cannot be empty; {_DURATION_HINT}")
    if text.startswith("-"):
        raise ValueError(f"a duration cannot be negative: {value!r}")
    if _BARE_NUMBER.fullmatch(text):
        raise ValueError(f"the duration {value!r} has no unit; {_DURATION_HINT}")
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    seconds = 0.0
    for number, unit in _DURATION_PART.findall(text):
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise ValueError(f"unknown duration unit {unit!r} in {value!r}; {_DURATION_HINT}")
        seconds += float(number) * scale
    return seconds


def parse_size(value: object) -> int:
    """Return the number of bytes a size stands for.

    Accepts ``"100B"``, ``"10KB"`` (10,000), ``"1MB"``, ``"512KiB"`` (524,288), ``"1MiB"``,
    ``"2GiB"`` (units are case-insensitive; ``i`` means powers of 1024), fractions such
    as ``"1.5MiB"`` (rounded to a whole byte), and a plain non-negative ``int`` (bytes).

    Raises :class:`ValueError` for negatives, booleans, floats, empty strings, strings
    without a unit, unknown units and any other type.
    """
    if isinstance(value, bool):
        raise ValueError(f"a size cannot be a boolean ({value!r}); {_SIZE_HINT}")
    if isinstance(value, int):
        return int(_check_number(value, "size"))
    if not isinstance(value, str):
        raise ValueError(f"a size must be a string or a whole number of bytes, not {value!r}")
    text = value.strip().lower()
    if not text:
        raise ValueError(f"a size cannot be empty; {_SIZE_HINT}")
    if text.startswith("-"):
        raise ValueError(f"a size cannot be negative: {value!r}")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a size; {_SIZE_HINT}")
    number, unit = match.groups()
    if not unit:
        raise ValueError(f"the size {value!r} has no unit; {_SIZE_HINT}")
    scale = _SIZE_UNITS.get(unit)
    if scale is None:
        raise ValueError(f"unknown size unit {unit!r} in {value!r}; {_SIZE_HINT}")
    if "." in number:
        return round(float(number) * scale)
    return int(number) * scale


def format_duration(seconds: float) -> str:
    """Write a number of seconds the way a definition would: ``"5s"``, ``"250ms"``, ``"2h"``.

    Meant for messages; exact to the millisecond, and :func:`parse_duration` reads it back.
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if not math.isfinite(seconds):
        return f"{seconds}s"
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s" if seconds == 0 else f"{seconds * 1000:.3g}ms"
    for unit, scale in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % scale == 0:
            return f"{millis // scale}{unit}"
    if millis < 1000:
        return f"{millis}ms"
    return f"{millis / 1000:.3f}".rstrip("0") + "s"


def format_size(size: int) -> str:
    """Write a number of bytes for messages: ``"1MiB"``, ``"512KiB"``, ``"10KB"``, ``"100B"``."""
    if size > 0:
        for unit in ("TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"):
            scale = _SIZE_UNITS[unit.lower()]
            if size % scale == 0:
                return f"{size // scale}{unit}"
    return f"{size}B"


def _check_number(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"a {what} must be finite, got {value!r}")
    if value < 0:
        raise ValueError(f"a {what} cannot be negative: {value!r}")
    return value
