"""The picture of an execution: its workflow's node tree laid out for SVG, each node
with the status of its last job. Pure functions, no I/O: the UI page and the CLI's
``executions show`` both draw from :func:`node_rows`.

The layout is a tree view: each node is a row, a node's branches (``then``/``else``,
``case 1``..., ``body``, ``branch 1``...) are labelled rows below it, indented one step,
with their nodes indented under them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from ..engine._definition import Workflow
from ..nodes._base import NodeSpec
from ..store._records import JobRecord

__all__ = ["ROW_HEIGHT", "TreeRow", "branch_labels", "node_rows", "svg_size"]

ROW_HEIGHT = 46
LABEL_HEIGHT = 26
INDENT = 36
BOX_WIDTH = 260
MARGIN = 12


@attrs.frozen
class TreeRow:
    """One row of the picture: a node (``label`` None) or a branch label.

    ``status`` is the last job's status, ``not_run`` when the node has no job;
    ``attempts`` counts its jobs; ``parent_y`` is the y of the row it hangs from (None
    for a top-level row).
    """

    depth: int
    x: int
    y: int
    height: int
    key: str
    type: str
    status: str
    label: str | None = None
    attempts: int = 0
    seconds: float | None = None
    error: str | None = None
    parent_y: int | None = None


def branch_labels(node: NodeSpec, count: int) -> list[str]:
    """Names for a node's ``count`` branches, as its definition calls them."""
    if node.type == "condition" and count == 2:
        return ["then", "else"]
    if node.type == "loop" and count == 1:
        return ["body"]
    if node.type == "switch" and count >= 1:
        return [f"case {i + 1}" for i in range(count - 1)] + ["default"]
    return [f"branch {i + 1}" for i in range(count)]


def _last_jobs(jobs: Iterable[JobRecord]) -> dict[str, list[JobRecord]]:
    by_node: dict[str, list[JobRecord]] = {}
    for job in jobs:
        by_node.setdefault(job.node, []).append(job)
    return by_node


def _node_row(
    node_key: str,
    node_type: str,
    depth: int,
    y: int,
    runs: Sequence[JobRecord],
    *,
    parent_y: int | None,
) -> TreeRow:
    last = runs[-1] if runs else None
    seconds = None
    if last is not None and last.finished_at is not None:
        seconds = max(0.0, last.finished_at - last.started_at)
    return TreeRow(
        depth=depth,
        x=MARGIN + depth * INDENT,
        y=y,
        height=ROW_HEIGHT,
        key=node_key,
        type=node_type,
        status=last.status if last is not None else "not_run",
        attempts=len(runs),
        seconds=seconds,
        error=last.error if last is not None else None,
        parent_y=parent_y,
    )


def node_rows(workflow: Workflow | None, jobs: Sequence[JobRecord]) -> list[TreeRow]:
    """The rows of the picture of ``jobs`` over ``workflow``'s tree.

    Jobs of nodes the definition does not have (it changed since, or is gone) follow
    the tree as top-level rows, so no job is ever hidden.
    """
    by_node = _last_jobs(jobs)
    rows: list[TreeRow] = []
    y = MARGIN

    def place(nodes: Sequence[NodeSpec], depth: int, parent_y: int | None) -> None:
        nonlocal y
        for node in nodes:
            row = _node_row(
                node.key, node.type, depth, y, by_node.get(node.key, ()), parent_y=parent_y
            )
            rows.append(row)
            y += ROW_HEIGHT
            branches = list(node.config.branches())
            for label, branch in zip(branch_labels(node, len(branches)), branches, strict=True):
                label_y = y
                rows.append(
                    TreeRow(
                        depth=depth + 1,
                        x=MARGIN + (depth + 1) * INDENT,
                        y=y,
                        height=LABEL_HEIGHT,
                        key=node.key,
                        type="",
                        status="label",
                        label=label if branch else f"{label} (empty)",
                        parent_y=row.y,
                    )
                )
                y += LABEL_HEIGHT
                place(branch, depth + 2, label_y)

    known: set[str] = set()
    if workflow is not None:
        place(workflow.nodes, 0, None)
        known = {node.key for node in workflow.walk()}
    for key, runs in by_node.items():
        if key not in known:
            rows.append(_node_row(key, runs[-1].type, 0, y, runs, parent_y=None))
            y += ROW_HEIGHT
    return rows


def svg_size(rows: Sequence[TreeRow]) -> tuple[int, int]:
    """Width and height that hold every row."""
    if not rows:
        return BOX_WIDTH + 2 * MARGIN, ROW_HEIGHT
    width = max(row.x for row in rows) + BOX_WIDTH + MARGIN
    height = max(row.y + row.height for row in rows) + MARGIN
    return width, height
