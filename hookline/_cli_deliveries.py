"""``hookline deliveries export``: a running server's recorded deliveries of one
workflow as ``hookline test`` cases (JSON lines, oldest first).

Each case holds the execution's ``$context``, the last attempt of each node that a
test answers (http, email, workflow, collection nodes, code), the answer the sender
got and how the execution ended. The collection writes it made are worked out by
running the definition version it ran with over the recorded answers, since the store
keeps what a write returned, not what it was asked to write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from ._cli_client import AdminClient, admin_options
from ._cli_test import run_on_virtual_clock
from .engine._test_cases import case_from_records, parse_case
from .engine._test_run import COLLECTION_READS, COLLECTION_WRITES, OUTSIDE_TYPES
from .errors import DefinitionError
from .store._records import LIVE_STATUSES

__all__ = ["export_cases", "export_deliveries"]

ANSWERED = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS | {"code"}
PAGE = 200


def _accepted(client: AdminClient, workflow: str, since: str | None) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        page = client.get(
            "/api/deliveries",
            workflow=workflow,
            verdict="accepted",
            since=since,
            limit=PAGE,
            cursor=cursor,
        )
        yield from page["deliveries"]
        cursor = page["cursor"]
        if not cursor:
            return


def export_cases(
    client: AdminClient, workflow: str, since: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The cases of ``workflow``'s accepted deliveries whose executions have ended,
    oldest first (``limit``: the newest that many)."""
    cases = []
    for delivery in _accepted(client, workflow, since):
        if not delivery.get("execution_id"):
            continue
        execution = client.get(f"/api/executions/{delivery['execution_id']}")
        if execution["status"] in LIVE_STATUSES:
            continue
        cases.append(case_from_records(delivery, execution, frozenset(ANSWERED)))
        if limit is not None and len(cases) >= limit:
            break
    cases.reverse()
    _add_writes(client, workflow, cases)
    return cases


def _add_writes(client: AdminClient, workflow: str, cases: list[dict[str, Any]]) -> None:
    """Give each case the collection writes of the version it ran with (none when that
    version is not stored or no longer loads: then writes are not compared)."""
    by_version: dict[int, list[dict[str, Any]]] = {}
    for case in cases:
        if isinstance(case.get("version"), int):
            by_version.setdefault(case["version"], []).append(case)
    for version, group in by_version.items():
        try:
            stored = client.get(f"/api/workflows/{workflow}/versions/{version}")
        except click.ClickException:
            continue
        parsed = [parse_case(case, str(case["id"])) for case in group]
        try:
            outcomes = run_on_virtual_clock(
                stored["definition"], f"{workflow}@{version}", parsed, answer=frozenset(ANSWERED)
            )
        except DefinitionError as exc:
            click.echo(f"version {version} no longer loads, writes not exported: {exc}", err=True)
            continue
        for case, outcome in zip(group, outcomes, strict=True):
            case["writes"] = list(outcome.result.writes)


@click.command("export")
@admin_options
@click.option("--workflow", required=True, help="The workflow whose deliveries to export.")
@click.option("--since", help="Received at or after (ISO 8601 or epoch seconds).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (the newest).")
def export_deliveries(
    client: AdminClient, as_json: bool, workflow: str, since: str | None, limit: int | None
) -> None:
    """Recorded deliveries with their executions' outside-node results, as JSON lines
    for `hookline test` (write them to a file: `> cases.jsonl`)."""
    for case in export_cases(client, workflow, since, limit):
        click.echo(json.dumps(case, ensure_ascii=False, separators=(",", ":")))
