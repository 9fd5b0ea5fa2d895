"""Where new work enters a running engine: deliveries, and the replays and retries
operators ask for. Refuses it all (503) while the engine is not accepting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs
import trio

from .._ids import new_id
from ..errors import NotFound, Rejected, StoreClosed, Unavailable
from ..store._ops import RecordDelivery
from ..store._records import ExecutionRecord
from ..store._store import Store
from ._admission import Admission
from ._delivery import Delivery
from ._event_board import EventBoard
from ._recovery import RETRYABLE, not_retryable, recovered_delivery, stored_delivery
from ._workflow_set import WorkflowSet
from ._workflow_supervisor import WorkflowSupervisor

log = logging.getLogger("hookline.engine")


class Intake:
    """Admits work into ``workflows`` while ``accepting``, up to ``pending_limit``
    live executions across them (see :class:`~hookline.engine._engine.Engine` for
    what each method raises)."""

    def __init__(
        self,
        store: Store,
        workflows: WorkflowSet,
        pending_limit: int,
        *,
        clock: Callable[[], float] = time.time,
        events: EventBoard | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.workflows = workflows
        self.pending_limit = pending_limit
        self.accepting = False
        # Deliveries waiting for room in their workflow's queue (``wait=True``): a stop
        # ends their wait with Unavailable.
        self._waiting: set[trio.CancelScope] = set()

    def stop(self) -> None:
        """Refuse new work from now on; deliveries waiting for room get Unavailable."""
        self.accepting = False
        for scope in self._waiting:
            scope.cancel()

    def supervisor(self, workflow: str) -> WorkflowSupervisor:
        """The supervisor that takes new work for ``workflow``. Raises Unavailable
        (stopping, overloaded, disabled) or WorkflowNotFound."""
        if not self.accepting:
            raise Unavailable("the engine is shutting down", retry_after=10.0)
        return self.workflows.intake(workflow, self.pending_limit)

    async def stored(self, execution_id: str) -> ExecutionRecord:
        """The stored execution. Raises NotFound."""
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id}")
        return record

    async def accept(self, delivery: Delivery, *, wait: bool = False) -> Admission:
        supervisor = self.supervisor(delivery.workflow)
        if not wait:
            admission = await supervisor.accept(delivery)
        else:
            with trio.CancelScope() as scope:
                self._waiting.add(scope)
                try:
                    # Cancelled by stop() only while it waits for room: the store write
                    # after it is shielded, and nothing after that waits.
                    admission = await supervisor.accept(delivery, wait=True)
                finally:
                    self._waiting.discard(scope)
            if scope.cancelled_caught:
                raise Unavailable("the engine is shutting down", retry_after=10.0)
        if admission.correlation is not None:
            await self._offer(delivery.workflow, admission)
        return admission

    async def _offer(self, event: str, admission: Admission) -> None:
        """A stored event: to the waits on its value, and to ``cancel_on``."""
        value = admission.correlation
        assert value is not None
        woken = 0
        if self.events is not None and admission.handle is not None:
            woken = await self.events.offer(event, value, admission.handle.template_context())
        cancelled = await self.workflows.correlated(event, value)
        if self.events is not None and self.workflows.cancels_on(event):
            cancelled += await self._cancel_elsewhere(event, value, set(cancelled))
        if not woken and not cancelled and self.events is not None:
            self.events.unmatched(event, value)

    async def _cancel_elsewhere(self, event: str, value: str, done: set[str]) -> list[str]:
        """Cancel the executions an event's ``cancel_on`` matches that are not live
        here: parked (by any process, before a restart too) or run by another process
        sharing the store. Their ids."""
        assert self.events is not None
        why = f"cancelled by an event of {event} ({value})"
        cluster = self.workflows.cluster
        cancelled = []
        for execution_id in await self.store.cancel_targets(event, value):
            if execution_id in done or self.workflows.handle(execution_id) is not None:
                continue
            if await self.events.cancel(execution_id, why):
                cancelled.append(execution_id)
            elif cluster is not None:
                await cluster.request_cancel(execution_id)
                cancelled.append(execution_id)
        return cancelled

    async def replay(self, execution_id: str) -> Admission:
        record = await self.stored(execution_id)
        supervisor = self.supervisor(record.workflow)
        body = None
        if record.delivery_id is not None:
            original = await self.store.get_delivery(record.delivery_id)
            body = original.body if original is not None else None
        delivery = attrs.evolve(
            stored_delivery(record, body), id=new_id(), received_at=self.clock()
        )
        return await supervisor.replay(delivery, of=execution_id)

    async def retry(self, execution_id: str) -> Admission:
        record = await self.stored(execution_id)
        if record.status not in RETRYABLE or self.workflows.handle(execution_id) is not None:
            raise not_retryable(record)
        supervisor = self.supervisor(record.workflow)
        return await supervisor.retry(record, await recovered_delivery(self.store, record))

    async def record_rejection(self, delivery: Delivery, rejection: Rejected) -> None:
        if rejection.delivery_recorded:
            return
        record = delivery.record("rejected", reason=rejection.detail, status=rejection.status)
        try:
            await self.store.post(RecordDelivery(record))
        except StoreClosed:
            log.info("not recorded (the store has stopped): %s refused: %s", delivery.id, rejection)
