"""The webhook route: ``ANY /api/webhooks/<path>`` from request to answer.

In order: who called (the socket peer, or behind ``trusted_proxies`` the client they
forwarded for), which workflow (404, 405), the workflow's ``ip_allow`` (403), the body
within ``max_body`` (413) and the body timeout (408), a form within ``max_form_parts``
parts (413), the ``verify`` checks on the raw bytes (401, 403), the body parsed (400),
then the engine's admission. A request refused before admission never creates an
execution.

Every request ends as a recorded delivery: accepted ones are stored by the engine with
their execution; refused ones (404, 405, 403, 401, 408, 413, 400, 409, 422, 429, 503
and the unexpected 500) are recorded here with their verdict, reason and status, their
secret and signature headers redacted. The one exception is a CORS preflight to a
workflow with ``trigger.cors`` (:mod:`._cors`): answered 204, it is no delivery.

:func:`handle_webhook` works on the ASGI scope and the body as it arrives, with no
Quart request: :class:`~hookline.http._webhook_asgi.WebhookIngress` serves it in front
of the Quart app (Quart's request handling costs more than the rest of an async
ingest), and the blueprint route here serves it through Quart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import trio
from quart import Blueprint, Quart, Response, current_app, request

from .._ids import new_id
from ..definition import problem_body, problem_headers, rejection_problem
from ..engine._answers import still_running_answer
from ..engine._definition import HTTP_METHODS, Workflow
from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..engine._execution import ExecutionHandle
from ..engine._refusal_limit import RefusalPolicy
from ..errors import PayloadTooLarge, Rejected, RequestTimeout, StoreError, Unavailable
from ..store._ops import RecordDelivery
from ..store._records import Answer
from ..verify import SignedRequest, Verified
from ._body import MAX_FORM_PARTS, check_form_parts, parse_body_cooperatively
from ._client_ip import IPNetwork, check_ip_allowed
from ._consumed import without_credentials
from ._cors import cors_answer, preflight_answer
from ._refusals import record_refusal, refusal_limit
from ._responses import answer_response
from ._scope import (
    Scope,
    content_length,
    first_header,
    form_params,
    query_fields,
    raw_path,
    request_origin,
    request_target,
    scope_headers,
)
from ._verified import answer_handshake, direct_answer, opened_delivery

log = logging.getLogger("hookline.http")

webhooks = Blueprint("webhooks", __name__)

PREFIX = "/api/webhooks/"
INTERNAL_ERROR = "an unexpected error occurred"
TRUSTED_PROXIES = "HOOKLINE_TRUSTED_PROXIES"
BODY_TIMEOUT = "HOOKLINE_BODY_TIMEOUT"
MAX_PARTS = "HOOKLINE_MAX_FORM_PARTS"
REFUSALS = "HOOKLINE_REFUSALS"
DEFAULT_BODY_TIMEOUT = 30.0
# Bodies above this are cut off whatever a workflow allows.
HARD_BODY_LIMIT = 64 * 1024 * 1024
# The methods the route takes: those a workflow may declare, and OPTIONS.
METHODS = (*HTTP_METHODS, "OPTIONS")


class SenderGone(Exception):
    """Raised by a body reader when the sender went away before its body arrived:
    nobody is left to answer. Not raised for a slow sender (that is a 408)."""


def configure_ingress(
    app: Quart,
    *,
    trusted_proxies: Sequence[IPNetwork] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_form_parts: int = MAX_FORM_PARTS,
    refusals: RefusalPolicy | None = None,
) -> None:
    """Set the webhook route's server-wide settings on ``app``.

    ``trusted_proxies``: the networks whose ``X-Forwarded-For``/``Forwarded`` headers
    are believed (none: the socket peer is the client). ``body_timeout``: seconds a
    sender has to deliver the whole body once its headers arrived (then 408).
    ``max_form_parts``: the parts a multipart or URL-encoded form may have (then 413).
    ``refusals``: how much of refused requests is recorded (``server.refused``).
    """
    app.config[TRUSTED_PROXIES] = tuple(trusted_proxies)
    app.config[BODY_TIMEOUT] = body_timeout
    app.config[MAX_PARTS] = max_form_parts
    app.config[REFUSALS] = refusals if refusals is not None else RefusalPolicy()


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


async def wait_answer(handle: ExecutionHandle, timeout: float) -> Answer:
    """The answer of a sync execution: what it answered (a ``response`` node, or its
    end), or 202 + Location when none came within ``timeout`` or it stopped without
    answering (engine shutdown: its record stays resumable and it goes on later)."""
    if handle.answer is None:
        with trio.move_on_after(timeout):
            await handle.wait_answered_or_finished()
    return handle.answer if handle.answer is not None else still_running_answer(handle.id)


def _rejection_answer(rejection: Rejected) -> Answer:
    status, headers, body = rejection_problem(rejection)
    return Answer(status, tuple(headers), body)


def _internal_error() -> Answer:
    body = problem_body(500, "Internal server error", INTERNAL_ERROR)
    return Answer(500, tuple(problem_headers()), body)


async def _refuse(app: Quart, engine: Engine, delivery: Delivery, rejection: Rejected) -> Answer:
    # Recorded within the refusal limit, the body cut short (docs/security.md, section 2);
    # the answer goes out either way: the sender must learn why, recorded or not.
    limit = refusal_limit(engine, app.config.get(REFUSALS, RefusalPolicy()))
    await record_refusal(engine, limit, delivery, rejection)
    return _rejection_answer(rejection)


async def _record_failure(engine: Engine, delivery: Delivery) -> None:
    record = delivery.record("rejected", reason=INTERNAL_ERROR, status=500)
    try:
        await engine.store.post(RecordDelivery(record))
    except StoreError:
        log.exception("could not record failed delivery %s", delivery.id)


def _verify(workflow: Workflow, signed: SignedRequest) -> Verified:
    """Run the workflow's ``verify`` checks on the raw body; returns what they
    established (JWT claims, a decrypted body, a handshake's answer). Raises
    Unauthenticated (401) or Forbidden (403)."""
    return workflow.trigger.verification.verify(signed, time.time())


class _Received:
    """What is known of a request so far; the Delivery is made from it once, when the
    request is admitted or refused (making it at every step costs more than routing)."""

    __slots__ = (
        "body",
        "headers",
        "id",
        "method",
        "params",
        "path",
        "query",
        "received_at",
        "remote_addr",
        "secret_headers",
        "workflow",
    )

    def __init__(self, scope: Scope, headers: dict[str, str], remote_addr: str) -> None:
        self.id = new_id()
        self.received_at = time.time()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = headers
        self.query = query_fields(scope)
        self.remote_addr = remote_addr
        self.workflow = ""
        self.params: Mapping[str, str] = {}
        self.secret_headers: frozenset[str] = frozenset()
        self.body = b""

    def delivery(
        self,
        data: Any = None,
        files: Mapping[str, Mapping[str, Any]] | None = None,
        jwt: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> Delivery:
        return Delivery(
            id=self.id,
            workflow=self.workflow,
            received_at=self.received_at,
            method=self.method,
            path=self.path,
            headers=self.headers,
            query=self.query,
            params=self.params,
            body=self.body,
            data=data,
            files=files if files is not None else {},
            form=form,
            remote_addr=self.remote_addr,
            jwt=jwt,
            secret_headers=self.secret_headers,
        )


async def handle_webhook(app: Quart, scope: Scope, chunks: AsyncIterator[bytes]) -> Answer:
    """The answer to one webhook request, with the CORS headers of its workflow's
    ``trigger.cors`` (a preflight is answered from them alone: :mod:`._cors`). Raises
    only as :func:`_answer_webhook` does."""
    engine: Engine = app.config["HOOKLINE_ENGINE"]
    webhook_path = raw_path(scope).removeprefix(PREFIX).lstrip("/")
    if scope["method"] == "OPTIONS":
        preflight = preflight_answer(engine, scope, webhook_path)
        if preflight is not None:
            return preflight
    answer = await _answer_webhook(app, scope, chunks)
    return cors_answer(engine, scope, webhook_path, answer)


async def _answer_webhook(app: Quart, scope: Scope, chunks: AsyncIterator[bytes]) -> Answer:
    """The answer to one webhook request (``scope`` is its ASGI scope, ``chunks`` its
    body as it arrives). Never raises for what a sender did: every refusal is an
    answer, and an unexpected error is logged and answered 500. Raises SenderGone
    when the sender left before its body arrived."""
    engine: Engine = app.config["HOOKLINE_ENGINE"]
    proxies: Sequence[IPNetwork] = app.config.get(TRUSTED_PROXIES, ())
    headers = scope_headers(scope)
    origin = request_origin(scope, headers, proxies)
    received = _Received(scope, headers, origin.client_ip)
    method = received.method
    admitted = False
    try:
        webhook_path = raw_path(scope).removeprefix(PREFIX)
        workflow, received.params = engine.route(webhook_path.lstrip("/"), method)
        trigger = workflow.trigger
        received.workflow = workflow.key
        received.secret_headers = trigger.verification.secret_headers
        if not trigger.expose_credentials:
            # What verify consumes never reaches $context or a record; checks read `headers`.
            received.headers, received.query = without_credentials(
                headers,
                received.query,
                received.secret_headers,
                trigger.verification.secret_query,
            )
        check_ip_allowed(origin.client_ip, trigger.ip_allow)
        timeout: float = app.config.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
        limit = min(trigger.max_body, HARD_BODY_LIMIT)
        raw = received.body = await read_body(chunks, content_length(scope), limit, timeout)
        content_type = first_header(scope, b"content-type")
        max_parts: int = app.config.get(MAX_PARTS, MAX_FORM_PARTS)
        # Counted before verify parses a form: a flood of parts is refused unparsed.
        check_form_parts(raw, content_type, max_parts)
        verified = Verified()
        if trigger.verification.checks:
            signed = SignedRequest(
                method=method,
                url=origin.url(request_target(scope)),
                headers=headers,
                body=raw,
                form=form_params(raw, content_type),
                client_ip=origin.client_ip,
            )
            verified = _verify(workflow, signed)
        if verified.answer is not None:
            return await answer_handshake(engine, received.delivery(), verified.answer)
        parsed = await parse_body_cooperatively(raw, content_type, max_parts=max_parts)
        delivery = received.delivery(parsed.data, parsed.files, verified.claims, parsed.form)
        delivery = opened_delivery(delivery, verified.opened)
        admission = await engine.accept(delivery)
        admitted = True
        if verified.reply is not None:
            return direct_answer(verified.reply)
        handle = admission.handle
        if handle is None or admission.answer is not None:
            assert admission.answer is not None
            return admission.answer
        return await wait_answer(handle, trigger.sync_timeout)
    except Rejected as rejection:
        return await _refuse(app, engine, received.delivery(), rejection)
    except SenderGone:
        raise
    except StoreError:
        if admitted:
            log.exception("the store failed answering delivery %s", received.id)
            return _internal_error()
        log.exception("the store failed while admitting delivery %s", received.id)
        unavailable = Unavailable("deliveries cannot be recorded right now", retry_after=5.0)
        return await _refuse(app, engine, received.delivery(), unavailable)
    except Exception:
        log.exception("unexpected error answering %s %s", method, scope["path"])
        if not admitted:
            # Recorded so the delivery log has every request, this one too.
            await _record_failure(engine, received.delivery())
        return _internal_error()


@webhooks.route("/api/webhooks/<path:path>", methods=list(METHODS), strict_slashes=False)
async def webhook(path: str) -> Response:
    """The route as Quart knows it: it answers other methods 405 with ``Allow``. Its
    requests are served by :class:`~hookline.http._webhook_asgi.WebhookIngress` in
    front of the app; this body runs only for an app served without it."""
    app: Quart = current_app._get_current_object()  # type: ignore[attr-defined]
    return answer_response(await handle_webhook(app, request.scope, aiter(request.body)))
