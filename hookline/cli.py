"""The ``hookline`` command: a thin shell over the library."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import trio

from ._config import ServerConfig, load_config
from .engine._engine import open_engine
from .engine._loader import load_workflows
from .errors import HooklineError
from .http._serve import serve


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """hookline: webhook workflows on trio."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="hookline.yaml")
@click.option("--bind", help="HOST:PORT to listen on (overrides server.bind).")
@click.option("--db", help="SQLite file (overrides store.url).")
def serve_command(config_path: str | None, bind: str | None, db: str | None) -> None:
    """Serve the workflows over HTTP until SIGTERM or Ctrl-C."""
    config = load_config(config_path).with_overrides(bind=bind, db=db)
    trio.run(run_server, config)


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGTERM/SIGINT, then stop intake, drain, flush and return."""
    logging.getLogger("hookline").setLevel(min(logging.INFO, logging.getLogger().level))
    async with open_engine(
        config.workflows,
        store=config.store.url,
        env=config.env_values,
        pending_limit=config.engine.pending,
        shutdown_timeout=config.server.shutdown_timeout,
        http_allow_hosts=config.http_node.allow_hosts,
        smtp=config.smtp,
    ) as engine:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_wait_for_signal, stop)
            urls = await nursery.start(
                lambda task_status: serve(
                    engine,
                    bind=config.server.bind,
                    certfile=_optional_path(config.server.certfile),
                    keyfile=_optional_path(config.server.keyfile),
                    admin_keys=config.admin.api_keys,
                    access_log=config.server.access_log,
                    shutdown_trigger=stop.wait,
                    task_status=task_status,
                )
            )
            click.echo(f"hookline serving {len(engine.workflows)} workflows on {', '.join(urls)}")
            for error in engine.load_errors:
                click.echo(f"skipped: {error}", err=True)
            await stop.wait()
            nursery.cancel_scope.deadline = trio.current_time() + config.server.shutdown_timeout


def _optional_path(path: Path | None) -> str | None:
    return None if path is None else str(path)


async def _wait_for_signal(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            stop.set()
            return


@cli.group()
def workflows() -> None:
    """Inspect workflow definitions."""


@workflows.command("validate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
def validate_command(folder: str) -> None:
    """Validate every definition in FOLDER; exit 1 if any is invalid."""
    result = load_workflows(Path(folder))
    for workflow in result.workflows:
        click.echo(f"ok      {workflow.source}  ({workflow.key})")
    for error in result.errors:
        click.echo(f"invalid {error}", err=True)
    if result.errors:
        raise click.exceptions.Exit(1)


@workflows.command("list")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
def list_command(folder: str) -> None:
    """List the workflows defined in FOLDER."""
    for workflow in load_workflows(Path(folder)).workflows:
        trigger = workflow.trigger
        state = "enabled" if workflow.enabled else "disabled"
        methods = ",".join(trigger.methods)
        route = f"{methods} /api/webhooks/{trigger.path}"
        click.echo(f"{workflow.key}\t{state}\t{trigger.mode}\t{route}")


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
