"""DingTalk's outgoing robot (钉钉机器人回调): ``timestamp`` and ``sign`` headers.

``timestamp`` is in milliseconds; ``sign`` is base64 of HMAC-SHA256 keyed with the
robot's AppSecret over ``timestamp + "\\n" + AppSecret``. The body is not signed,
so the timestamp is what bounds a replay: DingTalk refuses one more than an hour off
either way, and so does this check by default.
"""

from __future__ import annotations

import re

import attrs

from ..definition import Fields
from ..errors import Forbidden
from ._signed import (
    MALFORMED,
    MISMATCH,
    SignedRequest,
    check_window,
    decode_base64,
    hmac_digests,
    matches_any,
    read_keys,
    require_header,
)

__all__ = ["DingTalk"]

ONE_HOUR = 3600.0
_MILLIS = re.compile(r"[0-9]{1,15}", re.ASCII)


@attrs.frozen
class DingTalk:
    """``dingtalk: {secret | secrets, tolerance}``: the robot's AppSecret."""

    keys: tuple[bytes, ...]
    tolerance: float = ONE_HOUR
    secret_headers: frozenset[str] = frozenset({"sign"})

    @classmethod
    def compile(cls, fields: Fields) -> DingTalk:
        keys = read_keys(fields, what="the robot's AppSecret")
        return cls(keys=keys, tolerance=fields.duration("tolerance", ONE_HOUR))

    def check(self, request: SignedRequest, now: float) -> None:
        stamp = require_header(request, "timestamp")
        given = decode_base64(require_header(request, "sign"))
        if given is None:
            raise Forbidden(MALFORMED)
        if _MILLIS.fullmatch(stamp) is None:
            raise Forbidden("the request timestamp is malformed")
        expected = [
            digest
            for key in self.keys
            for digest in hmac_digests([key], stamp.encode() + b"\n" + key)
        ]
        if not matches_any(expected, [given]):
            raise Forbidden(MISMATCH)
        check_window(int(stamp) // 1000, now, self.tolerance)
