"""Fewer statements per batch: updates of one execution in one transaction, merged.

An execution posts ``running`` as it starts and writes its end when it finishes; a
quick one does both before the store's next commit, so both land in one batch. Applied
in order inside one transaction, the first is invisible to everyone (readers see the
transaction whole or not at all), so the store applies their merge instead: one
statement, the same stored row. Pure code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._ops import (
    RecordDelivery,
    SaveAnswer,
    SaveJob,
    SaveJobs,
    SaveWorkflow,
    UpdateExecution,
    WriteOp,
)

__all__ = ["coalesce", "merge"]

# Ops that never touch an execution row: two updates may merge across them. Anything
# else (accepting, requeueing, pruning, collection writes) ends the window.
_TOUCH_NO_EXECUTION = (SaveJob, SaveJobs, SaveAnswer, RecordDelivery, SaveWorkflow)


def merge(earlier: UpdateExecution, later: UpdateExecution) -> UpdateExecution:
    """The one update that leaves a row as ``earlier`` then ``later`` would: the later
    status, and each field the later one leaves unset taken from the earlier one."""
    fields: dict[str, Any] = {
        "started_at": later.started_at if later.started_at is not None else earlier.started_at,
        "finished_at": (
            later.finished_at if later.finished_at is not None else earlier.finished_at
        ),
        "error": later.error if later.error is not None else earlier.error,
    }
    if later.has_output:
        fields["output"] = later.output
    elif earlier.has_output:
        fields["output"] = earlier.output
    return UpdateExecution(later.id, later.status, **fields)


def coalesce(ops: Sequence[WriteOp]) -> tuple[list[WriteOp], list[int]]:
    """The ops to apply for ``ops`` (in order), and for each op of ``ops`` the index of
    the applied op whose result is its result.

    Each UpdateExecution is merged into the next UpdateExecution of the same execution
    in ``ops``; only an op that changes no execution may stand between them (no other
    op reads what an update writes: the execution's status, times, output, error). A
    merged op gets the result of the op it was merged into (it would have failed the
    same way: the execution is missing).
    """
    if sum(1 for op in ops if type(op) is UpdateExecution) < 2:
        return list(ops), list(range(len(ops)))
    # Walking backwards: for each execution, its last update in the current window
    # (what the ones before it merge into).
    last: dict[str, int] = {}
    merged: dict[int, UpdateExecution] = {}
    into: dict[int, int] = {}
    for position in range(len(ops) - 1, -1, -1):
        op = ops[position]
        if not isinstance(op, UpdateExecution):
            if not isinstance(op, _TOUCH_NO_EXECUTION):
                last.clear()
            continue
        later = last.get(op.id)
        if later is None:
            last[op.id] = position
            merged[position] = op
            continue
        merged[later] = merge(op, merged[later])
        into[position] = later
    applied: list[WriteOp] = []
    index_of: dict[int, int] = {}
    for position, op in enumerate(ops):
        if position in into:
            continue
        index_of[position] = len(applied)
        applied.append(merged.get(position, op))
    targets = [index_of[into.get(position, position)] for position in range(len(ops))]
    return applied, targets
