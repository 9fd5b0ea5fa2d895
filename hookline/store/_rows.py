"""Rows of the SQL tables to records and back, for SQLite and PostgreSQL alike.

Both backends store the same columns in the same order, payloads (headers, query,
context, output, log, answers) as msgpack blobs, so one codec serves both. What differs
is passed in: PostgreSQL's ``text`` cannot hold a NUL character, so its backend gives
the row builders a ``text`` function that replaces it (SQLite stores text as given).
The SELECTs here name the columns in the order the decoders read them; each backend
adds its own WHERE clauses (placeholders differ: ``?`` and ``%s``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..errors import StoreError
from ._encoding import pack, unpack
from ._ops import WriteOp
from ._records import (
    Answer,
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    WaitRecord,
    WorkflowRecord,
    WorkflowVersionRecord,
)

__all__ = [
    "SELECT_DELIVERIES",
    "SELECT_EXECUTIONS",
    "SELECT_IDEMPOTENCY",
    "SELECT_JOBS",
    "SELECT_VERSIONS",
    "SELECT_WORKFLOWS",
    "delivery",
    "delivery_row",
    "execution",
    "execution_row",
    "filters",
    "idempotency",
    "job",
    "job_row",
    "op_error",
    "pack_answer",
    "record_id",
    "workflow",
    "workflow_version",
]

TextFn = Callable[[str], str]

SELECT_DELIVERIES = (
    "SELECT id, workflow, received_at, method, path, headers, query, body, remote_addr, "
    "verdict, reason, status, execution_id FROM deliveries"
)
SELECT_EXECUTIONS = (
    "SELECT id, workflow, delivery_id, status, created_at, started_at, finished_at, "
    "context, output, error, order_key, workflow_version, flow_key FROM executions"
)
SELECT_JOBS = (
    "SELECT execution_id, node, type, status, attempt, started_at, finished_at, output, "
    "error, log, scope FROM jobs"
)
SELECT_WORKFLOWS = (
    "SELECT key, title, enabled, source, digest, updated_at FROM workflows ORDER BY key"
)
SELECT_VERSIONS = "SELECT workflow, version, digest, source, created_at FROM workflow_versions"
SELECT_IDEMPOTENCY = (
    "SELECT workflow, key, body_hash, execution_id, created_at, expires_at, answer FROM idempotency"
)


def _same(text: str) -> str:
    return text


def _maybe(text: TextFn, value: str | None) -> str | None:
    return None if value is None else text(value)


def delivery_row(
    d: DeliveryRecord,
    *,
    verdict: str | None = None,
    execution_id: str | None = None,
    text: TextFn = _same,
) -> tuple[Any, ...]:
    """The row of ``d`` (with ``verdict`` and ``execution_id`` in place of its own when
    given), free text passed through ``text``."""
    return (
        d.id,
        d.workflow,
        d.received_at,
        text(d.method),
        text(d.path),
        pack(d.headers),
        pack(d.query),
        d.body,
        text(d.remote_addr),
        verdict or d.verdict,
        _maybe(text, d.reason),
        d.status,
        execution_id or d.execution_id,
    )


def delivery(row: Any) -> DeliveryRecord:
    """The delivery of a :data:`SELECT_DELIVERIES` row."""
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


def execution_row(e: ExecutionRecord, *, text: TextFn = _same) -> tuple[Any, ...]:
    """The row of ``e``, free text passed through ``text``."""
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
        _maybe(text, e.error),
        _maybe(text, e.order_key),
        e.workflow_version,
        _maybe(text, e.flow_key),
    )


def execution(row: Any) -> ExecutionRecord:
    """The execution of a :data:`SELECT_EXECUTIONS` row."""
    return ExecutionRecord(
        id=row[0],
        workflow=row[1],
        delivery_id=row[2],
        status=row[3],
        created_at=row[4],
        started_at=row[5],
        finished_at=row[6],
        context=unpack(row[7]),
        # NULL: cleared by a retry (no output yet).
        output=None if row[8] is None else unpack(row[8]),
        error=row[9],
        order_key=row[10],
        workflow_version=row[11],
        flow_key=row[12],
    )


def job_row(j: JobRecord, *, text: TextFn = _same) -> tuple[Any, ...]:
    """The row of ``j``, free text passed through ``text``."""
    return (
        j.execution_id,
        j.node,
        j.type,
        j.status,
        j.attempt,
        j.started_at,
        j.finished_at,
        pack(j.output),
        _maybe(text, j.error),
        pack(j.log),
        text(j.scope),
    )


#: A wait row's columns, in :class:`WaitRecord`'s order.
SELECT_WAITS = (
    "SELECT execution_id, node, scope, attempt, workflow, event, correlation, until, started_at "
    "FROM waits"
)


def wait(row: Any) -> WaitRecord:
    """The wait of a :data:`SELECT_WAITS` row (or of a row in its column order)."""
    return WaitRecord(*row)


def wait_row(wait: WaitRecord) -> tuple[Any, ...]:
    """``wait`` as a row in :data:`SELECT_WAITS`' column order."""
    return attrs.astuple(wait)


def job(row: Any) -> JobRecord:
    """The job of a :data:`SELECT_JOBS` row."""
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


def pack_answer(answer: Answer) -> bytes:
    """``answer`` as the blob of the ``idempotency.answer`` column."""
    return pack([answer.status, [list(h) for h in answer.headers], answer.body])


def idempotency(row: Any) -> IdempotencyRecord:
    """The idempotency record of a :data:`SELECT_IDEMPOTENCY` row."""
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


def workflow(row: Any) -> WorkflowRecord:
    """The workflow record of a :data:`SELECT_WORKFLOWS` row."""
    return WorkflowRecord(
        key=row[0],
        title=row[1],
        enabled=bool(row[2]),
        source=row[3],
        digest=row[4],
        updated_at=row[5],
    )


def workflow_version(row: Any) -> WorkflowVersionRecord:
    """The workflow version of a :data:`SELECT_VERSIONS` row."""
    return WorkflowVersionRecord(
        workflow=row[0], version=row[1], digest=row[2], source=row[3], created_at=row[4]
    )


def record_id(record: ExecutionRecord | DeliveryRecord) -> str:
    """The page cursor of ``record``: its id."""
    return record.id


def filters(*pairs: tuple[str, str | None]) -> tuple[str, list[Any]]:
    """A WHERE clause made of fixed clauses (``pairs`` name them), values bound."""
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in pairs:
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def op_error(op: WriteOp, exc: BaseException) -> StoreError:
    """The StoreError that is ``op``'s result when it failed with ``exc``."""
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"{type(op).__name__} failed: {exc}")
    error.__cause__ = exc
    return error
