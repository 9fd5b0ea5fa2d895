"""``hookline executions`` and ``hookline deliveries``: a running server's records,
through its admin API. ``executions show ID`` draws the node tree with each job's
status and timing."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.tree import Tree

from ._cli_client import AdminClient, admin_options, console, print_json, styled, table, took, when
from .store._records import LIVE_STATUSES

__all__ = ["deliveries", "draw_tree", "executions"]

EXECUTION_STATUSES = (*LIVE_STATUSES, "succeeded", "failed", "cancelled", "timed_out")
VERDICTS = ("accepted", "rejected", "duplicate")


def _page_options(command: Any) -> Any:
    for option in (
        click.option("--cursor", help="The cursor printed under the previous page."),
        click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True),
        click.option("--until", help="Made at or before (ISO 8601 or epoch seconds)."),
        click.option("--since", help="Made at or after (ISO 8601 or epoch seconds)."),
        click.option("--workflow", help="Only this workflow's."),
    ):
        command = option(command)
    return command


@click.group()
def executions() -> None:
    """List, inspect, cancel, retry and replay executions on a running server."""


@executions.command("list")
@admin_options
@_page_options
@click.option("--status", type=click.Choice(EXECUTION_STATUSES))
def list_executions(client: AdminClient, as_json: bool, **query: Any) -> None:
    """Executions, newest first."""
    page = client.get("/api/executions", **query)
    if as_json:
        print_json(page)
        return
    rows = [
        [
            item["id"],
            item["workflow"],
            styled(item["status"]),
            when(item["created_at"]),
            took(_elapsed(item)),
            escape(item["error"] or ""),
        ]
        for item in page["executions"]
    ]
    table(["execution", "workflow", "status", "created", "took", "error"], rows)
    _print_more(page)


def _print_more(page: dict[str, Any]) -> None:
    """Say how to ask for the next page, when there is one."""
    if page["cursor"]:
        click.echo(f"more: --cursor {page['cursor']}")


def _elapsed(item: dict[str, Any]) -> float | None:
    if item.get("started_at") is None or item.get("finished_at") is None:
        return None
    return float(item["finished_at"]) - float(item["started_at"])


def draw_tree(execution: dict[str, Any]) -> Tree:
    """The execution's node tree (the API's ``tree`` rows) as a rich Tree: each node
    with its last job's status, time taken and attempts, failed ones with their error."""
    root = Tree(
        f"[bold]{escape(execution['workflow'])}[/bold] {execution['id']} "
        f"{styled(execution['status'])} {took(_elapsed(execution))}"
    )
    parents: dict[int, Tree] = {-1: root}
    for row in execution.get("tree", []):
        depth = int(row["depth"])
        parent = parents[max(d for d in parents if d < depth)]
        if row["label"] is not None:
            text = f"[dim italic]{escape(row['label'])}[/dim italic]"
        else:
            text = f"[bold]{escape(row['key'])}[/bold] [dim]{escape(row['type'])}[/dim] "
            text += styled(row["status"])
            if row["seconds"] is not None:
                text += f" {took(row['seconds'])}"
            if row["attempts"] > 1:
                text += f" x{row['attempts']}"
            if row["error"]:
                text += f"\n[red]{escape(row['error'])}[/red]"
        branch = parent.add(text)
        parents = {d: t for d, t in parents.items() if d < depth}
        parents[depth] = branch
    return root


@executions.command("show")
@click.argument("execution_id")
@admin_options
def show_execution(client: AdminClient, as_json: bool, execution_id: str) -> None:
    """One execution: its node tree with each job's status and timing."""
    execution = client.get(f"/api/executions/{execution_id}")
    if as_json:
        print_json(execution)
        return
    out = console()
    out.print(draw_tree(execution))
    out.print(f"created {when(execution['created_at'])}  delivery {execution['delivery_id']}")
    if execution["error"]:
        out.print(f"[red]error: {escape(execution['error'])}[/red]")


def _restart(client: AdminClient, as_json: bool, execution_id: str, action: str) -> None:
    answer = client.post(f"/api/executions/{execution_id}/{action}")
    if as_json:
        print_json(answer)
    elif action == "cancel":
        click.echo(f"cancel requested for {execution_id}")
    elif answer["execution_id"] == execution_id:
        # A retry continues the same execution (same id) from its first unfinished job.
        click.echo(f"{action}: execution {execution_id} queued again")
    else:
        click.echo(f"{action}: new execution {answer['execution_id']}")


@executions.command("cancel")
@click.argument("execution_id")
@admin_options
def cancel_execution(client: AdminClient, as_json: bool, execution_id: str) -> None:
    """Cancel a queued or running execution."""
    _restart(client, as_json, execution_id, "cancel")


@executions.command("retry")
@click.argument("execution_id")
@admin_options
def retry_execution(client: AdminClient, as_json: bool, execution_id: str) -> None:
    """Continue a failed execution from its failed node."""
    _restart(client, as_json, execution_id, "retry")


@executions.command("replay")
@click.argument("execution_id")
@admin_options
def replay_execution(client: AdminClient, as_json: bool, execution_id: str) -> None:
    """Run an execution's delivery again, as a new execution."""
    _restart(client, as_json, execution_id, "replay")


@click.group()
def deliveries() -> None:
    """List and inspect the requests a running server received."""


@deliveries.command("list")
@admin_options
@_page_options
@click.option("--verdict", type=click.Choice(VERDICTS))
def list_deliveries(client: AdminClient, as_json: bool, **query: Any) -> None:
    """Every request, newest first; rejected ones with their reason."""
    page = client.get("/api/deliveries", **query)
    if as_json:
        print_json(page)
        return
    rows = [
        [
            item["id"],
            when(item["received_at"]),
            escape(f"{item['method']} {item['path']}"),
            item["workflow"] or "—",
            styled(item["verdict"]),
            str(item["status"] or "—"),
            item["execution_id"] or "—",
            escape(item["reason"] or ""),
        ]
        for item in page["deliveries"]
    ]
    columns = ["delivery", "received", "request", "workflow", "verdict", "answer", "execution"]
    table([*columns, "reason"], rows)
    _print_more(page)


@deliveries.command("show")
@click.argument("delivery_id")
@admin_options
def show_delivery(client: AdminClient, as_json: bool, delivery_id: str) -> None:
    """One request as received (secrets redacted)."""
    item = client.get(f"/api/deliveries/{delivery_id}")
    if as_json:
        print_json(item)
        return
    click.echo(f"{item['method']} {item['path']}  from {item['remote_addr']}")
    click.echo(f"received {when(item['received_at'])}  workflow {item['workflow'] or '—'}")
    verdict = f"verdict {item['verdict']}  answer {item['status'] or '—'}"
    click.echo(verdict + (f"  reason: {item['reason']}" if item["reason"] else ""))
    if item["execution_id"]:
        click.echo(f"execution {item['execution_id']}")
    click.echo("")
    for name, value in item["headers"].items():
        click.echo(f"{name}: {value}")
    click.echo("")
    click.echo(item["body"])
