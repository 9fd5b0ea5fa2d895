"""The webhook route: ``ANY /api/webhooks/<path>`` from request to answer.

In order: who called (the socket peer, or behind ``trusted_proxies`` the client they
forwarded for), which workflow (404, 405), the workflow's ``ip_allow`` (403), the body
within ``max_body`` (413) and the body timeout (408), the ``verify`` checks on the raw
bytes (401, 403), the body parsed (400), then the engine's admission. A request refused
before admission never creates an execution.

Every request ends as a recorded delivery: accepted ones are stored by the engine with
their execution; refused ones (404, 405, 403, 401, 408, 413, 400, 409, 422, 429, 503
and the unexpected 500) are recorded here with their verdict, reason and status, their
secret and signature headers redacted.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio
from quart import Blueprint, Quart, Response, current_app, request

from .._ids import new_id
from ..engine._answers import still_running_answer
from ..engine._definition import HTTP_METHODS, Workflow
from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..engine._execution import ExecutionHandle
from ..errors import PayloadTooLarge, Rejected, RequestTimeout, StoreError, Unavailable
from ..store._ops import RecordDelivery
from ..store._records import Answer
from ._body import parse_body
from ._client_ip import IPNetwork, Origin, check_ip_allowed, resolve_origin
from ._responses import answer_response, rejection_response
from ._signed import SignedRequest

log = logging.getLogger("hookline.http")

webhooks = Blueprint("webhooks", __name__)

PREFIX = "/api/webhooks/"
INTERNAL_ERROR = "an unexpected error occurred"
TRUSTED_PROXIES = "HOOKLINE_TRUSTED_PROXIES"
BODY_TIMEOUT = "HOOKLINE_BODY_TIMEOUT"
DEFAULT_BODY_TIMEOUT = 30.0
_FORM = "application/x-www-form-urlencoded"


def configure_ingress(
    app: Quart,
    *,
    trusted_proxies: Sequence[IPNetwork] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> None:
    """Set the webhook route's server-wide settings on ``app``.

    ``trusted_proxies``: the networks whose ``X-Forwarded-For``/``Forwarded`` headers
    are believed (none: the socket peer is the client). ``body_timeout``: seconds a
    sender has to deliver the whole body once its headers arrived (then 408).
    """
    app.config[TRUSTED_PROXIES] = tuple(trusted_proxies)
    app.config[BODY_TIMEOUT] = body_timeout


def _engine() -> Engine:
    engine: Engine = current_app.config["HOOKLINE_ENGINE"]
    return engine


async def read_body(limit: int, timeout: float = DEFAULT_BODY_TIMEOUT) -> bytes:
    """The raw body, refused with 413 past ``limit``: before reading anything when
    Content-Length says so, otherwise as soon as the received bytes pass it. A body
    still incomplete after ``timeout`` seconds is refused with 408."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; this webhook accepts at most {limit}")
    received = bytearray()
    with trio.move_on_after(timeout) as deadline:
        async for chunk in request.body:
            received += chunk
            if len(received) > limit:
                raise PayloadTooLarge(
                    f"the body is larger than {limit} bytes, the limit of this webhook"
                )
    if deadline.cancelled_caught:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds")
    return bytes(received)


def _origin(headers: dict[str, str]) -> Origin:
    """The client and the public scheme and host, through trusted proxies only."""
    scope = request.scope
    client = scope.get("client")
    peer = client[0] if client else ""
    proxies: Sequence[IPNetwork] = current_app.config.get(TRUSTED_PROXIES, ())
    host = headers.get("host") or _server_host(scope)
    return resolve_origin(peer, scope.get("scheme", "http"), host, headers, proxies)


def _server_host(scope: Any) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _target() -> str:
    """The request target as sent: the raw path and the query string."""
    scope = request.scope
    path = (scope.get("raw_path") or request.path.encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _form(body: bytes, content_type: str | None) -> tuple[tuple[str, str], ...] | None:
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != _FORM:
        return None
    text = body.decode("utf-8", "replace")
    return tuple(urllib.parse.parse_qsl(text, keep_blank_values=True))


def _verify(
    workflow: Workflow, delivery: Delivery, origin: Origin, content_type: str | None
) -> Delivery:
    """Run the workflow's ``verify`` checks on the raw body; the claims go to the
    delivery. Raises Unauthenticated (401) or Forbidden (403)."""
    verification = workflow.trigger.verification
    if not verification.checks:
        return delivery
    signed = SignedRequest(
        method=delivery.method,
        url=origin.url(_target()),
        headers=delivery.headers,
        body=delivery.body,
        form=_form(delivery.body, content_type),
        client_ip=origin.client_ip,
    )
    verified = verification.verify(signed, time.time())
    return delivery if verified.claims is None else attrs.evolve(delivery, jwt=verified.claims)


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
    headers = _headers()
    origin = _origin(headers)
    delivery = Delivery(
        id=new_id(),
        workflow="",
        received_at=time.time(),
        method=request.method,
        path=request.path,
        headers=headers,
        query=_query(),
        remote_addr=origin.client_ip,
    )
    admitted = False
    try:
        workflow, params = engine.route(_raw_webhook_path(), request.method)
        trigger = workflow.trigger
        delivery = attrs.evolve(
            delivery,
            workflow=workflow.key,
            params=params,
            secret_headers=trigger.verification.secret_headers,
        )
        check_ip_allowed(origin.client_ip, trigger.ip_allow)
        timeout: float = current_app.config.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
        raw = await read_body(trigger.max_body, timeout)
        content_type = request.headers.get("content-type")
        delivery = _verify(workflow, attrs.evolve(delivery, body=raw), origin, content_type)
        parsed = parse_body(raw, content_type)
        delivery = attrs.evolve(delivery, data=parsed.data, text=parsed.text, files=parsed.files)
        admission = await engine.accept(delivery)
        admitted = True
        handle = admission.handle
        if handle is None or admission.answer is not None:
            assert admission.answer is not None
            return answer_response(admission.answer)
        return answer_response(await wait_answer(handle, trigger.sync_timeout))
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
