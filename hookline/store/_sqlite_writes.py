"""The SQLite write path: each write operation as SQL on the writer connection.

:func:`apply_one` applies an op inside the caller's transaction; :func:`apply_alone`
wraps it in a savepoint so that a failing op is undone alone and its error becomes its
result. The backend (:mod:`._sqlite`) owns the transaction around a batch. The column
lists are spelled out in full in each statement: SQL as literals, values always bound.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence

import attrs

from ..errors import StoreError
from . import _rows
from ._batch_sql import form_sqlite
from ._batching import FormBatch
from ._collections_sql import apply_action
from ._encoding import pack, unpack
from ._ops import (
    AcceptDelivery,
    ClaimWaits,
    CollectionWrite,
    ParkExecution,
    PruneDeliveries,
    PruneExecutions,
    PruneIdempotency,
    RecordDelivery,
    RequeueExecution,
    SaveAnswer,
    SaveCancelKeys,
    SaveJob,
    SaveJobs,
    SaveWorkflow,
    UpdateExecution,
    WriteOp,
)
from ._records import IdempotencyRecord, JobRecord, WorkflowRecord
from ._sql_reads import GET_IDEMPOTENCY
from ._waits import DELETE_CANCEL_KEYS, claim, park, save_cancel_keys

__all__ = ["OP_ERRORS", "apply_alone", "apply_one"]

_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, workflow, received_at, method, path, headers, query, body, "
    "remote_addr, verdict, reason, status, execution_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, workflow, delivery_id, status, created_at, started_at, "
    "finished_at, context, output, error, order_key, workflow_version, flow_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A job saved again completes its row in place; a row saved as succeeded (by a
# collection write, with its write) keeps its outcome.
_UPSERT_JOB = (
    "INSERT INTO jobs (execution_id, node, type, status, attempt, started_at, finished_at, "
    "output, error, log, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (execution_id, node, scope, attempt) DO UPDATE SET type = excluded.type, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, log = excluded.log, "
    "status = CASE WHEN jobs.status = 'succeeded' THEN jobs.status ELSE excluded.status END, "
    "output = CASE WHEN jobs.status = 'succeeded' THEN jobs.output ELSE excluded.output END, "
    "error = CASE WHEN jobs.status = 'succeeded' THEN jobs.error ELSE excluded.error END"
)
_SELECT_JOB_OUTCOME = (
    "SELECT status, output FROM jobs "
    "WHERE execution_id = ? AND node = ? AND scope = ? AND attempt = ?"
)
_REPLACE_IDEMPOTENCY = (
    "INSERT OR REPLACE INTO idempotency (workflow, key, body_hash, execution_id, created_at, "
    "expires_at, answer) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Unset fields arrive as NULL and keep the stored value; output has its own flag
# because None is a value an execution may end with.
_UPDATE_EXECUTION = (
    "UPDATE executions SET status = ?, started_at = COALESCE(?, started_at), "
    "finished_at = COALESCE(?, finished_at), error = COALESCE(?, error), "
    "output = CASE WHEN ? THEN ? ELSE output END WHERE id = ?"
)
_UPDATE_DELIVERY_STATUS = "UPDATE deliveries SET status = ? WHERE id = ?"
# Only the claimant's record: once a key expired and was claimed again, it is not ours.
_UPDATE_IDEMPOTENCY_ANSWER = (
    "UPDATE idempotency SET answer = ? WHERE workflow = ? AND key = ? "
    "AND execution_id = (SELECT execution_id FROM deliveries WHERE id = ?)"
)
# A retry: only from an ended status, checked in the same statement.
_REQUEUE_EXECUTION = (
    "UPDATE executions SET status = 'queued', finished_at = NULL, output = NULL, "
    "error = NULL, workflow_version = COALESCE(?, workflow_version) "
    "WHERE id = ? AND status IN (SELECT value FROM json_each(?))"
)
# Retention: small batches, oldest first, by id (ids sort by creation time), so each
# batch is a range scan of the primary key and never holds the writer for long.
_PRUNE_EXECUTIONS = (
    "SELECT id FROM executions WHERE id < ? "
    "AND status NOT IN ('queued', 'throttled', 'running', 'waiting') ORDER BY id LIMIT ?"
)
_DELETE_EXECUTION_JOBS = "DELETE FROM jobs WHERE execution_id = ?"
_DELETE_EXECUTION = "DELETE FROM executions WHERE id = ?"
_PRUNE_DELIVERIES = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE id < ? ORDER BY id LIMIT ?)"
)
# Refused deliveries' own retention: a range of the (verdict, id) index.
_PRUNE_DELIVERIES_OF = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE verdict = ? AND id < ? ORDER BY id LIMIT ?)"
)
_PRUNE_IDEMPOTENCY = (
    "DELETE FROM idempotency WHERE rowid IN "
    "(SELECT rowid FROM idempotency WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
)
_REPLACE_WORKFLOW = (
    "INSERT OR REPLACE INTO workflows (key, title, enabled, source, digest, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_VERSION_OF_DIGEST = (
    "SELECT version FROM workflow_versions WHERE workflow = ? AND digest = ?"
)
_INSERT_VERSION = (
    "INSERT INTO workflow_versions (workflow, version, digest, source, created_at) "
    "SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ? FROM workflow_versions WHERE workflow = ? "
    "RETURNING version"
)


# What an op may fail with alone: a constraint, a value the encoder refuses (a lone
# surrogate: StoreError from pack, UnicodeEncodeError from a bound column), a number out of
# range. One bad op must never fail the writes batched with it (issue 13, finding 4).
OP_ERRORS = (sqlite3.Error, StoreError, OverflowError, ValueError, TypeError)


def apply_alone(conn: sqlite3.Connection, op: WriteOp) -> object:
    """Apply ``op`` under its own savepoint: if it fails, it alone is undone and its
    error is its result."""
    conn.execute("SAVEPOINT op")
    try:
        result = apply_one(conn, op)
    except OP_ERRORS as exc:
        # If the error ended the whole transaction, ROLLBACK TO fails and so does the
        # batch, as it must.
        conn.execute("ROLLBACK TO op")
        conn.execute("RELEASE op")
        return _rows.op_error(op, exc)
    conn.execute("RELEASE op")
    return result


def apply_one(conn: sqlite3.Connection, op: WriteOp) -> object:
    if isinstance(op, SaveJob):
        conn.execute(_UPSERT_JOB, _rows.job_row(op.job))
        return None
    if isinstance(op, SaveJobs):
        conn.executemany(_UPSERT_JOB, [_rows.job_row(job) for job in op.jobs])
        return None
    if isinstance(op, CollectionWrite):
        return _collection_write(conn, op)
    if isinstance(op, UpdateExecution):
        output = pack(op.output) if op.has_output else None
        args = (op.status, op.started_at, op.finished_at, op.error, op.has_output, output, op.id)
        if conn.execute(_UPDATE_EXECUTION, args).rowcount == 0:
            raise StoreError(f"execution {op.id} does not exist")
        return None
    if isinstance(op, AcceptDelivery):
        return _accept(conn, op)
    if isinstance(op, RecordDelivery):
        conn.execute(_INSERT_DELIVERY, _rows.delivery_row(op.delivery))
        return None
    if isinstance(op, SaveAnswer):
        if conn.execute(_UPDATE_DELIVERY_STATUS, (op.answer.status, op.delivery_id)).rowcount == 0:
            raise StoreError(f"delivery {op.delivery_id} does not exist")
        if op.workflow is not None and op.key is not None:
            conn.execute(
                _UPDATE_IDEMPOTENCY_ANSWER,
                (_rows.pack_answer(op.answer), op.workflow, op.key, op.delivery_id),
            )
        return None
    if isinstance(op, SaveWorkflow):
        w = op.workflow
        conn.execute(
            _REPLACE_WORKFLOW, (w.key, w.title, int(w.enabled), w.source, w.digest, w.updated_at)
        )
        return _save_version(conn, w)
    if isinstance(op, FormBatch):
        return form_sqlite(conn, op)
    if isinstance(op, RequeueExecution):
        statuses = json.dumps(list(op.statuses))
        requeue = (op.workflow_version, op.id, statuses)
        return conn.execute(_REQUEUE_EXECUTION, requeue).rowcount == 1
    if isinstance(op, ParkExecution):
        park(conn.execute, op, functools.partial(_save_jobs, conn))
        return None
    if isinstance(op, ClaimWaits):
        return claim(conn.execute, op, functools.partial(_save_jobs, conn))
    if isinstance(op, SaveCancelKeys):
        save_cancel_keys(conn.execute, op)
        return None
    if isinstance(op, PruneExecutions):
        ids = [row[0] for row in conn.execute(_PRUNE_EXECUTIONS, (op.before_id, op.limit))]
        for id in ids:
            conn.execute(_DELETE_EXECUTION_JOBS, (id,))
            conn.execute(DELETE_CANCEL_KEYS, (id,))
            conn.execute(_DELETE_EXECUTION, (id,))
        return len(ids)
    if isinstance(op, PruneDeliveries):
        if op.verdict is not None:
            refused = (op.verdict, op.before_id, op.limit)
            return conn.execute(_PRUNE_DELIVERIES_OF, refused).rowcount
        return conn.execute(_PRUNE_DELIVERIES, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneIdempotency):
        return conn.execute(_PRUNE_IDEMPOTENCY, (op.now, op.limit)).rowcount
    raise StoreError(f"unknown write operation {type(op).__name__}")


def _save_jobs(conn: sqlite3.Connection, jobs: Sequence[JobRecord]) -> None:
    conn.executemany(_UPSERT_JOB, [_rows.job_row(job) for job in jobs])


def _accept(conn: sqlite3.Connection, op: AcceptDelivery) -> IdempotencyRecord | None:
    delivery, execution, claim = op.delivery, op.execution, op.claim
    now = delivery.received_at
    if claim is not None:
        row = conn.execute(GET_IDEMPOTENCY, (execution.workflow, claim.key, now)).fetchone()
        if row is not None:
            return _rows.idempotency(row)
    conn.execute(_INSERT_DELIVERY, _rows.delivery_row(delivery, execution_id=execution.id))
    conn.execute(_INSERT_EXECUTION, _rows.execution_row(execution))
    if op.jobs:
        conn.executemany(_UPSERT_JOB, [_rows.job_row(job) for job in op.jobs])
    if claim is not None:
        answer = None if op.answer is None else _rows.pack_answer(op.answer)
        conn.execute(
            _REPLACE_IDEMPOTENCY,
            (
                execution.workflow,
                claim.key,
                claim.body_hash,
                execution.id,
                now,
                claim.expires_at,
                answer,
            ),
        )
    return None


def _save_version(conn: sqlite3.Connection, w: WorkflowRecord) -> int:
    row = conn.execute(_SELECT_VERSION_OF_DIGEST, (w.key, w.digest)).fetchone()
    if row is None:
        row = conn.execute(
            _INSERT_VERSION, (w.key, w.digest, w.source, w.updated_at, w.key)
        ).fetchone()
    return int(row[0])


def _collection_write(conn: sqlite3.Connection, op: CollectionWrite) -> object:
    job = op.job
    identity = (job.execution_id, job.node, job.scope, job.attempt)
    row = conn.execute(_SELECT_JOB_OUTCOME, identity).fetchone()
    if row is not None and row[0] == "succeeded":
        return unpack(row[1])
    result = apply_action(conn, op.action)
    conn.execute(_UPSERT_JOB, _rows.job_row(attrs.evolve(job, status="succeeded", output=result)))
    return result
