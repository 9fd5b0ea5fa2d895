"""The Quart-Trio application: webhook ingress, admin reads, health, error answers."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

import trio
from quart import Quart, Response, request
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart.wrappers import BaseRequestWebsocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from .._logging import log_store_event
from .._tap import tap_store
from ..engine._engine import Engine
from ..errors import StoreError
from ._access import AdminRefusal, admin_refusal, is_forwarded, is_loopback
from ._bulk_api import bulk_api
from ._client_ip import Origin
from ._collections_api import collections_api
from ._drafts_api import drafts_api
from ._executions import executions
from ._ingress import HARD_BODY_LIMIT, PREFIX, TRUSTED_PROXIES, webhooks
from ._metrics import engine_metrics, metrics
from ._openapi import openapi
from ._responses import json_response, problem_response
from ._scope import request_origin, scope_headers
from ._security_headers import SECURITY_HEADERS
from ._ui import UI_PREFIX, UI_SESSIONS, ui, ui_refusal
from ._ui_bulk import ui_bulk
from ._ui_collections import ui_collections
from ._ui_editor import ui_editor
from ._ui_sessions import SessionRegistry
from ._ui_test_runs import ui_test_runs
from ._webhook_asgi import WebhookIngress
from ._workers_api import workers_api
from ._workflows_api import workflows_api

__all__ = [
    "HARD_BODY_LIMIT",
    "AdminRefusal",
    "admin_refusal",
    "create_app",
    "is_admin_path",
    "is_loopback",
]

log = logging.getLogger("hookline.http")

READY_TIMEOUT = 2.0


def is_admin_path(path: str) -> bool:
    """Whether ``path`` is an operator's route (admin API, metrics, web UI pages),
    guarded by the admin keys; webhooks, health checks and UI assets are not."""
    if path.startswith("/api/"):
        return not path.startswith("/api/webhooks/")
    return path == "/metrics" or path.startswith(UI_PREFIX)


def _origin(app: Quart, headers: dict[str, str]) -> Origin:
    """The current request's client and public URL, through the trusted proxies."""
    return request_origin(request.scope, headers, app.config.get(TRUSTED_PROXIES, ()))


class _OperatorSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the web UI only: webhook requests never pay for
    opening one. The cookie is ``Secure`` when the browser came over HTTPS, to hookline
    or to a trusted proxy in front of it."""

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        if not request.path.startswith(UI_PREFIX):
            return None
        return await super().open_session(app, request)

    def get_cookie_secure(self, app: Quart) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return _origin(app, scope_headers(request.scope)).scheme == "https"


def create_app(
    engine: Engine,
    *,
    admin_keys: Sequence[str] = (),
    admin_enabled: bool = True,
    secret_key: bytes | None = None,
) -> QuartTrio:
    """The ASGI app serving ``engine``.

    Admin routes (the admin API, ``/metrics``, the web UI) need one of ``admin_keys``
    as a Bearer token (the UI: a session opened by signing in with a key); with no key
    configured they answer loopback clients only: the client as resolved through the
    trusted proxies, and never a request a proxy forwarded. ``admin_enabled=False``
    answers every admin route 404. ``secret_key`` signs UI session cookies (default:
    random, so sessions end with the process).
    """
    app = QuartTrio("hookline", static_folder=None)
    app.config["HOOKLINE_ENGINE"] = engine
    app.config["MAX_CONTENT_LENGTH"] = HARD_BODY_LIMIT
    app.secret_key = secret_key or secrets.token_bytes(32)
    app.session_interface = _OperatorSessions()
    app.config["SESSION_COOKIE_PATH"] = UI_PREFIX
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["SESSION_COOKIE_NAME"] = "hookline_session"
    app.config[UI_SESSIONS] = SessionRegistry()
    app.register_blueprint(webhooks)
    # Webhooks skip Quart's request handling (the route's hot path); the rest is Quart.
    app.asgi_app = WebhookIngress(app, app.asgi_app)  # type: ignore[method-assign]
    app.register_blueprint(executions)
    app.register_blueprint(drafts_api)
    app.register_blueprint(workflows_api)
    app.register_blueprint(collections_api)
    app.register_blueprint(bulk_api)
    app.register_blueprint(ui_bulk)
    app.register_blueprint(ui_collections)
    app.register_blueprint(workers_api)
    app.register_blueprint(openapi)
    app.register_blueprint(metrics)
    app.register_blueprint(ui)
    app.register_blueprint(ui_editor)
    app.register_blueprint(ui_test_runs)
    keys = tuple(key.encode() for key in admin_keys)
    app.config["HOOKLINE_ADMIN_KEYS"] = keys
    engine_metrics(engine)
    tap_store(engine.store).subscribe(log_store_event)

    @app.before_request
    async def protect_admin() -> Response | None:
        if not is_admin_path(request.path):
            return None
        if not admin_enabled:
            detail = "the admin API, the web UI and /metrics are off (admin.enabled: false)"
            return problem_response(404, "Not found", detail)
        headers = scope_headers(request.scope)
        client = _origin(app, headers).client_ip
        forwarded = is_forwarded(headers)
        authorization = headers.get("authorization", "")
        if request.path.startswith(UI_PREFIX):
            return await ui_refusal(client, authorization, keys, forwarded=forwarded)
        refusal = admin_refusal(client, authorization, keys, forwarded=forwarded)
        if refusal is None:
            return None
        headers = {"www-authenticate": "Bearer"} if refusal.status == 401 else {}
        response = problem_response(refusal.status, refusal.title, refusal.detail)
        response.headers.update(headers)
        return response

    @app.after_request
    async def secure_headers(response: Response) -> Response:
        # Every answer but a webhook's (a workflow's own answer) is an operator's.
        if not request.path.startswith(PREFIX):
            for name, value in SECURITY_HEADERS:
                response.headers.setdefault(name, value)
        return response

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if not engine.statistics().accepting:
            return problem_response(503, "Not ready", "the engine is not accepting", retry_after=5)
        try:
            with trio.fail_after(READY_TIMEOUT):
                await engine.store.list_workflows()
        except (StoreError, trio.TooSlowError):
            return problem_response(503, "Not ready", "the store is not reachable", retry_after=5)
        return json_response({"status": "ready", "workflows": len(engine.workflows)})

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        allow: tuple[str, ...] = ()
        for name, value in exc.get_headers():
            if name.lower() == "allow":
                allow = tuple(m.strip() for m in value.split(","))
        return problem_response(code, exc.name, exc.description or exc.name, allow=allow)

    @app.errorhandler(UnicodeDecodeError)
    async def undecodable(exc: UnicodeDecodeError) -> Response:
        # quart-trio decodes a JSON body as UTF-8 before get_json(silent=True) can say
        # it is none: a sender's bytes, not a server error (found by the issue 13 fuzz run).
        return problem_response(400, "Bad request", "the request body is not valid UTF-8")

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(500, "Internal server error", "an unexpected error occurred")

    return app
