"""Serving the app with hypercorn's trio worker inside the caller's nursery."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from ..engine._engine import Engine
from ._app import create_app


async def serve(
    engine: Engine,
    *,
    bind: str = "127.0.0.1:8000",
    certfile: str | None = None,
    keyfile: str | None = None,
    admin_keys: Sequence[str] = (),
    access_log: bool = False,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``engine`` over HTTP until cancelled or ``shutdown_trigger`` returns.

    Reports the bound URLs (``["http://127.0.0.1:8000"]``) through ``task_status``, so
    ``bind="127.0.0.1:0"`` gives a free port: ``urls = await nursery.start(serve, engine)``.
    """
    config = Config()
    config.bind = [bind]
    config.certfile = certfile
    config.keyfile = keyfile
    # No access log unless asked: one log line per request costs throughput.
    config.accesslog = logging.getLogger("hookline.access") if access_log else None
    config.errorlog = logging.getLogger("hookline.http")
    app = create_app(engine, admin_keys=admin_keys)
    await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)
