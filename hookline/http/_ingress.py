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

The route is served by :class:`WebhookIngress`, an ASGI middleware in front of the
Quart app: it reads the ASGI scope and ``receive`` directly and answers with two
``send`` calls, so a webhook pays for no Quart request, response or context objects
(they cost more than the rest of an async ingest). Requests it does not take (other
paths, methods no workflow may declare) go to the Quart app, whose blueprint route
answers them with the same :func:`handle_webhook`.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

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
from ._problem import problem_body, problem_headers, rejection_problem
from ._responses import answer_response
from ._signed import SignedRequest

log = logging.getLogger("hookline.http")

webhooks = Blueprint("webhooks", __name__)

PREFIX = "/api/webhooks/"
INTERNAL_ERROR = "an unexpected error occurred"
TRUSTED_PROXIES = "HOOKLINE_TRUSTED_PROXIES"
BODY_TIMEOUT = "HOOKLINE_BODY_TIMEOUT"
DEFAULT_BODY_TIMEOUT = 30.0
# Bodies above this are cut off whatever a workflow allows.
HARD_BODY_LIMIT = 64 * 1024 * 1024
_FORM = "application/x-www-form-urlencoded"
# The methods the fast path serves: those a workflow may declare, and OPTIONS.
_FAST_METHODS = frozenset({*HTTP_METHODS, "OPTIONS"})
# What Quart gives an answer that names no content type.
_DEFAULT_CONTENT_TYPE = b"text/html; charset=utf-8"

Scope = Mapping[str, Any]
Chunks = Callable[[], AsyncIterator[bytes]]


class _Disconnected(Exception):
    """The sender went away before its body arrived: nobody is left to answer."""


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


async def read_body(
    chunks: AsyncIterator[bytes],
    length: int | None,
    limit: int,
    timeout: float = DEFAULT_BODY_TIMEOUT,
) -> bytes:
    """The raw body, refused with 413 past ``limit``: before reading anything when the
    declared ``length`` says so, otherwise as soon as the received bytes pass it. A
    body still incomplete after ``timeout`` seconds is refused with 408."""
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; this webhook accepts at most {limit}")
    received = bytearray()
    with trio.move_on_after(timeout) as deadline:
        async for chunk in chunks:
            received += chunk
            if len(received) > limit:
                raise PayloadTooLarge(
                    f"the body is larger than {limit} bytes, the limit of this webhook"
                )
    if deadline.cancelled_caught:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds")
    return bytes(received)


def _headers(scope: Scope) -> dict[str, str]:
    """The sender's headers, names lower-cased, repeated ones joined with ``, ``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _first_header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name.lower() == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def _content_length(scope: Scope) -> int | None:
    value = _first_header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _query(scope: Scope) -> dict[str, Any]:
    text = scope.get("query_string", b"").decode("latin-1")
    query: dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        earlier = query.get(name)
        if earlier is None:
            query[name] = value
        elif isinstance(earlier, list):
            earlier.append(value)
        else:
            query[name] = [earlier, value]
    return query


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    text: str = raw.decode("latin-1").split("?", 1)[0]
    return text


def _target(scope: Scope) -> str:
    """The request target as sent: the raw path and the query string."""
    path = _raw_path(scope)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _origin(scope: Scope, headers: dict[str, str], proxies: Sequence[IPNetwork]) -> Origin:
    """The client and the public scheme and host, through trusted proxies only."""
    client = scope.get("client")
    peer = client[0] if client else ""
    host = headers.get("host") or _server_host(scope)
    return resolve_origin(peer, scope.get("scheme", "http"), host, headers, proxies)


def _form(body: bytes, content_type: str | None) -> tuple[tuple[str, str], ...] | None:
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != _FORM:
        return None
    text = body.decode("utf-8", "replace")
    return tuple(urllib.parse.parse_qsl(text, keep_blank_values=True))


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


def _rejection_answer(rejection: Rejected) -> Answer:
    status, headers, body = rejection_problem(rejection)
    return Answer(status, tuple(headers), body)


def _internal_error() -> Answer:
    body = problem_body(500, "Internal server error", INTERNAL_ERROR)
    return Answer(500, tuple(problem_headers()), body)


async def _refuse(engine: Engine, delivery: Delivery, rejection: Rejected) -> Answer:
    try:
        await engine.record_rejection(delivery, rejection)
    except StoreError:
        # The answer still goes out: the sender must learn why, recorded or not.
        log.exception("could not record rejected delivery %s", delivery.id)
    return _rejection_answer(rejection)


async def _record_failure(engine: Engine, delivery: Delivery) -> None:
    record = delivery.record("rejected", reason=INTERNAL_ERROR, status=500)
    try:
        await engine.store.post(RecordDelivery(record))
    except StoreError:
        log.exception("could not record failed delivery %s", delivery.id)


def _verify(workflow: Workflow, signed: SignedRequest) -> Mapping[str, Any] | None:
    """Run the workflow's ``verify`` checks on the raw body; returns the JWT claims (or
    None). Raises Unauthenticated (401) or Forbidden (403)."""
    return workflow.trigger.verification.verify(signed, time.time()).claims


async def handle_webhook(app: Quart, scope: Scope, chunks: AsyncIterator[bytes]) -> Answer:
    """The answer to one webhook request (``scope`` is its ASGI scope, ``chunks`` its
    body as it arrives). Never raises for what a sender did: every refusal is an
    answer, and an unexpected error is logged and answered 500. Raises _Disconnected
    when the sender left before its body arrived."""
    engine: Engine = app.config["HOOKLINE_ENGINE"]
    proxies: Sequence[IPNetwork] = app.config.get(TRUSTED_PROXIES, ())
    method: str = scope["method"]
    headers = _headers(scope)
    origin = _origin(scope, headers, proxies)
    delivery = Delivery(
        id=new_id(),
        workflow="",
        received_at=time.time(),
        method=method,
        path=scope["path"],
        headers=headers,
        query=_query(scope),
        remote_addr=origin.client_ip,
    )
    admitted = False
    try:
        raw_path = _raw_path(scope)
        webhook_path = raw_path[len(PREFIX) :] if raw_path.startswith(PREFIX) else raw_path
        workflow, params = engine.route(webhook_path.lstrip("/"), method)
        trigger = workflow.trigger
        secret_headers = trigger.verification.secret_headers
        delivery = Delivery(
            id=delivery.id,
            workflow=workflow.key,
            received_at=delivery.received_at,
            method=method,
            path=delivery.path,
            headers=headers,
            query=delivery.query,
            params=params,
            remote_addr=origin.client_ip,
            secret_headers=secret_headers,
        )
        check_ip_allowed(origin.client_ip, trigger.ip_allow)
        timeout: float = app.config.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
        limit = min(trigger.max_body, HARD_BODY_LIMIT)
        raw = await read_body(chunks, _content_length(scope), limit, timeout)
        content_type = _first_header(scope, b"content-type")
        claims = None
        delivery = _with(delivery, body=raw)
        if trigger.verification.checks:
            signed = SignedRequest(
                method=method,
                url=origin.url(_target(scope)),
                headers=headers,
                body=raw,
                form=_form(raw, content_type),
                client_ip=origin.client_ip,
            )
            claims = _verify(workflow, signed)
        parsed = parse_body(raw, content_type)
        delivery = _with(
            delivery,
            body=raw,
            data=parsed.data,
            text=parsed.text,
            files=parsed.files,
            jwt=claims,
        )
        admission = await engine.accept(delivery)
        admitted = True
        handle = admission.handle
        if handle is None or admission.answer is not None:
            assert admission.answer is not None
            return admission.answer
        return await wait_answer(handle, trigger.sync_timeout)
    except Rejected as rejection:
        return await _refuse(engine, delivery, rejection)
    except _Disconnected:
        raise
    except StoreError:
        if admitted:
            log.exception("the store failed answering delivery %s", delivery.id)
            return _internal_error()
        log.exception("the store failed while admitting delivery %s", delivery.id)
        unavailable = Unavailable("deliveries cannot be recorded right now", retry_after=5.0)
        return await _refuse(engine, delivery, unavailable)
    except Exception:
        log.exception("unexpected error answering %s %s", method, scope["path"])
        if not admitted:
            # Recorded so the delivery log has every request, this one too.
            await _record_failure(engine, delivery)
        return _internal_error()


def _with(
    delivery: Delivery,
    *,
    body: bytes,
    data: Any = None,
    text: str = "",
    files: Mapping[str, Mapping[str, Any]] | None = None,
    jwt: Mapping[str, Any] | None = None,
) -> Delivery:
    """``delivery`` with its body (and what was parsed from it)."""
    return Delivery(
        id=delivery.id,
        workflow=delivery.workflow,
        received_at=delivery.received_at,
        method=delivery.method,
        path=delivery.path,
        headers=delivery.headers,
        query=delivery.query,
        params=delivery.params,
        body=body,
        data=data,
        text=text,
        files=files if files is not None else {},
        remote_addr=delivery.remote_addr,
        jwt=jwt,
        secret_headers=delivery.secret_headers,
    )


class WebhookIngress:
    """ASGI middleware serving ``/api/webhooks/*`` without Quart's request handling.

    Wrap the app's ``asgi_app`` (``app.asgi_app = WebhookIngress(app, app.asgi_app)``);
    everything else goes to ``inner``. It behaves as the Quart route does, answer for
    answer: a sender cannot tell which one served it.
    """

    def __init__(self, app: Quart, inner: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(PREFIX)
            or len(scope["path"]) == len(PREFIX)
            or scope["method"] not in _FAST_METHODS
        ):
            await self.inner(scope, receive, send)
            return

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            answer = await handle_webhook(self.app, scope, chunks())
        except _Disconnected:
            return
        await _send_answer(send, answer)


async def _send_answer(send: Any, answer: Answer) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in answer.headers]
    if not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", _DEFAULT_CONTENT_TYPE))
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


@webhooks.route(
    "/api/webhooks/<path:path>", methods=[*HTTP_METHODS, "OPTIONS"], strict_slashes=False
)
async def webhook(path: str) -> Response:
    """The same route through Quart, for an app served without :class:`WebhookIngress`."""
    app: Quart = current_app._get_current_object()  # type: ignore[attr-defined]
    return answer_response(await handle_webhook(app, request.scope, aiter(request.body)))
