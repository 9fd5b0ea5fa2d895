"""``hookline workflows diff`` and ``hookline workflows rollback``: a workflow's stored
versions on a running server, through its admin API."""

from __future__ import annotations

import click

from ._cli_client import AdminClient, admin_options, print_json

__all__ = ["diff_command", "rollback_command"]


@click.command("diff")
@admin_options
@click.argument("key")
@click.argument("old", type=click.IntRange(min=1))
@click.argument("new", type=click.IntRange(min=1))
def diff_command(client: AdminClient, as_json: bool, key: str, old: int, new: int) -> None:
    """The changes from version OLD to version NEW of workflow KEY (a unified diff)."""
    answer = client.get(f"/api/workflows/{key}/diff", **{"from": old, "to": new})
    if as_json:
        print_json(answer)
    elif answer["diff"]:
        click.echo(answer["diff"], nl=False)
    else:
        click.echo(f"versions {old} and {new} of {key} have the same text")


@click.command("rollback")
@admin_options
@click.argument("key")
@click.argument("version", type=click.IntRange(min=1))
def rollback_command(client: AdminClient, as_json: bool, key: str, version: int) -> None:
    """Make version VERSION of workflow KEY its definition again (running executions
    finish on the version they started with)."""
    answer = client.request(
        "POST", f"/api/workflows/{key}/rollback", json_body={"version": version}
    )
    if as_json:
        print_json(answer)
    else:
        click.echo(f"{key} rolled back to version {answer['version']}")
