"""The in-memory backend: the store's semantics over plain dicts, for fast tests.

It keeps nothing on disk and starts no threads (``threaded = False``), so tests that run
on trio's virtual clock (``autojump_clock``) can use a real :class:`Store` over it.
Payloads go through the same msgpack round trip as in SQLite, so what a caller reads
back has the same shape (lists for tuples, strings for odd values) and is never an
alias of an object the caller may still change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from ..definition import JSON
from ..errors import StoreClosed, StoreError
from ._backend import make_page
from ._batching import FormBatch, form_in_memory
from ._collections import (
    CollectionAction,
    CreateRecord,
    DeleteRecords,
    Filter,
    Record,
    Sort,
    UpdateRecords,
    UpsertRecord,
    changed_record,
    check_collection,
    claim_fields,
    matches,
    new_record,
    sort_records,
)
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
from ._records import (
    LIVE_STATUSES,
    RESUMABLE_STATUSES,
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WaitRecord,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from ._rows import op_error
from ._waits import ended_job

__all__ = ["MemoryBackend"]

T = TypeVar("T")
K = TypeVar("K")


_SCALARS = (str, float, bool, bytes, type(None))


def _copy(value: Any) -> Any:
    """``value`` as the store would give it back: through its encoding, which copies
    containers and refuses what cannot be stored (an integer wider than 64 bits too).
    Scalars it would store as they are come back as they are."""
    kind = type(value)
    if kind in _SCALARS and (kind is not str or value.isascii()):
        return value
    if kind is int and -(2**63) <= value < 2**64:
        return value
    return unpack(pack(value))


class MemoryBackend:
    """A :class:`~hookline.store._backend.StoreBackend` over dicts.

    Closing keeps the data: a store reopened over the same backend finds everything
    committed before, as it would in a file.
    """

    threaded = False
    # One process owns the storage: nothing to coordinate with.
    coordinator = None
    readers = 1

    def __init__(self) -> None:
        self._open = False
        self._workflows: dict[str, WorkflowRecord] = {}
        self._versions: dict[str, list[WorkflowVersionRecord]] = {}  # oldest first
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._executions: dict[str, ExecutionRecord] = {}
        self._jobs: dict[str, list[JobRecord]] = {}
        self._job_index: dict[tuple[str, str, str, int], int] = {}
        self._collections: dict[str, dict[str, Record]] = {}
        self._fields: dict[str, dict[str, str]] = {}  # per collection: lower -> name
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        # Parked waits by (execution, node, scope), and their keys by (event, match).
        self._waits: dict[tuple[str, str, str], WaitRecord] = {}
        self._waits_by_event: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        self._waits_of: dict[str, set[tuple[str, str, str]]] = {}  # by execution
        self._cancel_keys: dict[tuple[str, str], set[str]] = {}  # (event, value) -> ids

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise StoreClosed("the memory store is closed")

    # -- writes ------------------------------------------------------------------------

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        self._check_open()
        results: list[object] = []
        for op in ops:
            try:
                results.append(self._apply_one(op))
            except (StoreError, ValueError, TypeError, OverflowError) as exc:
                # Each op checks before it changes anything, so a failed op left no trace.
                results.append(op_error(op, exc))
        return results

    def _apply_one(self, op: WriteOp) -> object:
        if isinstance(op, RecordDelivery):
            self._insert_delivery(op.delivery)
            return None
        if isinstance(op, AcceptDelivery):
            return self._accept(op)
        if isinstance(op, UpdateExecution):
            self._update_execution(op)
            return None
        if isinstance(op, SaveJob):
            self._save_job(op.job)
            return None
        if isinstance(op, SaveJobs):
            for job in op.jobs:
                self._save_job(job)
            return None
        if isinstance(op, CollectionWrite):
            return self._collection_write(op)
        if isinstance(op, SaveAnswer):
            self._save_answer(op)
            return None
        if isinstance(op, SaveWorkflow):
            self._workflows[op.workflow.key] = op.workflow
            return self._save_version(op.workflow)
        if isinstance(op, RequeueExecution):
            return self._requeue(op)
        if isinstance(op, FormBatch):
            return form_in_memory(self._executions, op)
        if isinstance(op, ParkExecution):
            self._park(op)
            return None
        if isinstance(op, ClaimWaits):
            return self._claim_waits(op)
        if isinstance(op, SaveCancelKeys):
            for pair in op.keys:
                self._cancel_keys.setdefault(pair, set()).add(op.id)
            return None
        if isinstance(op, (PruneExecutions, PruneDeliveries, PruneIdempotency)):
            return self._prune(op)
        raise StoreError(f"unknown write operation {type(op).__name__}")

    def _save_version(self, workflow: WorkflowRecord) -> int:
        versions = self._versions.setdefault(workflow.key, [])
        for version in versions:
            if version.digest == workflow.digest:
                return version.version
        number = len(versions) + 1
        versions.append(
            WorkflowVersionRecord(
                workflow=workflow.key,
                version=number,
                digest=workflow.digest,
                source=workflow.source,
                created_at=workflow.updated_at,
            )
        )
        return number

    def _requeue(self, op: RequeueExecution) -> bool:
        current = self._executions.get(op.id)
        if current is None or current.status not in op.statuses:
            return False
        version = current.workflow_version if op.workflow_version is None else op.workflow_version
        self._executions[op.id] = attrs.evolve(
            current,
            status="queued",
            finished_at=None,
            output=None,
            error=None,
            workflow_version=version,
        )
        return True

    def _park(self, op: ParkExecution) -> None:
        if op.id not in self._executions:
            raise StoreError(f"execution {op.id} does not exist")
        for job in op.jobs:
            self._save_job(job)
        for wait in op.waits:
            key = (wait.execution_id, wait.node, wait.scope)
            self._drop_wait(key)
            self._waits[key] = wait
            self._waits_by_event.setdefault((wait.event, wait.match), set()).add(key)
            self._waits_of.setdefault(wait.execution_id, set()).add(key)
        self._executions[op.id] = attrs.evolve(self._executions[op.id], status="waiting")

    def _drop_wait(self, key: tuple[str, str, str]) -> WaitRecord | None:
        wait = self._waits.pop(key, None)
        if wait is not None:
            _discard(self._waits_by_event, (wait.event, wait.match), key)
            _discard(self._waits_of, wait.execution_id, key)
        return wait

    def _claim_waits(self, op: ClaimWaits) -> list[WaitRecord]:
        if op.event is not None:
            chosen = sorted(self._waits_by_event.get((op.event, op.match or ""), ()))
        elif op.execution_id is not None:
            chosen = sorted(self._waits_of.get(op.execution_id, ()))
        elif op.due:
            chosen = sorted(k for k, w in self._waits.items() if w.until <= op.now)
        else:
            chosen = []
        claimed: list[WaitRecord] = []
        for key in chosen:
            execution = self._executions.get(key[0])
            if execution is None or execution.status != "waiting":
                continue
            if len(claimed) >= op.limit:
                break
            wait = self._drop_wait(key)
            if wait is None:
                continue  # dropped with an earlier wait of its execution
            self._save_job(ended_job(wait, op.status, op.output, op.now))
            self._executions[key[0]] = attrs.evolve(execution, status="queued")
            claimed.append(wait)
            for other in list(self._waits_of.get(key[0], ())):
                self._drop_wait(other)  # parks again on resume, as in SQL
        return claimed

    def _prune(self, op: PruneExecutions | PruneDeliveries | PruneIdempotency) -> int:
        if isinstance(op, PruneIdempotency):
            expired = [k for k, r in self._idempotency.items() if r.expires_at <= op.now]
            for key in expired[: op.limit]:
                del self._idempotency[key]
            return min(len(expired), op.limit)
        if isinstance(op, PruneDeliveries):
            doomed = sorted(
                id
                for id, d in self._deliveries.items()
                if id < op.before_id and op.verdict in (None, d.verdict)
            )[: op.limit]
            for id in doomed:
                del self._deliveries[id]
            return len(doomed)
        finished = sorted(
            id
            for id, e in self._executions.items()
            if id < op.before_id and e.status not in LIVE_STATUSES
        )[: op.limit]
        gone = set(finished)
        for id in finished:
            del self._executions[id]
            self._jobs.pop(id, None)
        # The index key starts with the execution id, whatever else identifies a job.
        for identity in [k for k in self._job_index if k[0] in gone]:
            del self._job_index[identity]
        for pair, ids in list(self._cancel_keys.items()):
            ids.difference_update(gone)
            if not ids:
                del self._cancel_keys[pair]
        return len(finished)

    def _save_job(self, job: JobRecord) -> None:
        # Built directly (attrs.evolve is generic, and slow for the row saved most).
        stored = JobRecord(
            execution_id=job.execution_id,
            node=job.node,
            type=job.type,
            status=job.status,
            attempt=job.attempt,
            started_at=job.started_at,
            finished_at=job.finished_at,
            output=_copy(job.output),
            error=job.error,
            log=tuple(_copy(job.log)) if job.log else (),
            scope=job.scope,
        )
        jobs = self._jobs.setdefault(job.execution_id, [])
        identity = (job.execution_id, job.node, job.scope, job.attempt)
        position = self._job_index.get(identity)
        if position is None:
            self._job_index[identity] = len(jobs)
            jobs.append(stored)
            return
        saved = jobs[position]
        if saved.status == "succeeded":
            stored = attrs.evolve(
                stored, status=saved.status, output=saved.output, error=saved.error
            )
        jobs[position] = stored

    def _succeeded_job(self, job: JobRecord) -> JobRecord | None:
        position = self._job_index.get((job.execution_id, job.node, job.scope, job.attempt))
        if position is None:
            return None
        saved = self._jobs[job.execution_id][position]
        return saved if saved.status == "succeeded" else None

    def _collection_write(self, op: CollectionWrite) -> object:
        done = self._succeeded_job(op.job)
        if done is not None:
            return _copy(done.output)
        result = self._apply_action(op.action)
        self._save_job(attrs.evolve(op.job, status="succeeded", output=result))
        return copy.deepcopy(result)

    def _apply_action(self, action: CollectionAction) -> JSON:
        # Every check (the field names) comes before the first change: a failed action
        # leaves no trace.
        if isinstance(action, CreateRecord):
            return self._put(action.collection, [new_record(action.id, action.at, action.values)])[
                0
            ]
        if isinstance(action, UpsertRecord):
            found = self._select(action.collection, action.where)[:1]
            if found:
                record = changed_record(found[0], action.values, action.at)
            else:
                record = new_record(action.id, action.at, action.values)
            return self._put(action.collection, [record])[0]
        if isinstance(action, UpdateRecords):
            targets = self._select(action.collection, action.where)
            if action.single:
                targets = targets[:1]
            changed = [changed_record(r, action.values, action.at) for r in targets]
            updated = self._put(action.collection, changed) if changed else []
            if action.single:
                return updated[0] if updated else None
            return len(updated)
        if isinstance(action, DeleteRecords):
            doomed = self._select(action.collection, action.where)
            records = self._collections.get(action.collection, {})
            for record in doomed:
                del records[record["id"]]
            return len(doomed)
        raise StoreError(f"unknown collection action {type(action).__name__}")

    def _put(self, collection: str, records: list[Record]) -> list[Record]:
        """Store ``records`` (new or changed) after checking their field names."""
        known = dict(self._fields.get(collection, {}))
        for record in records:
            claim_fields(known, record, collection)
        self._fields[collection] = known
        stored = self._collections.setdefault(collection, {})
        for record in records:
            stored[record["id"]] = copy.deepcopy(record)
        return records

    def _select(self, collection: str, where: Sequence[Filter]) -> list[Record]:
        records = self._collections.get(collection, {})
        return sorted(
            (r for r in records.values() if matches(r, where)), key=lambda r: str(r["id"])
        )

    def _check_new_delivery(self, delivery: DeliveryRecord) -> None:
        if delivery.id in self._deliveries:
            raise StoreError(f"delivery {delivery.id} already exists")

    def _insert_delivery(self, delivery: DeliveryRecord, execution_id: str | None = None) -> None:
        self._check_new_delivery(delivery)
        self._deliveries[delivery.id] = attrs.evolve(
            delivery,
            headers=_copy(delivery.headers),
            query=_copy(delivery.query),
            execution_id=delivery.execution_id if execution_id is None else execution_id,
        )

    def _accept(self, op: AcceptDelivery) -> IdempotencyRecord | None:
        execution = op.execution
        now = op.delivery.received_at
        if op.claim is not None:
            earlier = self._idempotency.get((execution.workflow, op.claim.key))
            if earlier is not None and earlier.expires_at > now:
                return earlier
        self._check_new_delivery(op.delivery)
        if execution.id in self._executions:
            raise StoreError(f"execution {execution.id} already exists")
        # Encoded before anything changes: a value pack refuses fails the op whole.
        stored = attrs.evolve(
            execution, context=_copy(execution.context), output=_copy(execution.output)
        )
        for job in op.jobs:
            pack((job.output, job.log))
        self._insert_delivery(op.delivery, execution.id)
        self._executions[execution.id] = stored
        for job in op.jobs:
            self._save_job(job)
        if op.claim is not None:
            self._idempotency[(execution.workflow, op.claim.key)] = IdempotencyRecord(
                workflow=execution.workflow,
                key=op.claim.key,
                body_hash=op.claim.body_hash,
                execution_id=execution.id,
                created_at=now,
                expires_at=op.claim.expires_at,
                answer=op.answer,
            )
        return None

    def _update_execution(self, op: UpdateExecution) -> None:
        current = self._executions.get(op.id)
        if current is None:
            raise StoreError(f"execution {op.id} does not exist")
        self._executions[op.id] = attrs.evolve(
            current,
            status=op.status,
            started_at=current.started_at if op.started_at is None else op.started_at,
            finished_at=current.finished_at if op.finished_at is None else op.finished_at,
            error=current.error if op.error is None else op.error,
            output=_copy(op.output) if op.has_output else current.output,
        )

    def _save_answer(self, op: SaveAnswer) -> None:
        delivery = self._deliveries.get(op.delivery_id)
        if delivery is None:
            raise StoreError(f"delivery {op.delivery_id} does not exist")
        self._deliveries[op.delivery_id] = attrs.evolve(delivery, status=op.answer.status)
        if op.workflow is None or op.key is None:
            return
        claimed = self._idempotency.get((op.workflow, op.key))
        # Only the claimant's record: once expired and claimed again, the key is not ours.
        if claimed is not None and claimed.execution_id == delivery.execution_id:
            self._idempotency[(op.workflow, op.key)] = attrs.evolve(claimed, answer=op.answer)

    # -- reads -------------------------------------------------------------------------

    def get_execution(self, id: str) -> ExecutionRecord | None:
        self._check_open()
        return self._executions.get(id)

    def list_jobs(self, execution_id: str) -> list[JobRecord]:
        self._check_open()
        return list(self._jobs.get(execution_id, ()))

    def list_executions(
        self, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Page[ExecutionRecord]:
        self._check_open()
        return _newest_first(
            self._executions,
            lambda e: (
                (workflow is None or e.workflow == workflow)
                and (status is None or e.status == status)
            ),
            limit,
            cursor,
        )

    def list_deliveries(
        self, *, workflow: str | None, verdict: str | None, limit: int, cursor: str | None
    ) -> Page[DeliveryRecord]:
        self._check_open()
        return _newest_first(
            self._deliveries,
            lambda d: (
                (workflow is None or d.workflow == workflow)
                and (verdict is None or d.verdict == verdict)
            ),
            limit,
            cursor,
        )

    def get_delivery(self, id: str) -> DeliveryRecord | None:
        self._check_open()
        return self._deliveries.get(id)

    def get_idempotency(self, workflow: str, key: str, now: float) -> IdempotencyRecord | None:
        self._check_open()
        record = self._idempotency.get((workflow, key))
        if record is None or record.expires_at <= now:
            return None
        return record

    def unfinished_executions(self) -> list[ExecutionRecord]:
        self._check_open()
        return [
            self._executions[id]
            for id in sorted(self._executions)
            if self._executions[id].status in RESUMABLE_STATUSES
        ]

    def superseding_execution(self, workflow: str, flow_key: str, execution_id: str) -> str | None:
        self._check_open()
        newer = [
            e.id
            for e in self._executions.values()
            if e.id > execution_id
            and e.workflow == workflow
            and e.flow_key == flow_key
            and e.status != "cancelled"
        ]
        return max(newer, default=None)

    def cancel_targets(self, event: str, value: str) -> list[str]:
        self._check_open()
        ids = self._cancel_keys.get((event, value), ())
        live = (self._executions.get(id) for id in ids)
        return sorted(e.id for e in live if e is not None and e.status in LIVE_STATUSES)

    def list_waits(self) -> list[WaitRecord]:
        self._check_open()
        return [self._waits[key] for key in sorted(self._waits)]

    def list_workflows(self) -> list[WorkflowRecord]:
        self._check_open()
        return [self._workflows[key] for key in sorted(self._workflows)]

    def list_workflow_versions(
        self, workflow: str, limit: int, cursor: int | None
    ) -> Page[WorkflowVersionRecord]:
        self._check_open()
        versions = self._versions.get(workflow, [])
        chosen = [v for v in reversed(versions) if cursor is None or v.version < cursor]
        return make_page(chosen[: limit + 1], limit, lambda v: str(v.version))

    def get_workflow_version(self, workflow: str, version: int) -> WorkflowVersionRecord | None:
        self._check_open()
        versions = self._versions.get(workflow, [])
        return versions[version - 1] if 1 <= version <= len(versions) else None

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        self._check_open()
        check_collection(collection)
        found = sort_records(
            (r for r in self._collections.get(collection, {}).values() if matches(r, where)),
            order_by,
        )
        return copy.deepcopy(found if limit is None else found[:limit])

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        self._check_open()
        check_collection(collection)
        records = self._collections.get(collection, {})
        ids = sorted((id for id in records if cursor is None or id < cursor), reverse=True)
        chosen = [copy.deepcopy(records[id]) for id in ids[: limit + 1]]
        return make_page(chosen, limit, lambda record: str(record["id"]))

    def list_collections(self) -> list[str]:
        self._check_open()
        return sorted(self._collections)


def _discard(index: dict[K, set[tuple[str, str, str]]], at: K, key: tuple[str, str, str]) -> None:
    keys = index[at]
    keys.discard(key)
    if not keys:
        del index[at]


def _newest_first(
    records: dict[str, T], keep: Callable[[T], bool], limit: int, cursor: str | None
) -> Page[T]:
    ids = sorted((id for id in records if cursor is None or id < cursor), reverse=True)
    chosen: list[T] = []
    for id in ids:
        record = records[id]
        if keep(record):
            chosen.append(record)
            if len(chosen) > limit:
                break
    return make_page(chosen, limit, _record_id)


def _record_id(record: Any) -> str:
    return str(record.id)
