"""Write operations, the messages the store actor commits in batches.

Each operation is applied inside the batch's single transaction, in arrival order; its
result (see each class) is handed to the waiter only after COMMIT.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._batching import FormBatch
from ._collections import CollectionAction
from ._records import (
    Answer,
    DeliveryRecord,
    ExecutionRecord,
    ExecutionStatus,
    IdempotencyRecord,
    JobRecord,
    JobStatus,
    WaitRecord,
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
    (workflow, key) exists, nothing is stored and the result is that earlier
    :class:`IdempotencyRecord` (the caller records the duplicate with the answer it
    decides on: a replay, 409 or 422). Otherwise the result is None. ``answer`` is the
    answer already known (async mode), kept for replays.
    """

    delivery: DeliveryRecord
    execution: ExecutionRecord
    claim: IdempotencyClaim | None = None
    answer: Answer | None = None
    # The jobs of an execution run whole before it was accepted (``execution`` is then
    # already finished): stored in the same transaction.
    jobs: tuple[JobRecord, ...] = ()


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

    A job is known by (execution_id, node, scope, attempt): saving one again completes
    the row saved before, in place. A row already saved as succeeded keeps its status, output
    and error (a :class:`CollectionWrite` committed them with its write); only its
    times and log change.
    """

    job: JobRecord


@attrs.frozen
class SaveJobs:
    """Save several job records at once, as :class:`SaveJob` each would (one op, one
    statement batch: an execution's quick nodes are recorded together). Result: None."""

    jobs: tuple[JobRecord, ...]


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
    """Insert or replace a workflow's record, and keep its source as a version.

    A source whose digest the workflow never had before becomes a new
    :class:`~hookline.store._records.WorkflowVersionRecord`, numbered one past the
    workflow's newest (from 1); a digest seen before adds nothing. Result: the version
    number of this source (int), to record on the executions it runs.
    """

    workflow: WorkflowRecord


@attrs.frozen
class CollectionWrite:
    """Apply ``action`` to a collection and save ``job`` as succeeded with the action's
    result as its output, in one transaction: both take effect or neither does.

    Result: the action's result (see each action). If ``job`` (execution, node, scope,
    attempt) was already saved as succeeded, nothing is applied again and the result is that
    job's output: a write is done once even when its node runs again. A failed action
    (a field name clashing with another in case only) stores nothing.
    """

    job: JobRecord
    action: CollectionAction


@attrs.frozen
class RequeueExecution:
    """Set an execution that ended in one of ``statuses`` back to ``queued`` (a retry),
    clearing its end time, output and error; its jobs stay. Result: True if it was set
    back, False if it does not exist or its status is not one of ``statuses`` (checked
    inside the transaction, so two retries cannot both win). ``workflow_version``, when
    given, replaces the recorded one (the definition the execution runs with now)."""

    id: str
    statuses: tuple[ExecutionStatus, ...] = ("failed", "timed_out", "cancelled")
    workflow_version: int | None = None


@attrs.frozen
class ParkExecution:
    """Park an execution on its ``waits``: save ``jobs`` (the waiting jobs, as
    ``running`` with their checkpoints), insert or replace the wait rows, and set the
    execution ``waiting``, atomically. Result: None."""

    id: str
    waits: tuple[WaitRecord, ...]
    jobs: tuple[JobRecord, ...] = ()


@attrs.frozen
class SaveCancelKeys:
    """Record what execution ``id``'s ``cancel_on`` rules match, as (event workflow,
    correlation value) pairs, so that an event accepted by any process sharing the
    store finds it (:meth:`~hookline.store._store.Store.cancel_targets`). Rows of an
    execution not yet stored (its acceptance may follow in the same batch) are kept.
    Result: None."""

    id: str
    keys: tuple[tuple[str, str], ...]


@attrs.frozen
class ClaimWaits:
    """End waits, each once: delete the wait rows chosen (of an execution still
    ``waiting``), save each one's job as ``succeeded`` with ``output`` at ``now``, and
    set its execution back to ``queued`` to resume, atomically. The execution's other
    waits are deleted with it (they park again when it resumes).

    Chosen by ``event`` and ``match`` (an event came), by ``execution_id`` (an
    operator's hand), or, with ``due``, every wait whose ``until`` is at most ``now``
    (timeouts). Up to ``limit`` rows. With ``status`` ``cancelled`` the jobs are
    recorded cancelled instead (the execution is being cancelled: it resumes only to
    record that). Result: the :class:`WaitRecord` rows claimed (another process, or an
    earlier claim, may have taken some already).
    """

    now: float
    output: Any
    status: JobStatus = "succeeded"
    event: str | None = None
    match: str | None = None
    execution_id: str | None = None
    due: bool = False
    limit: int = 1000


@attrs.frozen
class PruneExecutions:
    """Delete up to ``limit`` finished executions whose id sorts before ``before_id``
    (ids sort by creation time), oldest first, with their jobs. Live executions (queued,
    throttled, running, waiting) are never deleted. Result: how many executions were deleted."""

    before_id: str
    limit: int = 500


@attrs.frozen
class PruneDeliveries:
    """Delete up to ``limit`` deliveries whose id sorts before ``before_id``, oldest
    first; with ``verdict``, only deliveries of that verdict (refused ones have their
    own, shorter retention). Result: how many were deleted."""

    before_id: str
    limit: int = 500
    verdict: str | None = None


@attrs.frozen
class PruneIdempotency:
    """Delete up to ``limit`` idempotency records expired at ``now`` (wall time).
    Result: how many were deleted."""

    now: float
    limit: int = 500


WriteOp = (
    RecordDelivery
    | AcceptDelivery
    | UpdateExecution
    | SaveJob
    | SaveJobs
    | SaveAnswer
    | SaveWorkflow
    | CollectionWrite
    | RequeueExecution
    | ParkExecution
    | ClaimWaits
    | SaveCancelKeys
    | FormBatch
    | PruneExecutions
    | PruneDeliveries
    | PruneIdempotency
)

__all__ = [
    "AcceptDelivery",
    "ClaimWaits",
    "CollectionWrite",
    "FormBatch",
    "IdempotencyClaim",
    "IdempotencyRecord",
    "ParkExecution",
    "PruneDeliveries",
    "PruneExecutions",
    "PruneIdempotency",
    "RecordDelivery",
    "RequeueExecution",
    "SaveAnswer",
    "SaveCancelKeys",
    "SaveJob",
    "SaveJobs",
    "SaveWorkflow",
    "UpdateExecution",
    "WriteOp",
]
