"""``hookline collections``: list collections and records, import and export them,
through a running server's admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ._cli_client import AdminClient, admin_options, print_json, table
from .http._collections_api import records_csv

__all__ = ["collections"]

FORMATS = ("jsonl", "csv")


@click.group()
def collections() -> None:
    """List, import and export collection records on a running server."""


@collections.command("list")
@admin_options
def list_collections(client: AdminClient, as_json: bool) -> None:
    """The collections that have records."""
    found = client.get("/api/collections")
    if as_json:
        print_json(found)
        return
    for name in found["collections"]:
        click.echo(name)


@collections.command("records")
@admin_options
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor", help="The cursor printed under the previous page.")
def list_records(
    client: AdminClient, as_json: bool, name: str, limit: int, cursor: str | None
) -> None:
    """A page of collection NAME's records, newest first."""
    page = client.get(f"/api/collections/{name}/records", limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    records: list[dict[str, Any]] = page["records"]
    fields: list[str] = []
    for record in records:
        fields.extend(
            k for k in record if k not in fields and k not in ("created_at", "updated_at")
        )
    rows = [[escape(_cell(record.get(f))) for f in fields] for record in records]
    table(fields or ["id"], rows)
    if page.get("cursor"):
        click.echo(f"more: --cursor {page['cursor']}")


@collections.command("import")
@admin_options
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "kind",
    type=click.Choice(FORMATS),
    help="jsonl or csv; by default from the file's extension (.csv, else jsonl).",
)
def import_records(
    client: AdminClient, as_json: bool, name: str, file: Path, kind: str | None
) -> None:
    """Add a record to collection NAME for each line of FILE (JSON lines) or each row
    (CSV with a header row). Each write is recorded with your admin key's fingerprint."""
    kind = kind or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
    answer = client.request(
        "POST",
        f"/api/collections/{name}/import",
        params={"format": kind},
        content=file.read_bytes(),
        content_type="text/csv" if kind == "csv" else "application/jsonl",
    )
    if as_json:
        print_json(answer)
    else:
        click.echo(f"imported {answer['imported']} records into {name}")


@collections.command("export")
@admin_options
@click.argument("name")
@click.option("--format", "kind", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
def export_records(
    client: AdminClient, as_json: bool, name: str, kind: str, output: Path | None
) -> None:
    """Every record of collection NAME, as JSON lines or CSV (to stdout or --output)."""
    records = []
    cursor = None
    while True:
        page = client.get(f"/api/collections/{name}/records", limit=500, cursor=cursor)
        records.extend(page["records"])
        cursor = page.get("cursor")
        if not cursor:
            break
    if kind == "csv":
        text = records_csv(records)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"exported {len(records)} records to {output}", err=True)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
