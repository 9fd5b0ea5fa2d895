"""The webhook route: ``ANY /api/webhooks/<path>`` from request to answer."""

from __future__ import annotations

import time
from typing import Any

import attrs
import trio
from quart import Blueprint, Response, current_app, request

from .._ids import new_id
from ..engine._answers import still_running_answer
from ..engine._definition import HTTP_METHODS
from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..errors import PayloadTooLarge, Rejected
from ._body import parse_body
from ._responses import answer_response, rejection_response

webhooks = Blueprint("webhooks", __name__)


def _engine() -> Engine:
    engine: Engine = current_app.config["HOOKLINE_ENGINE"]
    return engine


async def read_body(limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit``: before reading anything when
    Content-Length says so, otherwise as soon as the received bytes pass it."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; this webhook accepts at most {limit}")
    received = bytearray()
    async for chunk in request.body:
        received += chunk
        if len(received) > limit:
            raise PayloadTooLarge(
                f"the body is larger than {limit} bytes, the limit of this webhook"
            )
    return bytes(received)


def _query() -> dict[str, Any]:
    query: dict[str, Any] = {}
    for name in request.args:
        values = request.args.getlist(name)
        query[name] = values[0] if len(values) == 1 else values
    return query


def _headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


PREFIX = "/api/webhooks/"


def _raw_webhook_path() -> str:
    """The path after the prefix, still percent-encoded, so an encoded ``/`` stays
    inside one path parameter."""
    raw = request.scope.get("raw_path") or request.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    return text[len(PREFIX) :] if text.startswith(PREFIX) else text.lstrip("/")


@webhooks.route(
    "/api/webhooks/<path:path>", methods=[*HTTP_METHODS, "OPTIONS"], strict_slashes=False
)
async def webhook(path: str) -> Response:
    engine = _engine()
    delivery = Delivery(
        id=new_id(),
        workflow="",
        received_at=time.time(),
        method=request.method,
        path=request.path,
        headers=_headers(),
        query=_query(),
        remote_addr=request.remote_addr or "",
    )
    try:
        workflow, params = engine.route(_raw_webhook_path(), request.method)
        delivery = attrs.evolve(delivery, workflow=workflow.key, params=params)
        raw = await read_body(workflow.trigger.max_body)
        delivery = attrs.evolve(delivery, body=raw)
        parsed = parse_body(raw, request.headers.get("content-type"))
        delivery = attrs.evolve(delivery, data=parsed.data, text=parsed.text, files=parsed.files)
        admission = await engine.accept(delivery)
    except Rejected as rejection:
        await engine.record_rejection(delivery, rejection)
        return rejection_response(rejection)
    handle = admission.handle
    if handle is None or admission.answer is not None:
        assert admission.answer is not None
        return answer_response(admission.answer)
    answer = still_running_answer(handle.id)
    with trio.move_on_after(workflow.trigger.sync_timeout):
        answer = await handle.wait_answer()
    return answer_response(answer)
