"""What ending a parked wait writes, the same in every backend (see
:class:`~hookline.store._ops.ClaimWaits`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StoreError
from . import _rows
from ._ops import ClaimWaits, ParkExecution, SaveCancelKeys
from ._records import JobRecord, JobStatus, WaitRecord

#: The node type of every job a wait row stands for.
WAIT_TYPE = "wait"


def ended_job(wait: WaitRecord, status: JobStatus, output: Any, now: float) -> JobRecord:
    """The job record of ``wait``, ended with ``status`` and ``output`` at ``now``."""
    return JobRecord(
        execution_id=wait.execution_id,
        node=wait.node,
        type=WAIT_TYPE,
        status=status,
        attempt=wait.attempt,
        started_at=wait.started_at if wait.started_at is not None else now,
        finished_at=now,
        output=output,
        error="cancelled" if status == "cancelled" else None,
        scope=wait.scope,
    )


#: A connection's ``execute`` (sqlite3's, or psycopg's with ``?`` turned into ``%s``):
#: its cursor gives ``rowcount`` and ``fetchall()``.
Execute = Callable[[str, Sequence[Any]], Any]


_UPSERT_WAIT = (
    "INSERT INTO waits (execution_id, node, scope, attempt, workflow, event, correlation, until, "
    "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (execution_id, node, scope) DO UPDATE SET attempt = excluded.attempt, "
    "workflow = excluded.workflow, event = excluded.event, correlation = excluded.correlation, "
    "until = excluded.until, started_at = excluded.started_at"
)
_SET_WAITING = "UPDATE executions SET status = 'waiting' WHERE id = ?"
# Candidates only: each is then deleted on its own, and only a delete that found its
# row ends that wait (two processes claiming at once: one delete waits for the other's
# commit, then finds nothing).
_CANDIDATES = (
    "SELECT w.execution_id, w.node, w.scope, w.attempt, w.workflow, w.event, w.correlation, "
    "w.until, w.started_at FROM waits w "
    "JOIN executions e ON e.id = w.execution_id WHERE e.status = 'waiting' AND "
)
_BY_EVENT = _CANDIDATES + "w.event = ? AND w.correlation = ? ORDER BY w.execution_id LIMIT ?"
_BY_EXECUTION = _CANDIDATES + "w.execution_id = ? ORDER BY w.node, w.scope LIMIT ?"
_DUE = _CANDIDATES + "w.until <= ? ORDER BY w.until LIMIT ?"
_DELETE_WAIT = "DELETE FROM waits WHERE execution_id = ? AND node = ? AND scope = ?"
_DELETE_OTHERS = "DELETE FROM waits WHERE execution_id = ?"
_RESUME = "UPDATE executions SET status = 'queued' WHERE id = ? AND status = 'waiting'"


_INSERT_CANCEL_KEY = (
    "INSERT INTO cancel_keys (event, correlation, execution_id) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
#: The live executions an event cancels (``cancel_on``), oldest first.
CANCEL_TARGETS = (
    "SELECT c.execution_id FROM cancel_keys c JOIN executions e ON e.id = c.execution_id "
    "WHERE c.event = ? AND c.correlation = ? "
    "AND e.status IN ('queued', 'throttled', 'running', 'waiting') ORDER BY c.execution_id"
)
#: A pruned execution's rows.
DELETE_CANCEL_KEYS = "DELETE FROM cancel_keys WHERE execution_id = ?"


def save_cancel_keys(execute: Execute, op: SaveCancelKeys) -> None:
    """Apply ``op`` with SQL (both SQL backends)."""
    for event, value in op.keys:
        execute(_INSERT_CANCEL_KEY, (event, value, op.id))


def park(
    execute: Execute, op: ParkExecution, save_jobs: Callable[[Sequence[JobRecord]], None]
) -> None:
    """Apply ``op`` with SQL (both SQL backends)."""
    save_jobs(op.jobs)
    for wait in op.waits:
        execute(_UPSERT_WAIT, _rows.wait_row(wait))
    if execute(_SET_WAITING, (op.id,)).rowcount == 0:
        raise StoreError(f"execution {op.id} does not exist or another process runs it")


def claim(
    execute: Execute, op: ClaimWaits, save_jobs: Callable[[Sequence[JobRecord]], None]
) -> list[WaitRecord]:
    """Apply ``op`` with SQL (both SQL backends); the waits it ended."""
    if op.event is not None:
        rows = execute(_BY_EVENT, (op.event, op.match or "", op.limit)).fetchall()
    elif op.execution_id is not None:
        rows = execute(_BY_EXECUTION, (op.execution_id, op.limit)).fetchall()
    elif op.due:
        rows = execute(_DUE, (op.now, op.limit)).fetchall()
    else:
        rows = []
    claimed = []
    for row in rows:
        wait = _rows.wait(row)
        if execute(_DELETE_WAIT, (wait.execution_id, wait.node, wait.scope)).rowcount == 1:
            claimed.append(wait)
            execute(_RESUME, (wait.execution_id,))
            # Its other waits, if any, park again when it resumes (their jobs closed
            # as interrupted, their checkpoints kept): no row outlives its execution.
            execute(_DELETE_OTHERS, (wait.execution_id,))
    save_jobs([ended_job(wait, op.status, op.output, op.now) for wait in claimed])
    return claimed
