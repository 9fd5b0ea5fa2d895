"""Rows of the PostgreSQL tables to records and back, with the SELECTs they come from.

Payloads (headers, query, context, output, log, answers) are msgpack in ``bytea``, as in
SQLite. Free text that may carry a NUL character, which PostgreSQL's ``text`` refuses,
goes through :func:`clean` on the way in.
"""

from __future__ import annotations

from typing import Any

from ._encoding import pack, unpack
from ._records import (
    Answer,
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    WorkflowRecord,
    WorkflowVersionRecord,
)

__all__ = [
    "SELECT_DELIVERIES",
    "SELECT_EXECUTIONS",
    "SELECT_IDEMPOTENCY",
    "SELECT_VERSIONS",
    "clean",
    "delivery",
    "delivery_row",
    "execution",
    "execution_row",
    "idempotency",
    "job",
    "job_row",
    "pack_answer",
    "workflow",
    "workflow_version",
]

SELECT_DELIVERIES = (
    "SELECT id, workflow, received_at, method, path, headers, query, body, remote_addr, "
    "verdict, reason, status, execution_id FROM deliveries"
)
SELECT_EXECUTIONS = (
    "SELECT id, workflow, delivery_id, status, created_at, started_at, finished_at, "
    "context, output, error, order_key, workflow_version FROM executions"
)
SELECT_VERSIONS = (
    "SELECT workflow, version, digest, source, created_at FROM workflow_versions "
    "WHERE workflow = %s"
)
SELECT_IDEMPOTENCY = (
    "SELECT workflow, key, body_hash, execution_id, created_at, expires_at, answer "
    "FROM idempotency WHERE workflow = %s AND key = %s AND expires_at > %s"
)


def clean(text: str) -> str:
    """``text`` with each NUL character (which PostgreSQL cannot store) made U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _clean(text: str | None) -> str | None:
    return None if text is None else clean(text)


def delivery_row(
    d: DeliveryRecord, *, verdict: str | None = None, execution_id: str | None = None
) -> tuple[Any, ...]:
    return (
        d.id,
        d.workflow,
        d.received_at,
        clean(d.method),
        clean(d.path),
        pack(d.headers),
        pack(d.query),
        d.body,
        clean(d.remote_addr),
        verdict or d.verdict,
        _clean(d.reason),
        d.status,
        execution_id or d.execution_id,
    )


def delivery(row: Any) -> DeliveryRecord:
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


def execution_row(e: ExecutionRecord) -> tuple[Any, ...]:
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
        _clean(e.error),
        _clean(e.order_key),
        e.workflow_version,
    )


def execution(row: Any) -> ExecutionRecord:
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


def job_row(j: JobRecord) -> tuple[Any, ...]:
    return (
        j.execution_id,
        j.node,
        j.type,
        j.status,
        j.attempt,
        j.started_at,
        j.finished_at,
        pack(j.output),
        _clean(j.error),
        pack(j.log),
        clean(j.scope),
    )


def job(row: Any) -> JobRecord:
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
    return pack([answer.status, [list(h) for h in answer.headers], answer.body])


def idempotency(row: Any) -> IdempotencyRecord:
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
    return WorkflowRecord(
        key=row[0],
        title=row[1],
        enabled=bool(row[2]),
        source=row[3],
        digest=row[4],
        updated_at=row[5],
    )


def workflow_version(row: Any) -> WorkflowVersionRecord:
    return WorkflowVersionRecord(
        workflow=row[0], version=row[1], digest=row[2], source=row[3], created_at=row[4]
    )
