"""Serving the app with hypercorn's trio worker inside the caller's nursery.

Transport limits live here: TLS (``certfile``/``keyfile``), the size of a request's
headers (``max_header_size``: larger ones get 431 before any route sees them), how
long a sender may take to send its body (``body_timeout``: then 408), and how long an
idle connection may take to start its next request (``keep_alive_timeout``, which also
bounds a request head sent slowly).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from ..definition import problem_body, problem_headers
from ..engine._engine import Engine
from ..engine._refusal_limit import RefusalPolicy
from ._app import create_app
from ._body import MAX_FORM_PARTS
from ._client_ip import IPNetwork
from ._ingress import DEFAULT_BODY_TIMEOUT, configure_ingress

DEFAULT_MAX_HEADER_SIZE = 16 * 1024
DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0
_CLOSE = (b"connection", b"close")


def _has_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value != b"0"):
            return True
    return False


class TransportGuard:
    """ASGI middleware around the app, for what hypercorn leaves to it.

    - A request whose headers, counted as sent (``name: value\r\n``), exceed
      ``max_header_size`` bytes is answered 431. hypercorn's own limit
      (``h11_max_incomplete_size``) only bounds a head still incomplete, so a large
      head arriving in one read would pass it.
    - An answer sent before the request body was received in full (413 on the declared
      length, 403 for an address, 404, 405) carries ``Connection: close``, and its
      last part is sent shielded so hypercorn gets to close the connection. Otherwise
      the unread rest of the body sits in front of the next request on that
      connection, which hypercorn 0.18 then never answers.
    """

    def __init__(self, app: Any, max_header_size: int) -> None:
        self.app = app
        self.max_header_size = max_header_size

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.max_header_size:
            await self._refuse(send, size)
            return
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        received = False

        async def tracked_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received = True
            return message

        async def closing_send(message: Any) -> None:
            if message["type"] == "http.response.start" and not received:
                message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # From inside this call hypercorn tells the app the request is over,
                # quart-trio cancels the request's tasks, and the cancellation would
                # land before hypercorn closes or recycles the connection.
                with trio.CancelScope(shield=True):
                    await send(message)
                return
            await send(message)

        await self.app(scope, tracked_receive, closing_send)

    async def _refuse(self, send: Any, size: int) -> None:
        limit = self.max_header_size
        detail = f"the request headers are {size} bytes; at most {limit} are accepted"
        body = problem_body(431, "Request header fields too large", detail)
        headers = [(n.encode(), v.encode()) for n, v in problem_headers()]
        headers += [(b"content-length", str(len(body)).encode()), _CLOSE]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def serve(
    engine: Engine,
    *,
    bind: str = "127.0.0.1:8000",
    certfile: str | None = None,
    keyfile: str | None = None,
    admin_keys: Sequence[str] = (),
    admin_enabled: bool = True,
    access_log: bool = False,
    trusted_proxies: Sequence[IPNetwork] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_form_parts: int = MAX_FORM_PARTS,
    refusals: RefusalPolicy | None = None,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    fd: int | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``engine`` over HTTP (HTTPS with ``certfile`` and ``keyfile``) until
    cancelled or ``shutdown_trigger`` returns.

    Reports the bound URLs (``["http://127.0.0.1:8000"]``) through ``task_status``, so
    ``bind="127.0.0.1:0"`` gives a free port: ``urls = await nursery.start(serve, engine)``.
    ``admin_keys`` guard the admin API, the web UI and ``/metrics`` (none: loopback
    clients only, see :func:`~hookline.http._app.create_app`); ``admin_enabled=False``
    turns them off. ``trusted_proxies`` are the networks whose forwarding headers name
    the client (``server.trusted_proxies``); without them the socket peer is the client.
    ``fd`` is an inherited listening socket to serve on instead of binding ``bind``
    (``hookline serve --workers N`` starts each worker with the parent's socket).
    """
    config = Config()
    config.bind = [bind if fd is None else f"fd://{fd}"]
    config.certfile = certfile
    config.keyfile = keyfile
    config.h11_max_incomplete_size = max_header_size
    config.h2_max_header_list_size = max_header_size
    config.keep_alive_timeout = keep_alive_timeout
    # No access log unless asked: one log line per request costs throughput. Its
    # format names no header, so no credential can reach it.
    config.accesslog = logging.getLogger("hookline.access") if access_log else None
    config.errorlog = logging.getLogger("hookline.http")
    app = create_app(engine, admin_keys=admin_keys, admin_enabled=admin_enabled)
    configure_ingress(
        app,
        trusted_proxies=trusted_proxies,
        body_timeout=body_timeout,
        max_form_parts=max_form_parts,
        refusals=refusals,
    )
    await hypercorn_serve(
        TransportGuard(app, max_header_size),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )
