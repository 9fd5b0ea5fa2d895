"""The collection service: what collection nodes call to read and write records.

Every write goes to the store actor as one :class:`~hookline.store._ops.CollectionWrite`
with the job that makes it, so the write and the job's succeeded record commit in one
transaction: a node run again after a crash (same execution, node and attempt) gets the
first result back instead of writing twice. The engine lends one service to all nodes
as ``NodeServices.collections``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._ids import new_id
from ..errors import NodeError, StoreClosed, StoreError
from ._collections import (
    CollectionAction,
    CreateRecord,
    DeleteRecords,
    Filter,
    Record,
    Sort,
    UpdateRecords,
    UpsertRecord,
)
from ._ops import CollectionWrite
from ._records import JobRecord, Page
from ._store import Store

__all__ = ["CollectionService", "admin_job"]

T = TypeVar("T")


class CollectionService:
    """Collection records in ``store``.

    Writes take the ``job`` record of the node run making them (its status and output
    are filled in here) and return after COMMIT, even when the caller is cancelled
    meanwhile. They raise :class:`~hookline.errors.NodeError` for bad input (a bad
    collection or field name, a value that is not JSON, a field clashing in case with
    another) and for a write the store failed; StoreClosed when the store has stopped.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    async def create(self, collection: str, values: Mapping[str, Any], *, job: JobRecord) -> Record:
        """Add a record; returns it (with ``id``, ``created_at``, ``updated_at``)."""
        action = _make(CreateRecord, collection, values=values)
        result: Record = await self._write(job, action)
        return result

    async def update(
        self,
        collection: str,
        where: Sequence[Filter],
        values: Mapping[str, Any],
        *,
        single: bool = False,
        job: JobRecord,
    ) -> int | Record | None:
        """Set ``values`` (null removes a field) on every record matching ``where``;
        returns how many. With ``single``: only the first match (by id), returned (None
        if nothing matched). A missing collection matches nothing."""
        action = _make(UpdateRecords, collection, where=where, values=values, single=single)
        result: int | Record | None = await self._write(job, action)
        return result

    async def delete(self, collection: str, where: Sequence[Filter], *, job: JobRecord) -> int:
        """Delete the records matching ``where``; returns how many."""
        result: int = await self._write(job, _make(DeleteRecords, collection, where=where))
        return result

    async def upsert(
        self,
        collection: str,
        key: Sequence[str],
        values: Mapping[str, Any],
        *,
        job: JobRecord,
    ) -> Record:
        """Update the first record whose ``key`` fields equal those in ``values``, or
        create one; returns the record. Each key field must have a value."""
        action = _make(UpsertRecord, collection, key=key, values=values)
        result: Record = await self._write(job, action)
        return result

    async def query(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: Sequence[Sort] = (),
        limit: int | None = None,
    ) -> list[Record]:
        """Up to ``limit`` records matching ``where`` in ``order_by`` order (ties by id).
        Raises NodeError for a bad collection name or limit."""
        records: list[Record] = await _mapped(
            self._store.query_records, collection, where, order_by=order_by, limit=limit
        )
        return records

    async def list_records(
        self, collection: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Record]:
        """A page of records, newest first (for the admin API). Raises ValueError for a
        bad collection name or ``limit < 1``."""
        return await self._store.list_records(collection, limit=limit, cursor=cursor)

    async def _write(self, job: JobRecord, action: CollectionAction) -> Any:
        try:
            return await self._store.write_shielded(CollectionWrite(job, action))
        except StoreClosed:
            raise
        except StoreError as exc:
            raise NodeError(f"collection {action.collection}: {exc}") from exc


def admin_job(
    kind: str, who: str, now: float, *, execution_id: str | None = None, scope: str = ""
) -> JobRecord:
    """The job record an admin API write is saved with, as a node's write is: under a
    made-up execution id ``admin-<id>`` (one per request; an import's lines differ by
    ``scope``), node ``admin``, type ``collection.<kind>``, its log naming ``who``."""
    return JobRecord(
        execution_id=execution_id or f"admin-{new_id()}",
        node="admin",
        type=f"collection.{kind}",
        status="running",
        attempt=1,
        started_at=now,
        log=(f"by {who}",),
        scope=scope,
    )


def _make(kind: Callable[..., T], collection: str, **fields: Any) -> T:
    try:
        return kind(collection, **fields)
    except ValueError as exc:
        raise NodeError(f"collection {collection}: expected {exc}") from None


async def _mapped(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await fn(*args, **kwargs)
    except ValueError as exc:
        raise NodeError(f"expected {exc}") from None
