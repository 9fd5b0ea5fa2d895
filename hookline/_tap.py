"""A tap on the store: what each committed batch meant, for metrics and logs.

Everything an operator counts (deliveries and their verdicts, executions ending, jobs
and their durations, batch sizes and commit latency) passes through the store actor as
write operations. :class:`StoreTap` observes a store's committed batches
(:meth:`~hookline.store._store.Store.observe`) and turns their operations into a few
frozen events that its subscribers receive. Events describe what committed, never what
was merely attempted: a batch that fails to commit produces none, and an operation that
failed inside a committed batch is skipped.

Subscribers run where the store's observers run: in its writer thread (for SQLite and
PostgreSQL) right after COMMIT, so they must be quick and thread-safe (prometheus_client
and :mod:`logging` are). A subscriber that raises is logged and ignored: counting must
never fail a write.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import attrs

from .errors import StoreError
from .store._observe import CommittedBatch
from .store._ops import (
    AcceptDelivery,
    CollectionWrite,
    RecordDelivery,
    SaveJob,
    SaveJobs,
    UpdateExecution,
    WriteOp,
)
from .store._records import (
    FINISHED_STATUSES,
    DeliveryRecord,
    IdempotencyRecord,
    JobRecord,
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

# One tap per store, forgotten with its store.
_taps: weakref.WeakKeyDictionary[Store, StoreTap] = weakref.WeakKeyDictionary()


@attrs.define
class _Live:
    workflow: str
    delivery_id: str | None
    created_at: float | None
    started_at: float | None = None
    jobs_seen: set[tuple[str, int]] = attrs.Factory(set)


class StoreTap:
    """An observer of a store's committed batches (see
    :meth:`~hookline.store._store.Store.observe`) that turns them into events for its
    subscribers (see the module)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscribers: list[Observer] = []
        self._live: dict[str, _Live] = {}

    def subscribe(self, observer: Observer) -> None:
        """Call ``observer`` with every event from now on (in the writer thread); a
        second subscription of the same observer changes nothing."""
        if observer not in self._subscribers:
            self._subscribers.append(observer)

    def __call__(self, batch: CommittedBatch) -> None:
        events: list[StoreEvent] = [BatchCommitted(len(batch.ops), batch.seconds)]
        for op, result in zip(batch.ops, batch.results, strict=True):
            if not isinstance(result, Exception):
                events.extend(self._events(op, result))
        for event in events:
            for observer in self._subscribers:
                try:
                    observer(event)
                except Exception:
                    logger.exception("a store observer failed on %s", type(event).__name__)

    # -- what the ops meant --------------------------------------------------------------

    def _events(self, op: WriteOp, result: object) -> list[StoreEvent]:
        if isinstance(op, RecordDelivery):
            return [DeliveryRecorded(op.delivery, op.delivery.verdict)]
        if isinstance(op, AcceptDelivery):
            if isinstance(result, IdempotencyRecord):
                return []  # nothing stored: the engine records the duplicate itself
            execution = op.execution
            self._track(
                execution.id, _Live(execution.workflow, op.delivery.id, execution.created_at)
            )
            events: list[StoreEvent] = [DeliveryRecorded(op.delivery, "accepted")]
            if execution.status in FINISHED_STATUSES:
                # Run whole before it was accepted (a sync workflow of quick nodes).
                for job in op.jobs:
                    events += self._job(job)
                events += self._execution_update(
                    UpdateExecution(
                        execution.id,
                        execution.status,
                        started_at=execution.started_at,
                        finished_at=execution.finished_at,
                        error=execution.error,
                    )
                )
            return events
        if isinstance(op, UpdateExecution):
            return self._execution_update(op)
        if isinstance(op, SaveJob | CollectionWrite):
            return self._job(op.job)
        if isinstance(op, SaveJobs):
            return [event for job in op.jobs for event in self._job(job)]
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
                record = self._store.backend.get_execution(id)
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
    """The tap on ``store``, made and registered as its observer on first call (later
    calls return the same tap). Safe before or while the store runs."""
    tap = _taps.get(store)
    if tap is None:
        tap = _taps[store] = StoreTap(store)
        store.observe(tap)
    return tap
