"""``hookline plugins``: the node types and verify schemes installed packages add."""

from __future__ import annotations

import click
from rich.markup import escape

from ._cli_client import print_json, table
from ._plugins import NODE_GROUP, load_plugins

__all__ = ["plugins_command"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> int:
    """List the plugins found (entry point groups hookline.nodes and
    hookline.verifiers); exit 1 if any of them does not load."""
    found = load_plugins()
    if as_json:
        print_json(
            {
                "loaded": [
                    {"group": p.group, "name": p.name, "value": p.value, "package": p.package}
                    for p in found.loaded
                ],
                "broken": [
                    {
                        "group": p.group,
                        "name": p.name,
                        "value": p.value,
                        "package": p.package,
                        "error": p.error,
                    }
                    for p in found.broken
                ],
            }
        )
    elif not found.loaded and not found.broken:
        click.echo("no plugins installed")
    else:
        rows = [
            [_kind(p.group), escape(p.name), escape(p.package), escape(p.value), "[green]loaded[/]"]
            for p in found.loaded
        ]
        rows += [
            [
                _kind(p.group),
                escape(p.name),
                escape(p.package),
                escape(p.value),
                f"[red]broken[/]: {escape(p.error)}",
            ]
            for p in found.broken
        ]
        table(["kind", "name", "package", "object", "state"], rows)
    return 1 if found.broken else 0


def _kind(group: str) -> str:
    return "node type" if group == NODE_GROUP else "verify scheme"
