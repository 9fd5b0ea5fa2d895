"""The PostgreSQL backend: one write connection driven by the store actor, a small pool
of read connections, psycopg 3 in synchronous mode (the store actor calls it in worker
threads; psycopg's async mode is asyncio-only).

Every :meth:`PostgresBackend.apply` is one transaction. As in SQLite, the batch is
first tried bare; only when an op fails is it tried again with a savepoint per op, so
that one failing op is rolled back alone. Idempotency claims are decided by the primary
key of ``idempotency`` (``INSERT ... ON CONFLICT``), so two processes sharing the
database cannot both claim a key. The schema is in :mod:`._postgres_schema`, the
collections in :mod:`._postgres_collections`.

PostgreSQL's ``text`` cannot hold a NUL character: free text that may carry one (paths,
reasons, errors, order and idempotency keys) is stored with U+FFFD in its place.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import psycopg
from psycopg import conninfo

from ..errors import StoreClosed, StoreError
from ._backend import make_page
from ._collections import Filter, Record, Sort, check_collection
from ._encoding import pack, unpack
from ._ops import (
    AcceptDelivery,
    CollectionWrite,
    PruneDeliveries,
    PruneExecutions,
    PruneIdempotency,
    RecordDelivery,
    RequeueExecution,
    SaveAnswer,
    SaveJob,
    SaveWorkflow,
    UpdateExecution,
    WriteOp,
)
from ._postgres_collections import apply_action, list_collections, list_records, query_records
from ._postgres_rows import (
    SELECT_DELIVERIES,
    SELECT_EXECUTIONS,
    SELECT_IDEMPOTENCY,
    SELECT_VERSIONS,
    clean,
    delivery,
    delivery_row,
    execution,
    execution_row,
    idempotency,
    job,
    job_row,
    pack_answer,
    workflow,
    workflow_version,
)
from ._postgres_schema import migrate
from ._records import (
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WorkflowRecord,
    WorkflowVersionRecord,
)

__all__ = ["PostgresBackend", "redact_url"]

T = TypeVar("T")
Connection = psycopg.Connection[Any]

_CONNECT_TIMEOUT = 10

_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, workflow, received_at, method, path, headers, query, body, "
    "remote_addr, verdict, reason, status, execution_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, workflow, delivery_id, status, created_at, started_at, "
    "finished_at, context, output, error, order_key, workflow_version) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
_SELECT_JOBS = (
    "SELECT execution_id, node, type, status, attempt, started_at, finished_at, output, "
    "error, log, scope FROM jobs WHERE execution_id = %s ORDER BY seq"
)
_SELECT_WORKFLOWS = (
    "SELECT key, title, enabled, source, digest, updated_at FROM workflows ORDER BY key"
)
# Unset fields arrive as NULL and keep the stored value; output has its own flag
# because None is a value an execution may end with.
_UPDATE_EXECUTION = (
    "UPDATE executions SET status = %s, started_at = COALESCE(%s, started_at), "
    "finished_at = COALESCE(%s, finished_at), error = COALESCE(%s, error), "
    "output = CASE WHEN %s THEN %s::bytea ELSE output END WHERE id = %s"
)
_UPDATE_DELIVERY_STATUS = "UPDATE deliveries SET status = %s WHERE id = %s"
# Only the claimant's record: once a key expired and was claimed again, it is not ours.
_UPDATE_IDEMPOTENCY_ANSWER = (
    "UPDATE idempotency SET answer = %s WHERE workflow = %s AND key = %s "
    "AND execution_id = (SELECT execution_id FROM deliveries WHERE id = %s)"
)
# A retry: only from an ended status, checked in the same statement.
_REQUEUE_EXECUTION = (
    "UPDATE executions SET status = 'queued', finished_at = NULL, output = NULL, "
    "error = NULL WHERE id = %s AND status = ANY(%s::text[])"
)
# Retention: small batches, oldest first, by id (ids sort by creation time).
_PRUNE_EXECUTIONS = (
    "WITH doomed AS (SELECT id FROM executions WHERE id < %s "
    "AND status NOT IN ('queued', 'running') ORDER BY id LIMIT %s), "
    "jobs_gone AS (DELETE FROM jobs WHERE execution_id IN (SELECT id FROM doomed)) "
    "DELETE FROM executions WHERE id IN (SELECT id FROM doomed)"
)
_PRUNE_DELIVERIES = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE id < %s ORDER BY id LIMIT %s)"
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


class PostgresBackend:
    """A :class:`~hookline.store._backend.StoreBackend` on a PostgreSQL database.

    ``url`` is a libpq connection URL (``postgresql://user:secret@host:5432/hookline``;
    its query may carry libpq options such as ``sslmode`` or ``options``); tables go into
    the connection's current schema. ``readers`` bounds the read connections (one per
    thread reading at once). Raises ValueError for ``readers < 1``; nothing connects
    before :meth:`open`. A broken connection (the server restarted) is replaced on the
    next use; the call that found it broken raises StoreError.
    """

    threaded = True

    def __init__(self, url: str, *, readers: int = 4) -> None:
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.url = url
        self.readers = readers
        self._writer: Connection | None = None
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._reader_slots = threading.BoundedSemaphore(readers)

    def __repr__(self) -> str:
        return f"PostgresBackend({redact_url(self.url)!r})"

    def _connect(self) -> Connection:
        try:
            given = conninfo.conninfo_to_dict(self.url)
            defaults: dict[str, str | int] = {
                "connect_timeout": _CONNECT_TIMEOUT,
                "application_name": "hookline",
            }
            extra = {key: value for key, value in defaults.items() if key not in given}
            return psycopg.connect(conninfo.make_conninfo(self.url, **extra), autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"could not connect to {redact_url(self.url)}: {exc}") from exc

    def open(self) -> None:
        if self._writer is not None:
            return
        conn = self._connect()
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._writer = conn

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if writer is not None:
            writer.close()

    # -- writes ------------------------------------------------------------------------

    def _write_connection(self) -> Connection:
        conn = self._writer
        if conn is None:
            raise StoreClosed(f"the store on {redact_url(self.url)} is closed")
        if _gone(conn):
            # The server went away since the last batch: try a fresh connection.
            conn.close()
            conn = self._writer = self._connect()
        return conn

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        conn = self._write_connection()
        try:
            try:
                # Ops rarely fail: try the batch bare first, and only after a failure
                # start over with an op-by-op savepoint.
                with conn.transaction():
                    results: list[object] = [_apply_one(conn, op) for op in ops]
            except _OP_ERRORS:
                if _gone(conn):
                    raise
                with conn.transaction():
                    results = [_apply_alone(conn, op) for op in ops]
        except psycopg.Error as exc:
            raise StoreError(f"could not commit to {redact_url(self.url)}: {exc}") from exc
        return results

    # -- reads -------------------------------------------------------------------------

    def _read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a read connection. A pooled connection found broken (the server
        restarted) is dropped and the read tried once more on a new one."""
        with self._reader_slots:
            for attempt in (1, 2):
                with self._lock:
                    if self._writer is None:
                        raise StoreClosed(f"the store on {redact_url(self.url)} is closed")
                    conn = self._idle.pop() if self._idle else None
                pooled = conn is not None
                try:
                    if conn is None:
                        conn = self._connect()
                    return fn(conn)
                except psycopg.Error as exc:
                    if not (pooled and attempt == 1 and conn is not None and _gone(conn)):
                        raise StoreError(f"could not read {redact_url(self.url)}: {exc}") from exc
                finally:
                    if conn is not None:
                        self._release(conn)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _release(self, conn: Connection) -> None:
        with self._lock:
            keep = self._writer is not None and not _gone(conn)
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    def _one(self, sql: str, args: tuple[Any, ...], row_to: Callable[[Any], T]) -> T | None:
        row = self._read(lambda conn: conn.execute(sql, args).fetchone())
        return None if row is None else row_to(row)

    def _all(self, sql: str, args: Sequence[Any], row_to: Callable[[Any], T]) -> list[T]:
        rows = self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [row_to(row) for row in rows]

    def get_execution(self, id: str) -> ExecutionRecord | None:
        return self._one(SELECT_EXECUTIONS + " WHERE id = %s", (id,), execution)

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        return self._all(_SELECT_JOBS, (execution_id,), job)

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        where, args = _filters(
            ("workflow = %s", workflow), ("status = %s", status), ("id < %s", cursor)
        )
        sql = SELECT_EXECUTIONS + where + " ORDER BY id DESC LIMIT %s"
        rows = self._all(sql, [*args, limit + 1], execution)
        return make_page(rows, limit, _record_id)

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        where, args = _filters(
            ("workflow = %s", workflow), ("verdict = %s", verdict), ("id < %s", cursor)
        )
        sql = SELECT_DELIVERIES + where + " ORDER BY id DESC LIMIT %s"
        rows = self._all(sql, [*args, limit + 1], delivery)
        return make_page(rows, limit, _record_id)

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        return self._one(SELECT_DELIVERIES + " WHERE id = %s", (id,), delivery)

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        return self._one(SELECT_IDEMPOTENCY, (workflow, clean(key), now), idempotency)

    def unfinished_executions(self) -> list[ExecutionRecord]:
        sql = SELECT_EXECUTIONS + " WHERE status IN ('queued', 'running') ORDER BY id"
        return self._all(sql, (), execution)

    def list_workflows(self) -> list[WorkflowRecord]:
        return self._all(_SELECT_WORKFLOWS, (), workflow)

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        where = "" if cursor is None else " AND version < %s"
        args = (workflow,) if cursor is None else (workflow, cursor)
        sql = SELECT_VERSIONS + where + " ORDER BY version DESC LIMIT %s"
        rows = self._all(sql, [*args, limit + 1], workflow_version)
        return make_page(rows, limit, lambda v: str(v.version))

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        sql = SELECT_VERSIONS + " AND version = %s"
        return self._one(sql, (workflow, version), workflow_version)

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        check_collection(collection)
        return self._read(lambda conn: query_records(conn, collection, where, order_by, limit))

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        check_collection(collection)
        rows = self._read(lambda conn: list_records(conn, collection, limit + 1, cursor))
        return make_page(rows, limit, lambda record: str(record["id"]))

    def list_collections(self) -> list[str]:
        return self._read(list_collections)


# -- the write path --------------------------------------------------------------------


# A string psycopg cannot encode (a lone surrogate) fails its op, not the batch.
_OP_ERRORS = (psycopg.Error, StoreError, OverflowError, UnicodeError)


def _apply_alone(conn: Connection, op: WriteOp) -> object:
    """Apply ``op`` under its own savepoint: if it fails, it alone is undone and its
    error is its result."""
    try:
        with conn.transaction():
            return _apply_one(conn, op)
    except _OP_ERRORS as exc:
        # A lost connection is no op's fault: the batch fails as a whole.
        if _gone(conn):
            raise
        return _op_error(op, exc)


def _apply_one(conn: Connection, op: WriteOp) -> object:
    if isinstance(op, SaveJob):
        conn.execute(_UPSERT_JOB, job_row(op.job))
        return None
    if isinstance(op, CollectionWrite):
        return _collection_write(conn, op)
    if isinstance(op, UpdateExecution):
        output = pack(op.output) if op.has_output else None
        error = None if op.error is None else clean(op.error)
        args = (op.status, op.started_at, op.finished_at, error, op.has_output, output, op.id)
        if conn.execute(_UPDATE_EXECUTION, args).rowcount == 0:
            raise StoreError(f"execution {op.id} does not exist")
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
    if isinstance(op, RequeueExecution):
        return conn.execute(_REQUEUE_EXECUTION, (op.id, list(op.statuses))).rowcount == 1
    if isinstance(op, PruneExecutions):
        return conn.execute(_PRUNE_EXECUTIONS, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneDeliveries):
        return conn.execute(_PRUNE_DELIVERIES, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneIdempotency):
        return conn.execute(_PRUNE_IDEMPOTENCY, (op.now, op.limit)).rowcount
    raise StoreError(f"unknown write operation {type(op).__name__}")


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
                SELECT_IDEMPOTENCY, (execution.workflow, clean(claim.key), now)
            ).fetchone()
            if row is None:  # cannot happen: the conflicting row is live and locked
                raise StoreError(f"idempotency key {claim.key!r} is claimed but not found")
            earlier = idempotency(row)
            duplicate = delivery_row(
                delivery, verdict="duplicate", execution_id=earlier.execution_id
            )
            conn.execute(_INSERT_DELIVERY, duplicate)
            return earlier
    conn.execute(_INSERT_DELIVERY, delivery_row(delivery, execution_id=execution.id))
    conn.execute(_INSERT_EXECUTION, execution_row(execution))
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


def _op_error(op: WriteOp, exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"{type(op).__name__} failed: {exc}")
    error.__cause__ = exc
    return error


def _filters(*pairs: tuple[str, str | None]) -> tuple[str, list[Any]]:
    """A WHERE clause made of fixed clauses (``pairs`` name them), values bound."""
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in pairs:
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _gone(conn: Connection) -> bool:
    """Whether ``conn`` is closed or lost its server."""
    return conn.closed or conn.broken


def _record_id(record: ExecutionRecord | DeliveryRecord) -> str:
    return record.id


def redact_url(url: str) -> str:
    """``url`` with its password (if it has one) made ``***``, for messages and logs;
    ``url`` may also be a ``key=value`` connection string."""
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))
