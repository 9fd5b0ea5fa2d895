"""The backend seam: what a storage engine must offer the store actor.

Both backends (:class:`~hookline.store._sqlite.SQLiteBackend` and
:class:`~hookline.store._memory.MemoryBackend`) implement :class:`StoreBackend` with
the same semantics; the behaviour tests run against both. Every method is synchronous:
the store actor decides whether to call it in a worker thread (``threaded``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from ._collections import Filter, Record, Sort
from ._coordination import Coordinator
from ._ops import WriteOp
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

__all__ = ["StoreBackend", "make_page"]

T = TypeVar("T")


class StoreBackend(Protocol):
    """A storage engine the store actor drives.

    Writes arrive only through :meth:`apply`, from one thread at a time. Reads may come
    from up to ``readers`` threads at once, concurrently with a write. Every method
    raises :class:`~hookline.errors.StoreClosed` when the backend is not open and
    :class:`~hookline.errors.StoreError` when storage fails; no third-party error
    escapes.
    """

    #: True: call methods in worker threads (blocking I/O). False: call them inline,
    #: which keeps tests on trio's virtual clock free of threads.
    threaded: bool
    #: How many reads may run at once.
    readers: int

    #: How this process coordinates with others sharing the storage; None: no other
    #: process shares it (see :mod:`hookline.store._coordination`).
    @property
    def coordinator(self) -> Coordinator | None: ...

    def open(self) -> None:
        """Create or migrate the storage and get ready. Calling it twice is harmless."""

    def close(self) -> None:
        """Release every resource. Calling it twice is harmless."""

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        """Apply ``ops`` in order in one transaction, and commit it.

        Returns one result per op (see each op class), or the exception an op failed
        with (a :class:`~hookline.errors.StoreError`); a failed op changes nothing and
        the other ops still commit. Raises StoreError if the transaction as a whole
        could not commit: then none of the ops took effect.
        """
        ...

    def get_execution(self, id: str) -> ExecutionRecord | None:
        """The execution ``id``, or None."""
        ...

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        """The jobs of an execution, in the order they were saved."""
        ...

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        """Executions newest first, filtered; ``cursor`` is the previous page's cursor."""
        ...

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        """Deliveries newest first, filtered; ``cursor`` is the previous page's cursor."""
        ...

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        """The delivery ``id``, or None."""
        ...

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        """The live record for ``key`` in ``workflow``; None if absent or expired at ``now``."""
        ...

    def unfinished_executions(self) -> list[ExecutionRecord]:
        """Executions still queued, throttled or running (to resume after a restart),
        oldest first; ``waiting`` ones are not among them (they resume on their event)."""
        ...

    def superseding_execution(self, workflow: str, flow_key: str, execution_id: str) -> str | None:
        """The newest execution of ``workflow`` with the debounce key ``flow_key`` that
        came after ``execution_id`` (a greater id) and is not cancelled: the one that
        supersedes it; None when none does."""
        ...

    def cancel_targets(self, event: str, value: str) -> list[str]:
        """The live executions whose ``cancel_on`` matches an event of workflow
        ``event`` correlating on ``value`` (see SaveCancelKeys), oldest first."""
        ...

    def list_waits(self) -> list[WaitRecord]:
        """Every wait row: the executions parked on a ``wait`` node, and for what."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]:
        """Every stored workflow record, by key."""
        ...

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        """The versions of ``workflow`` newest first, below version ``cursor`` when
        given; the page's cursor is its last version number, as text."""
        ...

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        """Version ``version`` of ``workflow``, or None."""
        ...

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        """Up to ``limit`` (None: all) records of ``collection`` matching every filter of
        ``where``, in ``order_by`` order, ties by id; a missing collection has none.
        Raises ValueError for a bad collection name."""
        ...

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        """Records of ``collection`` newest first; ``cursor`` is the previous page's.
        Raises ValueError for a bad collection name."""
        ...

    def list_collections(self) -> list[str]:
        """The names of the collections that exist (had a record once), sorted."""
        ...


def make_page(rows: Sequence[T], limit: int, id_of: Callable[[T], str]) -> Page[T]:
    """The page made of the first ``limit`` of ``rows``, for backends to share.

    ``rows`` holds up to ``limit + 1`` records in page order (newest first); an extra
    record only tells that another page follows, and the cursor is then the last id on
    this page.
    """
    items = tuple(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items=items, cursor=id_of(items[-1]) if more else None)
