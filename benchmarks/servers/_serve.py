"""Serve an ASGI app with hypercorn's trio worker, as hookline does."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


def run(app: Any, argv: Sequence[str] | None = None) -> None:
    """Parse ``--bind HOST:PORT`` and serve ``app`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1:8000")
    args = parser.parse_args(argv)
    config = Config()
    config.bind = [args.bind]
    config.accesslog = None  # per-request logging would dominate the measurement

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

            async def stop() -> None:
                async for _ in signals:
                    return

            await serve(app, config, shutdown_trigger=stop)

    trio.run(main)
