"""The record reads both SQL backends share: the same SELECTs, the same pages.

:class:`SQLReads` implements the record reads of
:class:`~hookline.store._backend.StoreBackend` over two primitives each backend gives
(run one statement on a read connection, fetch one row or all). Its statements are
written with ``?`` placeholders; the PostgreSQL backend turns them into ``%s`` (none of
them holds a literal ``?`` or ``%``). Collection reads stay in each backend: their SQL
differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import _rows
from ._backend import make_page
from ._records import (
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WaitRecord,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from ._waits import CANCEL_TARGETS

__all__ = ["GET_IDEMPOTENCY", "SQLReads"]

T = TypeVar("T")

_GET_EXECUTION = _rows.SELECT_EXECUTIONS + " WHERE id = ?"
_GET_DELIVERY = _rows.SELECT_DELIVERIES + " WHERE id = ?"
# Waiting executions go on when their event or timeout comes, not on start.
_UNFINISHED = (
    _rows.SELECT_EXECUTIONS + " WHERE status IN ('queued', 'throttled', 'running') ORDER BY id"
)
_LIST_JOBS = _rows.SELECT_JOBS + " WHERE execution_id = ? ORDER BY seq"
#: The live record of a key (also read by an accept, inside its transaction).
GET_IDEMPOTENCY = _rows.SELECT_IDEMPOTENCY + " WHERE workflow = ? AND key = ? AND expires_at > ?"
_VERSIONS = _rows.SELECT_VERSIONS + " WHERE workflow = ?"
_NEWEST_FIRST = " ORDER BY id DESC LIMIT ?"
# One index range (executions_by_flow_key): the key's executions after the given one.
_SUPERSEDING = (
    "SELECT max(id) FROM executions WHERE workflow = ? AND flow_key = ? AND id > ? "
    "AND status <> 'cancelled'"
)


class SQLReads:
    """Record reads for a backend that gives :meth:`_fetch_one` and :meth:`_fetch_all`
    (and :meth:`_text` when stored text is not the text given)."""

    def _fetch_one(self, sql: str, args: Sequence[Any]) -> Any:
        """The first row of ``sql`` (``?`` placeholders) on a read connection, or None.
        Raises StoreClosed when closed, StoreError when the read fails."""
        raise NotImplementedError

    def _fetch_all(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Every row of ``sql`` (``?`` placeholders), as :meth:`_fetch_one`."""
        raise NotImplementedError

    def _text(self, text: str) -> str:
        """``text`` as the backend stores it (a lookup key must match the stored one)."""
        return text

    def _one(self, sql: str, args: Sequence[Any], row_to: Callable[[Any], T]) -> T | None:
        row = self._fetch_one(sql, args)
        return None if row is None else row_to(row)

    def _all(self, sql: str, args: Sequence[Any], row_to: Callable[[Any], T]) -> list[T]:
        return [row_to(row) for row in self._fetch_all(sql, args)]

    def get_execution(self, id: str) -> ExecutionRecord | None:
        return self._one(_GET_EXECUTION, (id,), _rows.execution)

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        return self._all(_LIST_JOBS, (execution_id,), _rows.job)

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        where, args = _rows.filters(
            ("workflow = ?", workflow), ("status = ?", status), ("id < ?", cursor)
        )
        sql = _rows.SELECT_EXECUTIONS + where + _NEWEST_FIRST
        rows = self._all(sql, [*args, limit + 1], _rows.execution)
        return make_page(rows, limit, _rows.record_id)

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        where, args = _rows.filters(
            ("workflow = ?", workflow), ("verdict = ?", verdict), ("id < ?", cursor)
        )
        sql = _rows.SELECT_DELIVERIES + where + _NEWEST_FIRST
        rows = self._all(sql, [*args, limit + 1], _rows.delivery)
        return make_page(rows, limit, _rows.record_id)

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        return self._one(_GET_DELIVERY, (id,), _rows.delivery)

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        return self._one(GET_IDEMPOTENCY, (workflow, self._text(key), now), _rows.idempotency)

    def unfinished_executions(self) -> list[ExecutionRecord]:
        return self._all(_UNFINISHED, (), _rows.execution)

    def superseding_execution(self, workflow: str, flow_key: str, execution_id: str) -> str | None:
        row = self._fetch_one(_SUPERSEDING, (workflow, self._text(flow_key), execution_id))
        return None if row is None or row[0] is None else str(row[0])

    def cancel_targets(self, event: str, value: str) -> list[str]:
        return self._all(CANCEL_TARGETS, (event, self._text(value)), lambda row: str(row[0]))

    def list_waits(self) -> list[WaitRecord]:
        return self._all(_rows.SELECT_WAITS + " ORDER BY execution_id, node, scope", (), _rows.wait)

    def list_workflows(self) -> list[WorkflowRecord]:
        return self._all(_rows.SELECT_WORKFLOWS, (), _rows.workflow)

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        where = "" if cursor is None else " AND version < ?"
        args = (workflow,) if cursor is None else (workflow, cursor)
        sql = _VERSIONS + where + " ORDER BY version DESC LIMIT ?"
        rows = self._all(sql, [*args, limit + 1], _rows.workflow_version)
        return make_page(rows, limit, lambda v: str(v.version))

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        sql = _VERSIONS + " AND version = ?"
        return self._one(sql, (workflow, version), _rows.workflow_version)
