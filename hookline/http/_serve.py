"""Serving the app with hypercorn's trio worker inside the caller's nursery.

Transport limits live here: TLS (``certfile``/``keyfile``), the size of a request's
headers (``max_header_size``: larger ones get 431 before any route sees them), how long a sender may take to send its body (``body_timeout``: then 408), and
how long an idle connection may take to start its next request (``keep_alive_timeout``,
which also bounds a request head sent slowly).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from ..engine._engine import Engine
from ._app import create_app
from ._client_ip import IPNetwork
from ._ingress import DEFAULT_BODY_TIMEOUT, configure_ingress
from ._problem import problem_body, problem_headers

DEFAULT_MAX_HEADER_SIZE = 16 * 1024
DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0


class HeaderLimit:
    """ASGI middleware answering 431 to a request whose headers, counted as sent
    (``name: value\r\n``), exceed ``limit`` bytes.

    hypercorn's own limit (``h11_max_incomplete_size``) only bounds a head that is still
    incomplete, so a large head arriving in one read would pass it.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.limit:
                await self._refuse(send, size)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, send: Any, size: int) -> None:
        detail = f"the request headers are {size} bytes; at most {self.limit} are accepted"
        body = problem_body(431, "Request header fields too large", detail)
        headers = [(n.encode(), v.encode()) for n, v in problem_headers()]
        headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def serve(
    engine: Engine,
    *,
    bind: str = "127.0.0.1:8000",
    certfile: str | None = None,
    keyfile: str | None = None,
    admin_keys: Sequence[str] = (),
    access_log: bool = False,
    trusted_proxies: Sequence[IPNetwork] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``engine`` over HTTP (HTTPS with ``certfile`` and ``keyfile``) until
    cancelled or ``shutdown_trigger`` returns.

    Reports the bound URLs (``["http://127.0.0.1:8000"]``) through ``task_status``, so
    ``bind="127.0.0.1:0"`` gives a free port: ``urls = await nursery.start(serve, engine)``.
    ``trusted_proxies`` are the networks whose forwarding headers name the client
    (``server.trusted_proxies``); without them the socket peer is the client.
    """
    config = Config()
    config.bind = [bind]
    config.certfile = certfile
    config.keyfile = keyfile
    config.h11_max_incomplete_size = max_header_size
    config.h2_max_header_list_size = max_header_size
    config.keep_alive_timeout = keep_alive_timeout
    # No access log unless asked: one log line per request costs throughput. Its
    # format names no header, so no credential can reach it.
    config.accesslog = logging.getLogger("hookline.access") if access_log else None
    config.errorlog = logging.getLogger("hookline.http")
    app = create_app(engine, admin_keys=admin_keys)
    configure_ingress(app, trusted_proxies=trusted_proxies, body_timeout=body_timeout)
    await hypercorn_serve(
        HeaderLimit(app, max_header_size),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )
