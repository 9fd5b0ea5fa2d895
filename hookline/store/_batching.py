"""Forming a ``batch``: the one write that makes one execution of several queued ones.

Each delivery of a batched workflow is accepted as its own ``queued`` execution, as any
other (committed before its sender hears 202). When the engine closes a batch window,
:class:`FormBatch` claims the window's members in one transaction: the first member
claimed becomes the batch's execution (its context gains ``batch``, the list of every
member's context, each with its ``execution_id``), and every other member ends
``succeeded`` with the output ``{"batched_into": <the batch's execution id>}``.

Only members still unclaimed are taken: ``queued``, not already a batch's execution
and, on a store shared by several processes, owned by the writing process. So a member
is in one batch at most, even when two processes both hold it in a window (one adopted
it from the other, declared dead too early): the second claim finds it taken.

This module holds the op, its result and the pure part every backend shares; the SQL of
each backend is in :mod:`._batch_sql`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..definition import JSON
from ._records import ExecutionRecord

__all__ = [
    "BATCHED_INTO",
    "FormBatch",
    "FormedBatch",
    "batch_deliveries",
    "form_batch",
    "form_in_memory",
    "is_batch",
    "member_output",
]

#: The key of a batched member's output naming the execution that runs it.
BATCHED_INTO = "batched_into"


@attrs.frozen
class FormBatch:
    """Make one execution of the queued executions ``members`` (ids in arrival order),
    claiming only those still unclaimed (see the module docstring), in one transaction.
    ``finished_at`` is the end time recorded on the members that end batched.

    Result: a :class:`FormedBatch`, or None when no member could be claimed."""

    members: tuple[str, ...]
    finished_at: float


@attrs.frozen
class FormedBatch:
    """A batch as formed: ``execution_id`` (its first member) runs it; ``members`` are
    the ids claimed, in arrival order, ``execution_id`` first; ``batch`` is what the
    execution's ``$context.batch`` holds (each member's context, with its
    ``execution_id``)."""

    execution_id: str
    members: tuple[str, ...]
    batch: tuple[Mapping[str, Any], ...]


def is_batch(context: object) -> bool:
    """Whether a stored context is a formed batch's (its execution is claimed)."""
    return isinstance(context, Mapping) and "batch" in context


def form_batch(
    claimed: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[FormedBatch, dict[str, Any]] | None:
    """The batch of the members ``claimed`` (id and stored context, in arrival order;
    batch executions already formed are skipped), and its execution's new context."""
    members = [(id_, context) for id_, context in claimed if not is_batch(context)]
    if not members:
        return None
    batch = tuple({**context, "execution_id": id_} for id_, context in members)
    head_id, head_context = members[0]
    formed = FormedBatch(head_id, tuple(id_ for id_, _ in members), batch)
    return formed, {**head_context, "batch": list(batch)}


def member_output(formed: FormedBatch) -> JSON:
    """The output a member other than the batch's execution ends with."""
    return {BATCHED_INTO: formed.execution_id}


def form_in_memory(executions: dict[str, ExecutionRecord], op: FormBatch) -> FormedBatch | None:
    """:class:`FormBatch` over the memory backend's executions."""
    claimed = []
    for id_ in op.members:
        record = executions.get(id_)
        if record is not None and record.status == "queued":
            claimed.append((id_, record.context))
    found = form_batch(claimed)
    if found is None:
        return None
    formed, context = found
    head = executions[formed.execution_id]
    executions[head.id] = attrs.evolve(head, context=context)
    output = member_output(formed)
    for id_ in formed.members[1:]:
        executions[id_] = attrs.evolve(
            executions[id_], status="succeeded", finished_at=op.finished_at, output=output
        )
    return formed


def batch_deliveries(context: object) -> list[dict[str, Any]] | None:
    """The deliveries a batch's execution holds, in arrival order: each one's
    ``execution_id`` (ended batched into this one, or this one), ``delivery_id`` and
    ``received_at``. None for an execution that is no batch's."""
    if not is_batch(context):
        return None
    assert isinstance(context, Mapping)
    entries = context["batch"]
    return [
        {key: entry.get(key) for key in ("execution_id", "delivery_id", "received_at")}
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, Mapping)
    ]
