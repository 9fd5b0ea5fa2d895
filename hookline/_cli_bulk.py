"""``hookline bulk``: replay or retry every execution matching a filter on a running
server (paced by the server), see a run's progress, cancel it."""

from __future__ import annotations

import time
from typing import Any

import click

from ._cli_client import AdminClient, admin_options, print_json
from .store._records import LIVE_STATUSES

__all__ = ["bulk"]

STATUSES = (*LIVE_STATUSES, "succeeded", "failed", "cancelled", "timed_out")


@click.group()
def bulk() -> None:
    """Replay or retry many executions at once."""


def _filter_options(command: Any) -> Any:
    for option in (
        click.option("--wait", is_flag=True, help="Follow the run until it ends."),
        click.option("--dry-run", is_flag=True, help="Only count the matching executions."),
        click.option("--error", help="Only those whose error contains this text (any case)."),
        click.option("--until", help="Created at or before (ISO 8601 or epoch seconds)."),
        click.option("--since", help="Created at or after (ISO 8601 or epoch seconds)."),
        click.option("--status", type=click.Choice(STATUSES)),
        click.option("--workflow", help="Only this workflow's executions."),
    ):
        command = option(command)
    return command


def _start(client: AdminClient, as_json: bool, action: str, **options: Any) -> int:
    wait = options.pop("wait")
    body = {k: v for k, v in options.items() if v not in (None, False)}
    answer = client.request("POST", "/api/bulk", json_body={"action": action, **body})
    if options.get("dry_run"):
        if as_json:
            print_json(answer)
        else:
            done = "replayed" if action == "replay" else "retried"
            click.echo(f"{answer['matched']} executions would be {done}")
        return 0
    if not wait:
        if as_json:
            print_json(answer)
        else:
            click.echo(f"bulk {action} {answer['id']}: {answer['total']} executions")
        return 0
    return _follow(client, as_json, answer["id"])


@bulk.command("replay")
@admin_options
@_filter_options
def replay_command(client: AdminClient, as_json: bool, **options: Any) -> int:
    """Start a new execution from each matching execution's delivery."""
    return _start(client, as_json, "replay", **options)


@bulk.command("retry")
@admin_options
@_filter_options
def retry_command(client: AdminClient, as_json: bool, **options: Any) -> int:
    """Run each matching failed, timed-out or cancelled execution again."""
    return _start(client, as_json, "retry", **options)


@bulk.command("show")
@admin_options
@click.argument("run_id")
def show_command(client: AdminClient, as_json: bool, run_id: str) -> None:
    """A bulk run's progress."""
    shown = client.get(f"/api/bulk/{run_id}")
    if as_json:
        print_json(shown)
    else:
        click.echo(_line(shown))


@bulk.command("cancel")
@admin_options
@click.argument("run_id")
def cancel_command(client: AdminClient, as_json: bool, run_id: str) -> None:
    """Stop a bulk run before its next execution."""
    shown = client.request("POST", f"/api/bulk/{run_id}/cancel")
    if as_json:
        print_json(shown)
    else:
        click.echo(_line(shown))


def _follow(client: AdminClient, as_json: bool, run_id: str) -> int:
    try:
        while True:
            shown = client.get(f"/api/bulk/{run_id}")
            if not as_json:
                click.echo(_line(shown), err=True)
            if shown["state"] != "running":
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        shown = client.request("POST", f"/api/bulk/{run_id}/cancel")
    if as_json:
        print_json(shown)
    for error in shown["errors"]:
        click.echo(f"{error['execution_id']}: {error['error']}", err=True)
    return 1 if shown["failed"] or shown["state"] == "cancelled" else 0


def _line(shown: dict[str, Any]) -> str:
    return (
        f"bulk {shown['action']} {shown['id']}: {shown['state']}, "
        f"{shown['done']}/{shown['total']} done, {shown['failed']} failed"
    )
