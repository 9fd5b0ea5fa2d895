"""The PostgreSQL write path: each write operation as SQL on the writer connection.

:func:`apply_one` applies an op inside the caller's transaction; :func:`apply_alone`
wraps it in a savepoint so that a failing op is undone alone and its error becomes its
result, unless the connection was lost (then the batch fails whole). The backend
(:mod:`._postgres`) owns the transaction around a batch. Idempotency claims are decided
by the primary key of ``idempotency`` (``INSERT ... ON CONFLICT``), so two processes
sharing the database cannot both claim a key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import psycopg

from ..errors import StoreError
from ._batch_sql import form_postgres
from ._batching import FormBatch
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
from ._postgres_collections import apply_action
from ._postgres_rows import (
    clean,
    delivery_row,
    execution_row,
    job_row,
)
from ._records import IdempotencyRecord, JobRecord, WorkflowRecord
from ._rows import idempotency, op_error, pack_answer
from ._sql_reads import GET_IDEMPOTENCY
from ._waits import claim, park, save_cancel_keys

__all__ = ["OP_ERRORS", "apply_alone", "apply_one", "gone", "percent"]

Connection = psycopg.Connection[Any]


_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, workflow, received_at, method, path, headers, query, body, "
    "remote_addr, verdict, reason, status, execution_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, workflow, delivery_id, status, created_at, started_at, "
    "finished_at, context, output, error, order_key, workflow_version, flow_key) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# A job saved again completes its row in place; a row saved as succeeded (by a
# collection write, with its write) keeps its outcome.
_UPSERT_JOB = (
    "INSERT INTO jobs (execution_id, node, type, status, attempt, started_at, finished_at, "
    "output, error, log, scope) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (execution_id, node, scope, attempt) DO UPDATE SET type = excluded.type, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, log = excluded.log, "
    "status = CASE WHEN jobs.status = 'succeeded' THEN jobs.status ELSE excluded.status END, "
    "output = CASE WHEN jobs.status = 'succeeded' THEN jobs.output ELSE excluded.output END, "
    "error = CASE WHEN jobs.status = 'succeeded' THEN jobs.error ELSE excluded.error END"
)
_SELECT_JOB_OUTCOME = (
    "SELECT status, output FROM jobs "
    "WHERE execution_id = %s AND node = %s AND scope = %s AND attempt = %s"
)
# The claim: a new key, or one whose record expired, is ours (a row comes back);
# a live key is someone else's (no row). The conflicting row stays locked until COMMIT.
_CLAIM_IDEMPOTENCY = (
    "INSERT INTO idempotency (workflow, key, body_hash, execution_id, created_at, "
    "expires_at, answer) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (workflow, key) DO UPDATE SET body_hash = excluded.body_hash, "
    "execution_id = excluded.execution_id, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at, answer = excluded.answer "
    "WHERE idempotency.expires_at <= excluded.created_at RETURNING execution_id"
)
# Unset fields arrive as NULL and keep the stored value; output has its own flag
# because None is a value an execution may end with.
# Only the owner writes an execution: a process whose executions were taken over (it
# stopped heartbeating) must not overwrite what their new owner records.
_UPDATE_EXECUTION = (
    "UPDATE executions SET status = %s, started_at = COALESCE(%s, started_at), "
    "finished_at = COALESCE(%s, finished_at), error = COALESCE(%s, error), "
    "output = CASE WHEN %s THEN %s::bytea ELSE output END WHERE id = %s "
    "AND (owner IS NULL OR owner = NULLIF(current_setting('hookline.worker', true), ''))"
)
_UPDATE_DELIVERY_STATUS = "UPDATE deliveries SET status = %s WHERE id = %s"
# Only the claimant's record: once a key expired and was claimed again, it is not ours.
_UPDATE_IDEMPOTENCY_ANSWER = (
    "UPDATE idempotency SET answer = %s WHERE workflow = %s AND key = %s "
    "AND execution_id = (SELECT execution_id FROM deliveries WHERE id = %s)"
)
# A retry: only from an ended status, checked in the same statement.
# The process retrying an execution runs it: it becomes its owner.
_REQUEUE_EXECUTION = (
    "UPDATE executions SET status = 'queued', finished_at = NULL, output = NULL, "
    "error = NULL, workflow_version = COALESCE(%s, workflow_version), "
    # A retry starts afresh; an unfinished one requeued keeps its cancel request.
    "cancel_requested = cancel_requested "
    "AND status IN ('queued', 'throttled', 'running', 'waiting'), "
    "owner = COALESCE(NULLIF(current_setting('hookline.worker', true), ''), owner) "
    "WHERE id = %s AND status = ANY(%s::text[])"
)
# The first key of the two-key advisory lock every ClaimWaits holds ("wt").
_WAITS_LOCK = 0x7774
# A wait ended (ClaimWaits): the claiming process resumes the execution, so it owns it.
_OWN_RESUMED = (
    "UPDATE executions SET owner = COALESCE(NULLIF(current_setting('hookline.worker', true), ''), "
    "owner) WHERE id = ANY(%s::text[])"
)
# Retention: small batches, oldest first, by id (ids sort by creation time).
_PRUNE_EXECUTIONS = (
    "WITH doomed AS (SELECT id FROM executions WHERE id < %s "
    "AND status NOT IN ('queued', 'throttled', 'running', 'waiting') ORDER BY id LIMIT %s), "
    "jobs_gone AS (DELETE FROM jobs WHERE execution_id IN (SELECT id FROM doomed)), "
    "keys_gone AS (DELETE FROM cancel_keys WHERE execution_id IN (SELECT id FROM doomed)) "
    "DELETE FROM executions WHERE id IN (SELECT id FROM doomed)"
)
_PRUNE_DELIVERIES = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE id < %s ORDER BY id LIMIT %s)"
)
# Refused deliveries' own retention: a range of the (verdict, id) index.
_PRUNE_DELIVERIES_OF = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE verdict = %s AND id < %s ORDER BY id LIMIT %s)"
)
_PRUNE_IDEMPOTENCY = (
    "DELETE FROM idempotency WHERE (workflow, key) IN (SELECT workflow, key "
    "FROM idempotency WHERE expires_at <= %s ORDER BY expires_at LIMIT %s)"
)
# The first key of the two-key advisory lock that numbers a workflow's versions ("wv").
_VERSION_LOCK = 0x7776
_SELECT_VERSION_OF_DIGEST = (
    "SELECT version FROM workflow_versions WHERE workflow = %s AND digest = %s"
)
_INSERT_VERSION = (
    "INSERT INTO workflow_versions (workflow, version, digest, source, created_at) "
    "SELECT %s, COALESCE(MAX(version), 0) + 1, %s, %s, %s FROM workflow_versions "
    "WHERE workflow = %s RETURNING version"
)
_UPSERT_WORKFLOW = (
    "INSERT INTO workflows (key, title, enabled, source, digest, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET title = excluded.title, "
    "enabled = excluded.enabled, source = excluded.source, digest = excluded.digest, "
    "updated_at = excluded.updated_at"
)


# A string psycopg cannot encode (a lone surrogate) fails its op, not the batch.
# As in SQLite: one bad op (a lone surrogate, a number out of range) fails alone.
OP_ERRORS = (psycopg.Error, StoreError, OverflowError, ValueError, TypeError)


def apply_alone(conn: Connection, op: WriteOp) -> object:
    """Apply ``op`` under its own savepoint: if it fails, it alone is undone and its
    error is its result."""
    try:
        with conn.transaction():
            return apply_one(conn, op)
    except OP_ERRORS as exc:
        # A lost connection is no op's fault: the batch fails as a whole.
        if gone(conn):
            raise
        return op_error(op, exc)


def apply_one(conn: Connection, op: WriteOp) -> object:
    if isinstance(op, SaveJob):
        conn.execute(_UPSERT_JOB, job_row(op.job))
        return None
    if isinstance(op, SaveJobs):
        conn.cursor().executemany(_UPSERT_JOB, [job_row(job) for job in op.jobs])
        return None
    if isinstance(op, CollectionWrite):
        return _collection_write(conn, op)
    if isinstance(op, UpdateExecution):
        output = pack(op.output) if op.has_output else None
        error = None if op.error is None else clean(op.error)
        args = (op.status, op.started_at, op.finished_at, error, op.has_output, output, op.id)
        if conn.execute(_UPDATE_EXECUTION, args).rowcount == 0:
            raise StoreError(f"execution {op.id} does not exist or another process runs it")
        return None
    if isinstance(op, AcceptDelivery):
        return _accept(conn, op)
    if isinstance(op, RecordDelivery):
        conn.execute(_INSERT_DELIVERY, delivery_row(op.delivery))
        return None
    if isinstance(op, SaveAnswer):
        if conn.execute(_UPDATE_DELIVERY_STATUS, (op.answer.status, op.delivery_id)).rowcount == 0:
            raise StoreError(f"delivery {op.delivery_id} does not exist")
        if op.workflow is not None and op.key is not None:
            conn.execute(
                _UPDATE_IDEMPOTENCY_ANSWER,
                (pack_answer(op.answer), op.workflow, clean(op.key), op.delivery_id),
            )
        return None
    if isinstance(op, SaveWorkflow):
        w = op.workflow
        row = (w.key, clean(w.title), w.enabled, clean(w.source), w.digest, w.updated_at)
        conn.execute(_UPSERT_WORKFLOW, row)
        return _save_version(conn, w)
    if isinstance(op, FormBatch):
        return form_postgres(conn, op)
    if isinstance(op, RequeueExecution):
        requeue = (op.workflow_version, op.id, list(op.statuses))
        return conn.execute(_REQUEUE_EXECUTION, requeue).rowcount == 1
    if isinstance(op, ParkExecution):
        park(functools.partial(_execute, conn), op, functools.partial(_save_jobs, conn))
        return None
    if isinstance(op, ClaimWaits):
        # Claims take turns: two batches claiming the same waits in different orders
        # would deadlock on their rows.
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_WAITS_LOCK,))
        execute = functools.partial(_execute, conn)
        claimed = claim(execute, op, functools.partial(_save_jobs, conn))
        if claimed:  # the process that ended a wait resumes its execution: it owns it now
            conn.execute(_OWN_RESUMED, ([wait.execution_id for wait in claimed],))
        return claimed
    if isinstance(op, SaveCancelKeys):
        save_cancel_keys(functools.partial(_execute, conn), op)
        return None
    if isinstance(op, PruneExecutions):
        return conn.execute(_PRUNE_EXECUTIONS, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneDeliveries):
        if op.verdict is not None:
            refused = (op.verdict, op.before_id, op.limit)
            return conn.execute(_PRUNE_DELIVERIES_OF, refused).rowcount
        return conn.execute(_PRUNE_DELIVERIES, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneIdempotency):
        return conn.execute(_PRUNE_IDEMPOTENCY, (op.now, op.limit)).rowcount
    raise StoreError(f"unknown write operation {type(op).__name__}")


def _execute(conn: Connection, sql: str, args: Sequence[Any]) -> psycopg.Cursor[Any]:
    return conn.execute(percent(sql), args)


def _save_jobs(conn: Connection, jobs: Sequence[JobRecord]) -> None:
    if jobs:
        conn.cursor().executemany(_UPSERT_JOB, [job_row(job) for job in jobs])


def _accept(conn: Connection, op: AcceptDelivery) -> IdempotencyRecord | None:
    delivery, execution, claim = op.delivery, op.execution, op.claim
    now = delivery.received_at
    if claim is not None:
        answer = None if op.answer is None else pack_answer(op.answer)
        claim_args = (
            execution.workflow,
            clean(claim.key),
            claim.body_hash,
            execution.id,
            now,
            claim.expires_at,
            answer,
        )
        if conn.execute(_CLAIM_IDEMPOTENCY, claim_args).fetchone() is None:
            row = conn.execute(
                percent(GET_IDEMPOTENCY), (execution.workflow, clean(claim.key), now)
            ).fetchone()
            if row is None:  # cannot happen: the conflicting row is live and locked
                raise StoreError(f"idempotency key {claim.key!r} is claimed but not found")
            return idempotency(row)
    conn.execute(_INSERT_DELIVERY, delivery_row(delivery, execution_id=execution.id))
    conn.execute(_INSERT_EXECUTION, execution_row(execution))
    if op.jobs:
        conn.cursor().executemany(_UPSERT_JOB, [job_row(job) for job in op.jobs])
    return None


def _save_version(conn: Connection, w: WorkflowRecord) -> int:
    # Processes saving the same workflow at once must not both take the next number.
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_VERSION_LOCK, w.key))
    row = conn.execute(_SELECT_VERSION_OF_DIGEST, (w.key, w.digest)).fetchone()
    if row is None:
        args = (w.key, w.digest, clean(w.source), w.updated_at, w.key)
        row = conn.execute(_INSERT_VERSION, args).fetchone()
    if row is None:  # cannot happen: INSERT ... SELECT of an aggregate is one row
        raise StoreError(f"no version was numbered for workflow {w.key}")
    return int(row[0])


def _collection_write(conn: Connection, op: CollectionWrite) -> object:
    job = op.job
    identity = (job.execution_id, job.node, job.scope, job.attempt)
    row = conn.execute(_SELECT_JOB_OUTCOME, identity).fetchone()
    if row is not None and row[0] == "succeeded":
        return unpack(row[1])
    result = apply_action(conn, op.action)
    conn.execute(_UPSERT_JOB, job_row(attrs.evolve(job, status="succeeded", output=result)))
    return result


@functools.cache
def percent(sql: str) -> str:
    """``sql`` (written with ``?``, as :mod:`._sql_reads` is) with psycopg's ``%s``."""
    return sql.replace("?", "%s")


def gone(conn: Connection) -> bool:
    """Whether ``conn`` is closed or lost its server."""
    return conn.closed or conn.broken
