"""An example hookline plugin: a node type and a verify scheme.

``shout`` (entry point group ``hookline.nodes``) upper-cases its ``text`` field::

    - key: loud
      type: shout
      text: "{{$context.data.message}}"

``query_token`` (group ``hookline.verifiers``) accepts a request whose URL carries the
shared token as a query parameter, as some senders can only do::

    trigger:
      verify:
        - query_token: {token: env:QUERY_TOKEN, param: token}
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hookline import NodeCall
from hookline.errors import Forbidden, NodeError, Unauthenticated
from hookline.verify import SignedRequest

__all__ = ["query_token", "shout"]


async def shout(call: NodeCall) -> object:
    """The node's output is ``{"text": <its text field, upper-cased>}``."""
    text = call.params.get("text")
    if not isinstance(text, str):
        raise NodeError(f"text: expected a string, got {text!r}")
    call.log(f"shouting {len(text)} characters")
    return {"text": text.upper()}


def query_token(
    options: dict[str, Any],
) -> Callable[[SignedRequest, float], Mapping[str, Any] | None]:
    """Called once when the workflow loads, with the entry's options. Raises
    ValueError for bad options; returns the check run on every request."""
    token = options.pop("token", None)
    param = options.pop("param", "token")
    if not isinstance(token, str) or not token:
        raise ValueError("token: expected a non-empty string")
    if not isinstance(param, str) or not param:
        raise ValueError("param: expected a query parameter name")
    if options:
        raise ValueError(f"unknown options: {', '.join(sorted(options))}")
    expected = token.encode()

    def check(request: SignedRequest, now: float) -> None:
        sent = dict(parse_qsl(urlsplit(request.url).query)).get(param)
        if sent is None:
            raise Unauthenticated(f"the {param} query parameter is missing")
        if not hmac.compare_digest(sent.encode(), expected):
            raise Forbidden(f"the {param} query parameter is wrong")

    return check
