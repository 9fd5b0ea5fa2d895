"""The webhook route: ``ANY /api/webhooks/<path>`` from request to answer.

Every request ends as a recorded delivery: accepted ones are stored by the engine with
their execution; refused ones (404, 405, 413, 400, 409, 422, 429, 503 and the
unexpected 500) are recorded here with their verdict, reason and status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from quart import Blueprint, Response, current_app, request

from .._ids import new_id
from ..engine._answers import still_running_answer
from ..engine._definition import HTTP_METHODS
from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..engine._execution import ExecutionHandle
from ..errors import PayloadTooLarge, Rejected, StoreError, Unavailable
from ..store._ops import RecordDelivery
from ..store._records import Answer
from ._body import parse_body
from ._responses import answer_response, rejection_response

log = logging.getLogger("hookline.http")

webhooks = Blueprint("webhooks", __name__)

PREFIX = "/api/webhooks/"
INTERNAL_ERROR = "an unexpected error occurred"


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
    """The sender's headers, names lower-cased, repeated ones joined with ``, ``.

    Read from the ASGI scope rather than ``request.headers``, which carries a
    ``Remote-Addr`` entry Quart adds itself: the sender did not send it.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _raw_webhook_path() -> str:
    """The path after the prefix, still percent-encoded, so an encoded ``/`` stays
    inside one path parameter."""
    raw = request.scope.get("raw_path") or request.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    return text[len(PREFIX) :] if text.startswith(PREFIX) else text.lstrip("/")


async def _cancel_when(wait: Callable[[], Awaitable[object]], scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()


async def wait_answer(handle: ExecutionHandle, timeout: float) -> Answer:
    """The answer of a sync execution: what it answered (a ``response`` node, or its
    end), or 202 + Location when none came within ``timeout`` or it stopped without
    answering (engine shutdown: its record stays resumable and it goes on later)."""
    if handle.answer is None:
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when, handle.wait_answer, nursery.cancel_scope)
                nursery.start_soon(_cancel_when, handle.wait_finished, nursery.cancel_scope)
    return handle.answer if handle.answer is not None else still_running_answer(handle.id)


async def _refuse(engine: Engine, delivery: Delivery, rejection: Rejected) -> Response:
    try:
        await engine.record_rejection(delivery, rejection)
    except StoreError:
        # The answer still goes out: the sender must learn why, recorded or not.
        log.exception("could not record rejected delivery %s", delivery.id)
    return rejection_response(rejection)


async def _record_failure(engine: Engine, delivery: Delivery) -> None:
    record = delivery.record("rejected", reason=INTERNAL_ERROR, status=500)
    try:
        await engine.store.post(RecordDelivery(record))
    except StoreError:
        log.exception("could not record failed delivery %s", delivery.id)


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
    admitted = False
    try:
        workflow, params = engine.route(_raw_webhook_path(), request.method)
        delivery = attrs.evolve(delivery, workflow=workflow.key, params=params)
        raw = await read_body(workflow.trigger.max_body)
        delivery = attrs.evolve(delivery, body=raw)
        parsed = parse_body(raw, request.headers.get("content-type"))
        delivery = attrs.evolve(delivery, data=parsed.data, text=parsed.text, files=parsed.files)
        admission = await engine.accept(delivery)
        admitted = True
        handle = admission.handle
        if handle is None or admission.answer is not None:
            assert admission.answer is not None
            return answer_response(admission.answer)
        return answer_response(await wait_answer(handle, workflow.trigger.sync_timeout))
    except Rejected as rejection:
        return await _refuse(engine, delivery, rejection)
    except StoreError:
        if admitted:
            raise
        log.exception("the store failed while admitting delivery %s", delivery.id)
        unavailable = Unavailable("deliveries cannot be recorded right now", retry_after=5.0)
        return await _refuse(engine, delivery, unavailable)
    except Exception:
        if admitted:
            raise
        # Answered by the app's 500 handler; recorded here so the delivery log has
        # every request, this one too.
        await _record_failure(engine, delivery)
        raise
