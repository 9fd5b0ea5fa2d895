"""The store's reads: straight to the backend, never through the writer's mailbox.

:class:`StoreReads` is the read half of :class:`~hookline.store._store.Store`. A read
runs in a worker thread when the backend is threaded (at most ``readers`` at once), and
inline otherwise. Idempotency lookups, asked by every webhook with a key, are batched:
the lookups that arrive while one runs share the next worker-thread round trip.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from ..errors import StoreError
from ._backend import StoreBackend
from ._collections import Filter, Record, Sort
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

__all__ = ["StoreReads"]

T = TypeVar("T")


class _Lookup:
    """One idempotency lookup in a batched read, and its outcome."""

    __slots__ = ("done", "error", "key", "now", "result", "workflow")

    def __init__(self, workflow: str, key: str, now: float) -> None:
        self.workflow = workflow
        self.key = key
        self.now = now
        self.done = False
        self.result: IdempotencyRecord | None = None
        self.error: StoreError | None = None

    def run(self, backend: StoreBackend) -> None:
        try:
            self.result = backend.get_idempotency(self.workflow, self.key, self.now)
        except StoreError as exc:
            self.error = exc
        self.done = True

    def fail(self, error: StoreError) -> None:
        if not self.done:
            self.error = error
            self.done = True

    def outcome(self) -> IdempotencyRecord | None:
        if self.error is not None:
            raise self.error
        return self.result


def _lookup_all(batch: list[_Lookup], backend: StoreBackend) -> None:
    for lookup in batch:
        lookup.run(backend)


class StoreReads:
    """The reads of a store over ``backend`` (see the module)."""

    def __init__(self, backend: StoreBackend) -> None:
        self._backend = backend
        self._read_limiter = trio.CapacityLimiter(backend.readers)
        # Idempotency lookups waiting for the next batched read, and whether one runs.
        self._lookups: list[_Lookup] = []
        self._lookup_running = False
        self._lookup_done = trio.Event()

    async def _read(self, fn: Callable[[], T]) -> T:
        if self._backend.threaded:
            # Nothing to undo in a read: let a cancelled caller go at once.
            return await trio.to_thread.run_sync(
                fn, limiter=self._read_limiter, abandon_on_cancel=True
            )
        await trio.lowlevel.checkpoint()
        return fn()

    async def get_execution(self, id: str) -> ExecutionRecord | None:
        """The execution ``id``, or None."""
        return await self._read(functools.partial(self._backend.get_execution, id))

    async def superseding_execution(
        self, workflow: str, flow_key: str, execution_id: str
    ) -> str | None:
        """The newest execution of ``workflow`` with the debounce key ``flow_key`` that
        came after ``execution_id`` and is not cancelled (it supersedes that one), in
        one read; None when none does."""
        read = self._backend.superseding_execution
        return await self._read(functools.partial(read, workflow, flow_key, execution_id))

    async def list_jobs(self, execution_id: str) -> list[JobRecord]:
        """The jobs of an execution, in the order they were saved."""
        return await self._read(functools.partial(self._backend.list_jobs, execution_id))

    async def list_executions(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """A page of executions, newest first. Raises ValueError if ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(
            self._backend.list_executions,
            workflow=workflow,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return await self._read(fn)

    async def list_deliveries(
        self,
        *,
        workflow: str | None = None,
        verdict: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[DeliveryRecord]:
        """A page of deliveries, newest first. Raises ValueError if ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(
            self._backend.list_deliveries,
            workflow=workflow,
            verdict=verdict,
            limit=limit,
            cursor=cursor,
        )
        return await self._read(fn)

    async def get_delivery(self, id: str) -> DeliveryRecord | None:
        """The delivery ``id``, or None."""
        return await self._read(functools.partial(self._backend.get_delivery, id))

    async def get_idempotency(self, workflow: str, key: str) -> IdempotencyRecord | None:
        """The live idempotency record for ``key`` in ``workflow`` (expiry by wall time).

        Every webhook with a key asks this, so on a threaded backend the lookups that
        arrive while one read runs share the next one: one worker-thread round trip
        for many deliveries.
        """
        lookup = _Lookup(workflow, key, time.time())
        if not self._backend.threaded:
            await trio.lowlevel.checkpoint()
            lookup.run(self._backend)
            return lookup.outcome()
        self._lookups.append(lookup)
        while not lookup.done:
            if self._lookup_running:
                await self._lookup_done.wait()
                continue
            await self._run_lookups()
        return lookup.outcome()

    async def _run_lookups(self) -> None:
        batch, self._lookups = self._lookups, []
        self._lookup_running = True
        backend = self._backend
        try:
            # Shielded: the callers of the others in the batch wait for this read.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(
                    _lookup_all, batch, backend, limiter=self._read_limiter
                )
        except BaseException as exc:
            for lookup in batch:
                lookup.fail(StoreError(f"the idempotency lookup failed: {exc!r}"))
            raise
        finally:
            self._lookup_running = False
            done, self._lookup_done = self._lookup_done, trio.Event()
            done.set()

    async def unfinished_executions(self) -> list[ExecutionRecord]:
        """Executions still queued, throttled or running, oldest first (to resume on
        start; ``waiting`` ones resume on their event instead)."""
        return await self._read(self._backend.unfinished_executions)

    async def cancel_targets(self, event: str, value: str) -> list[str]:
        """The live executions an event cancels (``cancel_on``; see SaveCancelKeys)."""
        return await self._read(functools.partial(self._backend.cancel_targets, event, value))

    async def list_waits(self) -> list[WaitRecord]:
        """Every parked wait (see :class:`~hookline.store._ops.ParkExecution`)."""
        return await self._read(self._backend.list_waits)

    async def list_workflows(self) -> list[WorkflowRecord]:
        """Every stored workflow record, by key."""
        return await self._read(self._backend.list_workflows)

    async def list_workflow_versions(
        self, workflow: str, *, limit: int = 50, cursor: int | None = None
    ) -> Page[WorkflowVersionRecord]:
        """A page of the definitions ``workflow`` has had, newest first; pass the
        page's cursor back (as an int) for older ones. Raises ValueError if
        ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(self._backend.list_workflow_versions, workflow, limit, cursor)
        return await self._read(fn)

    async def get_workflow_version(
        self, workflow: str, version: int
    ) -> WorkflowVersionRecord | None:
        """Version ``version`` of ``workflow``'s definition, or None."""
        fn = functools.partial(self._backend.get_workflow_version, workflow, version)
        return await self._read(fn)

    async def query_records(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: Sequence[Sort] = (),
        limit: int | None = None,
    ) -> list[Record]:
        """Up to ``limit`` (None: all) records of ``collection`` matching ``where``, in
        ``order_by`` order, ties by id. A missing collection has none. Raises ValueError
        for a bad collection name or ``limit < 1``."""
        if limit is not None:
            _check_limit(limit)
        fn = functools.partial(
            self._backend.query_records, collection, tuple(where), tuple(order_by), limit
        )
        return await self._read(fn)

    async def list_records(
        self, collection: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Record]:
        """A page of the records of ``collection``, newest first (none if it does not
        exist). Raises ValueError for a bad collection name or ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(self._backend.list_records, collection, limit, cursor)
        return await self._read(fn)

    async def list_collections(self) -> list[str]:
        """The names of the collections that exist (had a record once), sorted."""
        return await self._read(self._backend.list_collections)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
