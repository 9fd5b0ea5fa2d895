"""The webhook route's hot path: an ASGI middleware in front of the Quart app.

``/api/webhooks/<path>`` requests are answered straight from the ASGI scope and
``receive``, with two ``send`` calls: no Quart request, response, app or request
context is made for them (those cost more than the rest of an async ingest; see
benchmarks/README.md). Everything else, and webhook requests with a method the route
does not take, goes on to the Quart app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from quart import Quart

from ..store._records import Answer
from ._ingress import METHODS, PREFIX, SenderGone, handle_webhook

__all__ = ["WebhookIngress"]

_METHODS = frozenset(METHODS)
# What Quart gives an answer that names no content type: a sender sees the same.
_DEFAULT_CONTENT_TYPE = b"text/html; charset=utf-8"


class WebhookIngress:
    """ASGI middleware serving ``/api/webhooks/*`` without Quart's request handling.

    Wrap the app's ``asgi_app``: ``app.asgi_app = WebhookIngress(app, app.asgi_app)``.
    It answers as the Quart route would, answer for answer (status, headers, body,
    ``content-length``); a sender that disconnects before its body arrived gets
    nothing (there is nobody to answer). Other requests go to ``inner`` unchanged.
    """

    def __init__(self, app: Quart, inner: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(PREFIX)
            or len(path) == len(PREFIX)
            or scope["method"] not in _METHODS
        ):
            await self.inner(scope, receive, send)
            return

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise SenderGone
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            answer = await handle_webhook(self.app, scope, chunks())
        except SenderGone:
            return
        await send_answer(send, answer)


async def send_answer(send: Callable[[Any], Awaitable[None]], answer: Answer) -> None:
    """Send ``answer`` as the whole ASGI response: its start, then its body."""
    headers = [(name.lower().encode(), value.encode()) for name, value in answer.headers]
    if not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", _DEFAULT_CONTENT_TYPE))
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
