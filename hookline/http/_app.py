"""The Quart-Trio application: webhook ingress, admin reads, health, error answers."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Sequence

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..engine._engine import Engine
from ._executions import executions
from ._ingress import webhooks
from ._responses import json_response, problem_response

log = logging.getLogger("hookline.http")

# Bodies above this are cut off by Quart itself, whatever a workflow allows.
HARD_BODY_LIMIT = 64 * 1024 * 1024


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def create_app(engine: Engine, *, admin_keys: Sequence[str] = ()) -> QuartTrio:
    """The ASGI app serving ``engine``. Admin routes need one of ``admin_keys`` as a
    Bearer token; with no key configured they answer loopback clients only."""
    app = QuartTrio("hookline")
    app.config["HOOKLINE_ENGINE"] = engine
    app.config["MAX_CONTENT_LENGTH"] = HARD_BODY_LIMIT
    app.register_blueprint(webhooks)
    app.register_blueprint(executions)
    keys = tuple(key.encode() for key in admin_keys)

    @app.before_request
    async def protect_admin() -> Response | None:
        if not request.path.startswith("/api/") or request.path.startswith("/api/webhooks/"):
            return None
        if not keys:
            if _is_loopback(request.remote_addr or ""):
                return None
            return problem_response(
                403, "Forbidden", "the admin API answers loopback clients only (no keys set)"
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return problem_response(401, "Unauthorized", "send an admin key as a Bearer token")
        if not any(hmac.compare_digest(token.encode(), key) for key in keys):
            return problem_response(403, "Forbidden", "the admin key is not valid")
        return None

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        stats = engine.statistics()
        if not stats.accepting:
            return problem_response(503, "Not ready", "the engine is not accepting", retry_after=5)
        return json_response({"status": "ready", "workflows": len(engine.workflows)})

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        allow: tuple[str, ...] = ()
        for name, value in exc.get_headers():
            if name.lower() == "allow":
                allow = tuple(m.strip() for m in value.split(","))
        return problem_response(code, exc.name, exc.description or exc.name, allow=allow)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(500, "Internal server error", "an unexpected error occurred")

    return app
