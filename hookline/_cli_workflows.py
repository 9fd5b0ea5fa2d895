"""``hookline workflows``: check definitions locally, and list, show, apply, enable and
disable them on a running server through its admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from ._cli_client import AdminClient, admin_options, console, print_json, styled, table
from ._plugins import load_plugins
from .engine._loader import (
    WORKFLOW_SUFFIXES,
    check_workflow_text,
    load_workflows,
)
from .errors import DefinitionError

__all__ = ["workflows"]


@click.group()
def workflows() -> None:
    """Check workflow definitions, or manage them on a running server."""


@workflows.command("validate")
@click.argument("path", type=click.Path(exists=True))
def validate_command(path: str) -> None:
    """Validate a definition file, or every definition in a folder; exit 1 if any is
    invalid. Runs locally: no server needed. An environment variable named by
    ``env:NAME`` but not set here is a warning (exit 0): ``hookline serve`` refuses that
    workflow until it is set."""
    target = Path(path)
    # The node types and verify schemes of installed plugins, as hookline serve has them.
    plugins = load_plugins()
    plugins.register_verifiers()
    for broken in plugins.broken:
        click.echo(f"plugin not loaded: {broken.describe()}", err=True)
    if target.is_dir():
        result = load_workflows(target, unset_env="warn", nodes=plugins.nodes)
        loaded, errors = list(result.workflows), list(result.errors)
        warnings = list(result.warnings)
    else:
        try:
            text = target.read_text("utf-8")
            workflow, unset = check_workflow_text(text, source=path, nodes=plugins.nodes)
        except DefinitionError as exc:
            loaded, errors, warnings = [], [exc], []
        else:
            loaded, errors, warnings = ([] if workflow is None else [workflow]), [], list(unset)
    for workflow in loaded:
        click.echo(f"ok      {workflow.source}  ({workflow.key})")
    for warning in warnings:
        refused = "hookline serve refuses this workflow until it is set"
        click.echo(f"warning {warning} ({refused})", err=True)
    for error in errors:
        click.echo(f"invalid {error}", err=True)
    if errors:
        raise click.exceptions.Exit(1)


@workflows.command("list")
@click.argument("folder", type=click.Path(exists=True, file_okay=False), required=False)
@admin_options
def list_command(client: AdminClient, as_json: bool, folder: str | None) -> None:
    """List the workflows of a running server, or those defined in FOLDER."""
    if folder is not None:
        # Listed as validate sees them: a secret not set here does not hide a workflow.
        result = load_workflows(Path(folder), unset_env="warn")
        for workflow in result.workflows:
            trigger = workflow.trigger
            state = "enabled" if workflow.enabled else "disabled"
            route = f"{','.join(trigger.methods)} /api/webhooks/{trigger.path}"
            click.echo(f"{workflow.key}\t{state}\t{trigger.mode}\t{route}")
        for warning in result.warnings:
            click.echo(f"warning {warning}", err=True)
        for error in result.errors:
            click.echo(f"invalid {error}", err=True)
        return
    answer = client.get("/api/workflows")
    if as_json:
        print_json(answer)
        return
    rows = []
    for item in answer["workflows"]:
        stats = item.get("statistics") or {}
        trigger = item["trigger"]
        rows.append(
            [
                item["key"],
                styled("enabled" if item["enabled"] else "disabled"),
                trigger["mode"],
                f"{','.join(trigger['methods'])} /api/webhooks/{trigger['path']}",
                str(stats.get("running", 0)),
                str(stats.get("completed", 0)),
                str(stats.get("failed", 0)),
            ]
        )
    columns = ["workflow", "state", "mode", "route", "running", "completed", "failed"]
    table(columns, rows, title=f"{len(rows)} workflows")
    for error in answer.get("errors", []):
        click.echo(f"not loaded: {error['message']}", err=True)


@workflows.command("show")
@click.argument("key")
@admin_options
def show_command(client: AdminClient, as_json: bool, key: str) -> None:
    """Show workflow KEY of a running server with its definition."""
    item = client.get(f"/api/workflows/{key}")
    if as_json:
        print_json(item)
        return
    out = console()
    state = "enabled" if item["enabled"] else "disabled"
    out.print(f"[bold]{item['key']}[/bold]  {styled(state)}  {item['title']}")
    out.print(f"source: {item['source']}", markup=False, highlight=False)
    out.print(item["definition"], markup=False, highlight=False)


def _key_of(path: Path, text: str) -> str:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path}: not YAML or JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        raise click.ClickException(f"{path}: a workflow definition needs a key")
    key: str = data["key"]
    return key


@workflows.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Only validate on the server.")
@admin_options
def apply_command(
    client: AdminClient, as_json: bool, files: tuple[str, ...], dry_run: bool
) -> None:
    """Create or replace workflows on a running server from definition FILES."""
    for name in files:
        path = Path(name)
        if path.suffix not in WORKFLOW_SUFFIXES:
            raise click.ClickException(f"{path}: expected a .yaml, .yml or .json file")
        text = path.read_text("utf-8")
        key = _key_of(path, text)
        content_type = "application/json" if path.suffix == ".json" else "application/yaml"
        answer = client.request(
            "PUT",
            f"/api/workflows/{key}",
            params={"dry_run": "true" if dry_run else None},
            content=text.encode(),
            content_type=content_type,
        )
        if as_json:
            print_json(answer)
        else:
            click.echo(f"{'valid' if dry_run else 'applied'} {key} ({path})")


@workflows.command("enable")
@click.argument("key")
@admin_options
def enable_command(client: AdminClient, as_json: bool, key: str) -> None:
    """Enable workflow KEY on a running server."""
    _set_enabled(client, as_json, key, enabled=True)


@workflows.command("disable")
@click.argument("key")
@admin_options
def disable_command(client: AdminClient, as_json: bool, key: str) -> None:
    """Disable workflow KEY on a running server (its requests get 503)."""
    _set_enabled(client, as_json, key, enabled=False)


def _set_enabled(client: AdminClient, as_json: bool, key: str, *, enabled: bool) -> None:
    answer = client.request("PATCH", f"/api/workflows/{key}", json_body={"enabled": enabled})
    if as_json:
        print_json(answer)
    else:
        click.echo(f"{key} {'enabled' if answer['enabled'] else 'disabled'}")
