"""The SQLite backend: one write connection driven by the store actor, a small pool of
read-only connections, WAL mode.

Every :meth:`SQLiteBackend.apply` is one ``BEGIN IMMEDIATE`` ... ``COMMIT``, with a
``SAVEPOINT`` per op so that one failing op is rolled back alone. The write path uses
the raw ``sqlite3`` connection (sqlite-utils' insert helpers cost more per row than the
statement itself); sqlite-utils builds the schema (:mod:`._schema`). Reads run on
their own read-only connections, so a list page never waits for a commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..errors import StoreClosed, StoreError
from ._backend import make_page
from ._collections import Filter, Record, Sort, check_collection
from ._collections_sql import apply_action, list_collections, list_records, query_records
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
from ._records import (
    Answer,
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from ._schema import migrate

__all__ = ["SYNCHRONOUS_MODES", "SQLiteBackend"]

T = TypeVar("T")

#: The values ``synchronous`` accepts (SQLite's ``PRAGMA synchronous``).
SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

_BUSY_TIMEOUT_MS = 5000

# The column lists are spelled out in full in each statement: SQL as literals, values
# always bound.
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, workflow, received_at, method, path, headers, query, body, "
    "remote_addr, verdict, reason, status, execution_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, workflow, delivery_id, status, created_at, started_at, "
    "finished_at, context, output, error, order_key, workflow_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
_SELECT_IDEMPOTENCY = (
    "SELECT workflow, key, body_hash, execution_id, created_at, expires_at, answer "
    "FROM idempotency WHERE workflow = ? AND key = ? AND expires_at > ?"
)
_SELECT_DELIVERIES = (
    "SELECT id, workflow, received_at, method, path, headers, query, body, remote_addr, "
    "verdict, reason, status, execution_id FROM deliveries"
)
_SELECT_EXECUTIONS = (
    "SELECT id, workflow, delivery_id, status, created_at, started_at, finished_at, "
    "context, output, error, order_key, workflow_version FROM executions"
)
_SELECT_JOBS = (
    "SELECT execution_id, node, type, status, attempt, started_at, finished_at, output, "
    "error, log, scope FROM jobs WHERE execution_id = ? ORDER BY seq"
)
_SELECT_WORKFLOWS = (
    "SELECT key, title, enabled, source, digest, updated_at FROM workflows ORDER BY key"
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
    "error = NULL WHERE id = ? AND status IN (SELECT value FROM json_each(?))"
)
# Retention: small batches, oldest first, by id (ids sort by creation time), so each
# batch is a range scan of the primary key and never holds the writer for long.
_PRUNE_EXECUTIONS = (
    "SELECT id FROM executions WHERE id < ? AND status NOT IN ('queued', 'running') "
    "ORDER BY id LIMIT ?"
)
_DELETE_EXECUTION_JOBS = "DELETE FROM jobs WHERE execution_id = ?"
_DELETE_EXECUTION = "DELETE FROM executions WHERE id = ?"
_PRUNE_DELIVERIES = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries WHERE id < ? ORDER BY id LIMIT ?)"
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
_SELECT_VERSIONS = (
    "SELECT workflow, version, digest, source, created_at FROM workflow_versions WHERE workflow = ?"
)


class SQLiteBackend:
    """A :class:`~hookline.store._backend.StoreBackend` on an SQLite file.

    ``synchronous`` is SQLite's durability level: ``FULL`` (the default) makes every
    commit survive a power loss; ``NORMAL`` survives a process crash only. ``readers``
    bounds the read-only connections (one per thread reading at once). Raises
    ValueError for an unknown ``synchronous`` or ``readers < 1``; the file is only
    touched by :meth:`open`.
    """

    threaded = True

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", readers: int = 4) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}")
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.path = Path(path)
        self.synchronous = mode
        self.readers = readers
        self._writer: sqlite3.Connection | None = None
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._reader_slots = threading.BoundedSemaphore(readers)

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r}, synchronous={self.synchronous!r})"

    def open(self) -> None:
        if self._writer is not None:
            return
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"could not open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not open {self.path}: {exc}") from exc
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

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        conn = self._writer
        if conn is None:
            raise StoreClosed(f"the store on {self.path} is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Ops rarely fail, and a savepoint per op costs about a third of the
                # batch: try the batch bare first, and only after a failure start over
                # with an op-by-op savepoint.
                results: list[object] = [_apply_one(conn, op) for op in ops]
            except _OP_ERRORS:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                results = [_apply_alone(conn, op) for op in ops]
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not commit to {self.path}: {exc}") from exc
            raise
        return results

    # -- reads -------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._reader_slots:
            with self._lock:
                if self._writer is None:
                    raise StoreClosed(f"the store on {self.path} is closed")
                conn = self._idle.pop() if self._idle else None
            try:
                if conn is None:
                    conn = self._connect_reader()
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"could not read {self.path}: {exc}") from exc
            finally:
                if conn is not None:
                    with self._lock:
                        keep = self._writer is not None
                        if keep:
                            self._idle.append(conn)
                    if not keep:
                        conn.close()

    def _connect_reader(self) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return conn

    def _one(self, sql: str, args: tuple[Any, ...], row_to: Callable[[Any], T]) -> T | None:
        with self._reader() as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else row_to(row)

    def _all(self, sql: str, args: Sequence[Any], row_to: Callable[[Any], T]) -> list[T]:
        with self._reader() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [row_to(row) for row in rows]

    def get_execution(self, id: str) -> ExecutionRecord | None:
        return self._one(_SELECT_EXECUTIONS + " WHERE id = ?", (id,), _execution)

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        return self._all(_SELECT_JOBS, (execution_id,), _job)

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        where, args = _filters(
            ("workflow = ?", workflow), ("status = ?", status), ("id < ?", cursor)
        )
        sql = _SELECT_EXECUTIONS + where + " ORDER BY id DESC LIMIT ?"
        rows = self._all(sql, [*args, limit + 1], _execution)
        return make_page(rows, limit, _record_id)

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        where, args = _filters(
            ("workflow = ?", workflow), ("verdict = ?", verdict), ("id < ?", cursor)
        )
        sql = _SELECT_DELIVERIES + where + " ORDER BY id DESC LIMIT ?"
        rows = self._all(sql, [*args, limit + 1], _delivery)
        return make_page(rows, limit, _record_id)

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        return self._one(_SELECT_DELIVERIES + " WHERE id = ?", (id,), _delivery)

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        return self._one(_SELECT_IDEMPOTENCY, (workflow, key, now), _idempotency)

    def unfinished_executions(self) -> list[ExecutionRecord]:
        sql = _SELECT_EXECUTIONS + " WHERE status IN ('queued', 'running') ORDER BY id"
        return self._all(sql, (), _execution)

    def list_workflows(self) -> list[WorkflowRecord]:
        return self._all(_SELECT_WORKFLOWS, (), _workflow)

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        where = "" if cursor is None else " AND version < ?"
        args = (workflow,) if cursor is None else (workflow, cursor)
        sql = _SELECT_VERSIONS + where + " ORDER BY version DESC LIMIT ?"
        rows = self._all(sql, [*args, limit + 1], _version)
        return make_page(rows, limit, lambda v: str(v.version))

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        return self._one(_SELECT_VERSIONS + " AND version = ?", (workflow, version), _version)

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        check_collection(collection)
        with self._reader() as conn:
            return query_records(conn, collection, where, order_by, limit)

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        check_collection(collection)
        with self._reader() as conn:
            rows = list_records(conn, collection, limit + 1, cursor)
        return make_page(rows, limit, lambda record: str(record["id"]))

    def list_collections(self) -> list[str]:
        with self._reader() as conn:
            return list_collections(conn)


# -- the write path --------------------------------------------------------------------


_OP_ERRORS = (sqlite3.Error, StoreError, OverflowError)


def _apply_alone(conn: sqlite3.Connection, op: WriteOp) -> object:
    """Apply ``op`` under its own savepoint: if it fails, it alone is undone and its
    error is its result."""
    conn.execute("SAVEPOINT op")
    try:
        result = _apply_one(conn, op)
    except _OP_ERRORS as exc:
        # If the error ended the whole transaction, ROLLBACK TO fails and so does the
        # batch, as it must.
        conn.execute("ROLLBACK TO op")
        conn.execute("RELEASE op")
        return _op_error(op, exc)
    conn.execute("RELEASE op")
    return result


def _apply_one(conn: sqlite3.Connection, op: WriteOp) -> object:
    if isinstance(op, SaveJob):
        conn.execute(_UPSERT_JOB, _job_row(op.job))
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
        conn.execute(_INSERT_DELIVERY, _delivery_row(op.delivery))
        return None
    if isinstance(op, SaveAnswer):
        if conn.execute(_UPDATE_DELIVERY_STATUS, (op.answer.status, op.delivery_id)).rowcount == 0:
            raise StoreError(f"delivery {op.delivery_id} does not exist")
        if op.workflow is not None and op.key is not None:
            conn.execute(
                _UPDATE_IDEMPOTENCY_ANSWER,
                (_pack_answer(op.answer), op.workflow, op.key, op.delivery_id),
            )
        return None
    if isinstance(op, SaveWorkflow):
        w = op.workflow
        conn.execute(
            _REPLACE_WORKFLOW, (w.key, w.title, int(w.enabled), w.source, w.digest, w.updated_at)
        )
        return _save_version(conn, w)
    if isinstance(op, RequeueExecution):
        statuses = json.dumps(list(op.statuses))
        return conn.execute(_REQUEUE_EXECUTION, (op.id, statuses)).rowcount == 1
    if isinstance(op, PruneExecutions):
        ids = [row[0] for row in conn.execute(_PRUNE_EXECUTIONS, (op.before_id, op.limit))]
        for id in ids:
            conn.execute(_DELETE_EXECUTION_JOBS, (id,))
            conn.execute(_DELETE_EXECUTION, (id,))
        return len(ids)
    if isinstance(op, PruneDeliveries):
        return conn.execute(_PRUNE_DELIVERIES, (op.before_id, op.limit)).rowcount
    if isinstance(op, PruneIdempotency):
        return conn.execute(_PRUNE_IDEMPOTENCY, (op.now, op.limit)).rowcount
    raise StoreError(f"unknown write operation {type(op).__name__}")


def _accept(conn: sqlite3.Connection, op: AcceptDelivery) -> IdempotencyRecord | None:
    delivery, execution, claim = op.delivery, op.execution, op.claim
    now = delivery.received_at
    if claim is not None:
        row = conn.execute(_SELECT_IDEMPOTENCY, (execution.workflow, claim.key, now)).fetchone()
        if row is not None:
            earlier = _idempotency(row)
            duplicate = _delivery_row(
                delivery, verdict="duplicate", execution_id=earlier.execution_id
            )
            conn.execute(_INSERT_DELIVERY, duplicate)
            return earlier
    conn.execute(_INSERT_DELIVERY, _delivery_row(delivery, execution_id=execution.id))
    conn.execute(_INSERT_EXECUTION, _execution_row(execution))
    if claim is not None:
        answer = None if op.answer is None else _pack_answer(op.answer)
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
    conn.execute(_UPSERT_JOB, _job_row(attrs.evolve(job, status="succeeded", output=result)))
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


# -- rows <-> records ------------------------------------------------------------------


def _delivery_row(
    d: DeliveryRecord, *, verdict: str | None = None, execution_id: str | None = None
) -> tuple[Any, ...]:
    return (
        d.id,
        d.workflow,
        d.received_at,
        d.method,
        d.path,
        pack(d.headers),
        pack(d.query),
        d.body,
        d.remote_addr,
        verdict or d.verdict,
        d.reason,
        d.status,
        execution_id or d.execution_id,
    )


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row[0],
        workflow=row[1],
        received_at=row[2],
        method=row[3],
        path=row[4],
        headers=unpack(row[5]),
        query=unpack(row[6]),
        body=row[7] or b"",
        remote_addr=row[8],
        verdict=row[9],
        reason=row[10],
        status=row[11],
        execution_id=row[12],
    )


def _execution_row(e: ExecutionRecord) -> tuple[Any, ...]:
    return (
        e.id,
        e.workflow,
        e.delivery_id,
        e.status,
        e.created_at,
        e.started_at,
        e.finished_at,
        pack(e.context),
        pack(e.output),
        e.error,
        e.order_key,
        e.workflow_version,
    )


def _execution(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=row[0],
        workflow=row[1],
        delivery_id=row[2],
        status=row[3],
        created_at=row[4],
        started_at=row[5],
        finished_at=row[6],
        context=unpack(row[7]),
        output=unpack(row[8]),
        error=row[9],
        order_key=row[10],
        workflow_version=row[11],
    )


def _job_row(j: JobRecord) -> tuple[Any, ...]:
    return (
        j.execution_id,
        j.node,
        j.type,
        j.status,
        j.attempt,
        j.started_at,
        j.finished_at,
        pack(j.output),
        j.error,
        pack(j.log),
        j.scope,
    )


def _job(row: Any) -> JobRecord:
    return JobRecord(
        execution_id=row[0],
        node=row[1],
        type=row[2],
        status=row[3],
        attempt=row[4],
        started_at=row[5],
        finished_at=row[6],
        output=unpack(row[7]),
        error=row[8],
        log=tuple(unpack(row[9])),
        scope=row[10],
    )


def _pack_answer(answer: Answer) -> bytes:
    return pack([answer.status, [list(h) for h in answer.headers], answer.body])


def _idempotency(row: Any) -> IdempotencyRecord:
    answer = None
    if row[6] is not None:
        status, headers, body = unpack(row[6])
        answer = Answer(status=status, headers=tuple((k, v) for k, v in headers), body=body)
    return IdempotencyRecord(
        workflow=row[0],
        key=row[1],
        body_hash=row[2],
        execution_id=row[3],
        created_at=row[4],
        expires_at=row[5],
        answer=answer,
    )


def _workflow(row: Any) -> WorkflowRecord:
    return WorkflowRecord(
        key=row[0],
        title=row[1],
        enabled=bool(row[2]),
        source=row[3],
        digest=row[4],
        updated_at=row[5],
    )


def _version(row: Any) -> WorkflowVersionRecord:
    return WorkflowVersionRecord(
        workflow=row[0], version=row[1], digest=row[2], source=row[3], created_at=row[4]
    )


def _record_id(record: ExecutionRecord | DeliveryRecord) -> str:
    return record.id
