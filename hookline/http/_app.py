"""The Quart-Trio application: webhook ingress, admin reads, health, error answers."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Sequence

import attrs
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


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a client IP as text) is a loopback address, IPv4-mapped
    IPv6 (``::ffff:127.0.0.1``) included. Anything that is not an IP is not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


@attrs.frozen
class AdminRefusal:
    """Why an admin request is refused: its status, title and detail."""

    status: int
    title: str
    detail: str


def admin_refusal(
    remote_addr: str, authorization: str, keys: Sequence[bytes]
) -> AdminRefusal | None:
    """Decide whether an admin request may proceed (None) or is refused.

    With ``keys``: no Bearer token is 401, a token matching none of them 403 (compared
    in constant time). Without keys: loopback clients only, others 403.
    """
    if not keys:
        if is_loopback(remote_addr):
            return None
        return AdminRefusal(
            403, "Forbidden", "the admin API answers loopback clients only (no keys set)"
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return AdminRefusal(401, "Unauthorized", "send an admin key as a Bearer token")
    # Every key is compared, so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(token.encode(), key) for key in keys]
    if not any(matches):
        return AdminRefusal(403, "Forbidden", "the admin key is not valid")
    return None


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
        refusal = admin_refusal(
            request.remote_addr or "", request.headers.get("authorization", ""), keys
        )
        if refusal is None:
            return None
        headers = {"www-authenticate": "Bearer"} if refusal.status == 401 else {}
        response = problem_response(refusal.status, refusal.title, refusal.detail)
        response.headers.update(headers)
        return response

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
