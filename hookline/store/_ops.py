"""Write operations, the messages the store actor commits in batches.

Each operation is applied inside the batch's single transaction, in arrival order; its
result (see each class) is handed to the waiter only after COMMIT.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._collections import CollectionAction
from ._records import (
    Answer,
    DeliveryRecord,
    ExecutionRecord,
    ExecutionStatus,
    IdempotencyRecord,
    JobRecord,
    WorkflowRecord,
)

_UNSET: Any = object()


@attrs.frozen
class RecordDelivery:
    """Store a delivery that started no execution (rejected). Result: None."""

    delivery: DeliveryRecord


@attrs.frozen
class IdempotencyClaim:
    """Claim an idempotency key for the execution being accepted."""

    key: str
    body_hash: str
    expires_at: float


@attrs.frozen
class AcceptDelivery:
    """Store a delivery together with the execution it starts, atomically.

    With a ``claim``, the key is checked inside the transaction: if a live record for
    (workflow, key) exists, nothing but the delivery (verdict ``duplicate``) is stored
    and the result is that earlier :class:`IdempotencyRecord`. Otherwise the result is
    None. ``answer`` is the answer already known (async mode), kept for replays.
    """

    delivery: DeliveryRecord
    execution: ExecutionRecord
    claim: IdempotencyClaim | None = None
    answer: Answer | None = None


@attrs.frozen
class UpdateExecution:
    """Change an execution's status and, when given, its timestamps, output, error.

    Result: None. Unset fields keep their stored value.
    """

    id: str
    status: ExecutionStatus
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = _UNSET
    error: str | None = None

    @property
    def has_output(self) -> bool:
        return self.output is not _UNSET


@attrs.frozen
class SaveJob:
    """Save a job record (one attempt of one node). Result: None.

    A job is known by (execution_id, node, attempt): saving one again completes the row
    saved before, in place. A row already saved as succeeded keeps its status, output
    and error (a :class:`CollectionWrite` committed them with its write); only its
    times and log change.
    """

    job: JobRecord


@attrs.frozen
class SaveAnswer:
    """Record the answer a delivery got, on the delivery and, if it claimed one, on its
    idempotency record (so a retry gets this answer again). Result: None."""

    delivery_id: str
    answer: Answer
    workflow: str | None = None
    key: str | None = None


@attrs.frozen
class SaveWorkflow:
    """Insert or replace a workflow's record. Result: None."""

    workflow: WorkflowRecord


@attrs.frozen
class CollectionWrite:
    """Apply ``action`` to a collection and save ``job`` as succeeded with the action's
    result as its output, in one transaction: both take effect or neither does.

    Result: the action's result (see each action). If ``job`` (execution, node, attempt)
    was already saved as succeeded, nothing is applied again and the result is that
    job's output: a write is done once even when its node runs again. A failed action
    (a field name clashing with another in case only) stores nothing.
    """

    job: JobRecord
    action: CollectionAction


WriteOp = (
    RecordDelivery
    | AcceptDelivery
    | UpdateExecution
    | SaveJob
    | SaveAnswer
    | SaveWorkflow
    | CollectionWrite
)

__all__ = [
    "AcceptDelivery",
    "CollectionWrite",
    "IdempotencyClaim",
    "IdempotencyRecord",
    "RecordDelivery",
    "SaveAnswer",
    "SaveJob",
    "SaveWorkflow",
    "UpdateExecution",
    "WriteOp",
]
