"""The ``hookline`` command: a thin shell over the library."""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import click
import trio

from ._cli_bulk import bulk
from ._cli_collections import collections
from ._cli_deliveries import export_deliveries
from ._cli_executions import deliveries, executions
from ._cli_plugins import plugins_command
from ._cli_send import send_command
from ._cli_test import test_command
from ._cli_versions import diff_command, rollback_command
from ._cli_workflows import workflows
from ._config import ServerConfig, check_admin_exposure, load_config
from ._logging import configure_logging
from ._plugins import load_plugins
from ._workers import refusal, serve_workers
from .engine._alert_monitor import AlertMonitor
from .engine._engine import Engine, open_engine
from .engine._reload import keep_reloaded
from .engine._retention import RetentionPolicy
from .errors import HooklineError, LeaseLost
from .http._serve import serve


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="HOOKLINE_LOG_FORMAT",
    help="Log lines as text or JSON lines (or HOOKLINE_LOG_FORMAT).",
)
def cli(verbose: int, log_format: str) -> None:
    """hookline: webhook workflows on trio."""
    level = logging.WARNING - 10 * min(verbose, 2)
    configure_logging(level, json_lines=log_format == "json")


cli.add_command(send_command)
cli.add_command(workflows)
cli.add_command(executions)
cli.add_command(collections)
cli.add_command(bulk)
cli.add_command(plugins_command)
cli.add_command(deliveries)
cli.add_command(test_command)
deliveries.add_command(export_deliveries)
workflows.add_command(diff_command)
workflows.add_command(rollback_command)


@cli.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="hookline.yaml")
@click.option("--bind", help="HOST:PORT to listen on (overrides server.bind).")
@click.option("--db", help="SQLite file (overrides store.url).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes serving the port (overrides server.workers; more than 1: PostgreSQL).",
)
@click.option("--fd", type=int, hidden=True, help="A listening socket inherited from --workers.")
@click.pass_context
def serve_command(
    ctx: click.Context,
    *,
    config_path: str | None,
    bind: str | None,
    db: str | None,
    workers: int | None,
    fd: int | None,
) -> None:
    """Serve the workflows over HTTP until SIGTERM or Ctrl-C.

    On the first signal: refuse new deliveries (503), let running executions finish
    until ``server.shutdown_timeout``, cancel the rest (they resume on next start),
    flush the store, exit 0. A second signal stops waiting for running executions.

    With ``--workers N`` (or ``server.workers``) N processes serve the one port, sharing
    the PostgreSQL store; signals reach each of them, and one that dies is replaced.

    Refuses to start when no admin key guards an admin API that more than this
    machine's operator can reach (see :func:`~hookline._config.check_admin_exposure`).

    ``HOOKLINE_TEST_NODES=1`` in the environment registers the test node types
    (``sleep``, ``fail``) of :mod:`hookline.testing`, for end-to-end tests only.
    """
    config = load_config(config_path).with_overrides(bind=bind, db=db, workers=workers)
    exposure = check_admin_exposure(config)
    if exposure is not None and fd is None:
        logging.getLogger("hookline").warning("%s", exposure)
    pooled = fd is None and config.server.workers > 1
    if pooled:
        origin = "server.workers:" if workers is None else "--workers"
        refused = refusal(config.store.url, config.server.workers, origin)
        if refused is not None:
            click.echo(refused, err=True)
            raise click.exceptions.Exit(2)
    elif os.environ.get("HOOKLINE_TEST_NODES") == "1":
        from .testing._nodes import register_test_nodes

        register_test_nodes()
    try:
        if pooled:
            command = _worker_command(ctx, config_path)
            status = serve_workers(command, bind=config.server.bind, workers=config.server.workers)
        else:
            trio.run(functools.partial(run_server, config, fd=fd))
            status = 0
    except BaseException as exc:
        lost = _lease_lost(exc)
        if lost is not None:
            # Not a crash to debug: the others took this process's work over. Exit
            # non-zero so that a supervisor (or the --workers parent) starts a new one.
            click.echo(f"hookline: stopped: {lost}", err=True)
            raise click.exceptions.Exit(1) from None
        # Ctrl-C before the signal handler was installed: trio >= 0.25 may deliver it
        # wrapped in exception groups. Nothing was accepted yet: just exit.
        if not _only_interrupts(exc):
            raise
        raise click.exceptions.Exit(130) from None
    if status:
        raise click.exceptions.Exit(status)


def _worker_command(ctx: click.Context, config_path: str | None) -> list[str]:
    """The command line of one worker: this one's options, minus ``--workers`` (the
    pool adds ``--fd``); ``--bind`` is the parent's, ``--db`` was refused."""
    group = ctx.parent.params if ctx.parent is not None else {}
    options = ["-v"] * int(group.get("verbose") or 0)
    options += ["--log-format", str(group.get("log_format") or "text")]
    config = ["--config", config_path] if config_path is not None else []
    return [sys.executable, "-m", "hookline", *options, "serve", *config]


def _lease_lost(exc: BaseException) -> LeaseLost | None:
    """The LeaseLost inside ``exc`` (possibly nested in exception groups), if any."""
    if isinstance(exc, LeaseLost):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _lease_lost(inner)
            if found is not None:
                return found
    return None


def _only_interrupts(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


# Once the engine has stopped, how long in-flight HTTP requests get to be written out
# (their answers are ready by then).
HTTP_CLOSE_GRACE = 0.5


class _Shutdown:
    """SIGTERM/SIGINT as the server sees them: the first asks for a graceful stop, a
    later one makes the engine stop waiting for running executions."""

    def __init__(self) -> None:
        self.requested = trio.Event()
        self.engine: Engine | None = None

    async def watch(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if not self.requested.is_set():
                logging.getLogger("hookline").info("%s: shutting down", signal.Signals(signum).name)
                self.requested.set()
            elif self.engine is not None:
                self.engine.hurry()


async def run_server(config: ServerConfig, *, fd: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop intake, drain, flush and return. ``fd``: an
    inherited listening socket to serve on instead of binding ``server.bind``."""
    logging.getLogger("hookline").setLevel(min(logging.INFO, logging.getLogger().level))
    # Installed first and kept to the end: no KeyboardInterrupt can land mid-shutdown.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        shutdown = _Shutdown()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shutdown.watch, signals)
            await _serve(config, shutdown, fd)
            nursery.cancel_scope.cancel()


async def _serve(config: ServerConfig, shutdown: _Shutdown, fd: int | None) -> None:
    retention = RetentionPolicy(
        executions=config.retention.executions,
        deliveries=config.retention.deliveries,
        refused_deliveries=config.retention.refused_deliveries,
    )
    # Plugins first: the workflows may use their node types and verify schemes. A broken
    # one is logged by name and left out; the server starts without it.
    plugins = load_plugins()
    plugins.register_verifiers()
    async with open_engine(
        config.workflows,
        nodes=plugins.nodes,
        store=_store_url(config),
        env=config.env_values,
        pending_limit=config.engine.pending,
        restart=config.engine.restart,
        shutdown_timeout=config.server.shutdown_timeout,
        http_allow_hosts=config.http_node.allow_hosts,
        smtp=config.smtp,
        retention=retention,
        scripts=config.code,
    ) as engine:
        shutdown.engine = engine
        http_stop = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(
                    serve,
                    engine,
                    bind=config.server.bind,
                    certfile=_optional_path(config.server.certfile),
                    keyfile=_optional_path(config.server.keyfile),
                    admin_keys=config.admin.api_keys,
                    admin_enabled=config.admin.enabled,
                    access_log=config.server.access_log,
                    trusted_proxies=config.server.trusted_proxies,
                    body_timeout=config.server.body_timeout,
                    max_form_parts=config.server.max_form_parts,
                    refusals=config.server.refused,
                    max_header_size=config.server.max_header_size,
                    keep_alive_timeout=config.server.keep_alive_timeout,
                    shutdown_trigger=http_stop.wait,
                    fd=fd,
                )
            )
            # What start-up made (modules, workflows, the app) lives as long as the
            # server: out of the collector's way, full collections stay short, and
            # so do the pauses they add to answers.
            gc.freeze()
            # An edited file, or SIGHUP, loads the workflows folder again.
            reloading = await nursery.start(keep_reloaded, engine)
            alerting = await nursery.start(AlertMonitor(engine, config.alerts).run)
            click.echo(f"hookline serving {len(engine.workflows)} workflows on {', '.join(urls)}")
            for error in engine.load_errors:
                click.echo(f"skipped: {error}", err=True)
            for broken in plugins.broken:
                click.echo(f"plugin not loaded: {broken.describe()}", err=True)
            await shutdown.requested.wait()
            reloading.cancel()
            alerting.cancel()
            # HTTP stays up while the engine drains: new deliveries get 503, and sync
            # requests in flight get their answers (or 202 when cut off).
            await engine.aclose()
            http_stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + HTTP_CLOSE_GRACE


def _store_url(config: ServerConfig) -> str:
    """``store.url`` with ``store.synchronous`` applied (an option in the URL wins)."""
    url = config.store.url
    if not url.startswith("sqlite:") or "synchronous=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}synchronous={config.store.synchronous}"


def _optional_path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status instead of exiting."""
    try:
        status = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except HooklineError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    # With standalone_mode off, click returns a command's Exit code instead of raising it.
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
