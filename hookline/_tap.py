"""A tap on the store: what each committed batch meant, for metrics and logs.

Everything an operator counts (deliveries and their verdicts, executions ending, jobs
and their durations, batch sizes and commit latency) passes through the store actor as
write operations. :class:`StoreTap` wraps a store's backend: it forwards every call,
and after each committed batch turns the operations into a few frozen events that its
observers receive. Events describe what committed, never what was merely attempted: a
batch that fails to commit produces none, and an operation that failed inside a
committed batch is skipped.

Observers run in the store's writer thread (for SQLite) right after COMMIT, so they
must be quick and thread-safe (prometheus_client and :mod:`logging` are). An observer
that raises is logged and ignored: counting must never fail a write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import attrs

from .errors import StoreError
from .store._backend import StoreBackend
from .store._collections import Filter, Record, Sort
from .store._ops import (
    AcceptDelivery,
    CollectionWrite,
    RecordDelivery,
    SaveJob,
    UpdateExecution,
    WriteOp,
)
from .store._records import (
    FINISHED_STATUSES,
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from .store._store import Store

__all__ = [
    "BatchCommitted",
    "DeliveryRecorded",
    "ExecutionEnded",
    "JobEnded",
    "StoreEvent",
    "StoreTap",
    "tap_store",
]

logger = logging.getLogger("hookline.tap")

# Executions whose start was seen but not their end; past this many (an engine that
# stopped with executions queued) the oldest are forgotten.
MAX_TRACKED = 100_000


@attrs.frozen
class DeliveryRecorded:
    """A delivery was stored with its verdict (a replayed duplicate is ``duplicate``)."""

    delivery: DeliveryRecord
    verdict: str


@attrs.frozen
class ExecutionEnded:
    """An execution reached a finished status. ``started_at`` is None for one that
    never ran (cancelled while queued); ``workflow`` is empty when unknown."""

    id: str
    workflow: str
    delivery_id: str | None
    status: str
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    error: str | None


@attrs.frozen
class JobEnded:
    """A job attempt finished (any status but running); counted once per attempt."""

    job: JobRecord
    workflow: str


@attrs.frozen
class BatchCommitted:
    """A transaction of ``size`` operations committed after ``seconds``."""

    size: int
    seconds: float


StoreEvent = DeliveryRecorded | ExecutionEnded | JobEnded | BatchCommitted
Observer = Callable[[StoreEvent], None]


@attrs.define
class _Live:
    workflow: str
    delivery_id: str | None
    created_at: float | None
    started_at: float | None = None
    jobs_seen: set[tuple[str, int]] = attrs.Factory(set)


class StoreTap:
    """A :class:`~hookline.store._backend.StoreBackend` that forwards every call to
    ``inner`` and reports committed batches to its observers (see the module)."""

    def __init__(self, inner: StoreBackend) -> None:
        self.inner = inner
        self.threaded = inner.threaded
        self.readers = inner.readers
        self._observers: list[Observer] = []
        self._live: dict[str, _Live] = {}

    def subscribe(self, observer: Observer) -> None:
        """Call ``observer`` with every event from now on (in the writer thread); a
        second subscription of the same observer changes nothing."""
        if observer not in self._observers:
            self._observers.append(observer)

    # -- the backend protocol ------------------------------------------------------------

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        started = time.perf_counter()
        results = self.inner.apply(ops)
        events: list[StoreEvent] = [BatchCommitted(len(ops), time.perf_counter() - started)]
        for op, result in zip(ops, results, strict=True):
            if not isinstance(result, Exception):
                events.extend(self._events(op, result))
        for event in events:
            for observer in self._observers:
                try:
                    observer(event)
                except Exception:
                    logger.exception("a store observer failed on %s", type(event).__name__)
        return results

    def get_execution(self, id: str) -> ExecutionRecord | None:
        return self.inner.get_execution(id)

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        return self.inner.list_jobs(execution_id)

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        return self.inner.list_executions(
            workflow=workflow, status=status, limit=limit, cursor=cursor
        )

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        return self.inner.list_deliveries(
            workflow=workflow, verdict=verdict, limit=limit, cursor=cursor
        )

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        return self.inner.get_delivery(id)

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        return self.inner.get_idempotency(workflow, key, now)

    def unfinished_executions(self) -> list[ExecutionRecord]:
        return self.inner.unfinished_executions()

    def list_workflows(self) -> list[WorkflowRecord]:
        return self.inner.list_workflows()

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        return self.inner.list_workflow_versions(workflow, limit, cursor)

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        return self.inner.get_workflow_version(workflow, version)

    def query_records(
        self, collection: str, where: Sequence[Filter], order_by: Sequence[Sort], limit: int | None
    ) -> list[Record]:
        return self.inner.query_records(collection, where, order_by, limit)

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        return self.inner.list_records(collection, limit, cursor)

    def list_collections(self) -> list[str]:
        return self.inner.list_collections()

    # -- what the ops meant --------------------------------------------------------------

    def _events(self, op: WriteOp, result: object) -> list[StoreEvent]:
        if isinstance(op, RecordDelivery):
            return [DeliveryRecorded(op.delivery, op.delivery.verdict)]
        if isinstance(op, AcceptDelivery):
            if isinstance(result, IdempotencyRecord):
                return [DeliveryRecorded(op.delivery, "duplicate")]
            execution = op.execution
            self._track(
                execution.id, _Live(execution.workflow, op.delivery.id, execution.created_at)
            )
            return [DeliveryRecorded(op.delivery, "accepted")]
        if isinstance(op, UpdateExecution):
            return self._execution_update(op)
        if isinstance(op, SaveJob | CollectionWrite):
            return self._job(op.job)
        return []

    def _track(self, id: str, live: _Live) -> None:
        self._live[id] = live
        if len(self._live) > MAX_TRACKED:
            del self._live[next(iter(self._live))]

    def _lookup(self, id: str, *, track: bool = True) -> _Live:
        live = self._live.get(id)
        if live is None:
            # Started before this process (resumed after a restart): ask the store once.
            try:
                record = self.inner.get_execution(id)
            except StoreError:
                record = None
            if record is None:
                live = _Live("", None, None)
            else:
                live = _Live(record.workflow, record.delivery_id, record.created_at)
                live.started_at = record.started_at
            if track:
                self._track(id, live)
        return live

    def _execution_update(self, op: UpdateExecution) -> list[StoreEvent]:
        live = self._lookup(op.id)
        if op.started_at is not None:
            live.started_at = op.started_at
        if op.status not in FINISHED_STATUSES:
            return []
        del self._live[op.id]
        return [
            ExecutionEnded(
                id=op.id,
                workflow=live.workflow,
                delivery_id=live.delivery_id,
                status=op.status,
                created_at=live.created_at,
                started_at=live.started_at,
                finished_at=op.finished_at,
                error=op.error,
            )
        ]

    def _job(self, job: JobRecord) -> list[StoreEvent]:
        if job.status == "running":
            return []
        # A job saved after its execution ended is not tracked again: nothing would
        # ever forget it.
        live = self._lookup(job.execution_id, track=False)
        # A collection write saves its job, and the execution saves it again after.
        identity = (job.node, job.attempt)
        if identity in live.jobs_seen:
            return []
        live.jobs_seen.add(identity)
        return [JobEnded(job, live.workflow)]


def tap_store(store: Store) -> StoreTap:
    """The tap on ``store``'s backend, installed on first call (later calls return the
    same tap). Safe before or while the store runs: the store looks its backend up at
    every call, so the next batch goes through the tap."""
    backend = store.backend
    if isinstance(backend, StoreTap):
        return backend
    tap = StoreTap(backend)
    # Store has no observer hook; the tap stands in for its backend (see the module).
    store._backend = tap
    return tap
