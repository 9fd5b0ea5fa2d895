"""A decrypted event's JSON, read as strictly as a webhook's JSON body.

Feishu and DingTalk encrypt JSON events; once decrypted, the event becomes
``$context.data`` without passing the ingress's body parser, so it is held to the same
rules here: UTF-8 text, no NaN or Infinity (``1e400`` included), no lone surrogate, a
bounded nesting depth, and an object at the top.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import MalformedBody

__all__ = ["parse_event"]


def parse_event(raw: bytes, *, what: str = "the decrypted event") -> dict[str, Any]:
    """``raw`` as a JSON object. Raises :class:`~hookline.errors.MalformedBody` (400)
    for anything else; the detail never echoes the text."""
    try:
        found = json.loads(raw.decode(), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"{what} is not UTF-8 text") from exc
    except RecursionError as exc:
        raise MalformedBody(f"{what} is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, or an integer past Python's digit limit
        raise MalformedBody(f"{what} is not valid JSON") from exc
    if not isinstance(found, dict):
        raise MalformedBody(f"{what} is not a JSON object")
    try:
        json.dumps(found, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise MalformedBody(f"{what} holds a lone surrogate, which is not text") from exc
    except RecursionError as exc:
        raise MalformedBody(f"{what} is nested too deeply") from exc
    return found


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is out of range")
    return value
