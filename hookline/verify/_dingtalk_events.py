"""DingTalk's event subscription (钉钉事件订阅, HTTP push): WeCom's design, in JSON.

DingTalk encrypts like WeCom (:mod:`._wxcrypt`, the receive id being the app's AppKey,
or the CorpID/SuiteKey of older apps) and signs in the query string: ``signature`` is
the hex SHA-1 of the token, ``timestamp`` (milliseconds), ``nonce`` and the ciphertext,
sorted and joined. The body is ``{"encrypt": "<base64>"}``.

DingTalk wants every push acknowledged with ``success`` encrypted the same way
(``{"msg_signature", "timeStamp", "nonce", "encrypt"}``), or it retries. So the URL
check (``{"EventType": "check_url"}``) is answered by hookline alone, and any other event
gets that acknowledgement as soon as it is admitted, its decrypted JSON being
``$context.data``.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import attrs

from ..definition import Fields
from ..errors import Forbidden
from ._event_json import parse_event
from ._signed import (
    DirectAnswer,
    Opened,
    SignedRequest,
    Verified,
    check_window,
    read_rotating,
)
from ._wecom import aes_keys, check_signature, open_message, query_values, required_param
from ._wxcrypt import encrypt, signature

__all__ = ["DingTalkEvents", "acknowledgement"]

NOT_EVENT = 'the body is not a DingTalk event ({"encrypt": ...})'
ONE_HOUR = 3600.0
_MILLIS = re.compile(r"[0-9]{1,15}", re.ASCII)


def acknowledgement(token: str, key: bytes, receiver: str, now: float) -> DirectAnswer:
    """``success``, encrypted and signed as DingTalk expects its answer."""
    stamp, nonce = str(int(now * 1000)), secrets.token_hex(8)
    encrypted = encrypt(key, b"success", receiver)
    body = {
        "msg_signature": signature(token, stamp, nonce, encrypted),
        "timeStamp": stamp,
        "nonce": nonce,
        "encrypt": encrypted,
    }
    return DirectAnswer(
        body=json.dumps(body).encode(),
        content_type="application/json",
        reason="answered DingTalk's URL check (check_url)",
    )


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Forbidden(NOT_EVENT) from exc
    if not isinstance(found, dict):
        raise Forbidden(NOT_EVENT)
    return found


@attrs.frozen
class DingTalkEvents:
    """``dingtalk_events: {token, aes_key, app_key, tolerance}``, each credential a
    string or a list (rotation). ``tolerance`` bounds the signed timestamp's age,
    default one hour either way."""

    tokens: tuple[str, ...]
    keys: tuple[bytes, ...]
    app_keys: tuple[str, ...]
    tolerance: float = ONE_HOUR
    # The signature travels in the query string, not in a header (redacted there).
    secret_headers: frozenset[str] = frozenset()
    secret_query: frozenset[str] = frozenset({"signature"})

    @classmethod
    def compile(cls, fields: Fields) -> DingTalkEvents:
        return cls(
            tokens=read_rotating(fields, "token", "the callback token"),
            keys=aes_keys(fields, "aes_key"),
            app_keys=read_rotating(fields, "app_key", "the AppKey (or CorpID/SuiteKey)"),
            tolerance=fields.duration("tolerance", ONE_HOUR),
        )

    def check(self, request: SignedRequest, now: float) -> Verified:
        query = query_values(request)
        given = required_param(query, "signature")
        stamp = required_param(query, "timestamp")
        nonce = required_param(query, "nonce")
        encrypted = _json_object(request.body).get("encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Forbidden(NOT_EVENT)
        if _MILLIS.fullmatch(stamp) is None:
            raise Forbidden("the request timestamp is malformed")
        check_signature(self.tokens, stamp, nonce, encrypted, given)
        check_window(int(stamp) // 1000, now, self.tolerance)
        message, key, receiver = open_message(self.keys, self.app_keys, encrypted)
        event = parse_event(message)
        answer = acknowledgement(self.tokens[0], key, receiver, now)
        if event.get("EventType") == "check_url":
            return Verified(answer=answer)
        reply = attrs.evolve(answer, reason="acknowledged DingTalk's event")
        return Verified(opened=Opened(data=event), reply=reply)
