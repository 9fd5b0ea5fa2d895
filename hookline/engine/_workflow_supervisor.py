"""The WorkflowSupervisor: one per enabled workflow; admits, queues and runs executions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from .._ids import new_id
from ..errors import QueueFull, Unavailable
from ..nodes._base import NodeServices
from ..store._ops import AcceptDelivery, IdempotencyClaim, RecordDelivery
from ..store._records import Answer, ExecutionRecord, IdempotencyRecord
from ..store._store import Store
from ._actor import ActorStatistics
from ._answers import ExecutionOutcome, accepted_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._execution import Execution, ExecutionHandle
from ._idempotency import idempotency_key, replay
from ._mailbox import Mailbox, MailboxStatistics
from ._node_actor import NodeActor
from ._supervisor import ChildSpec, Restart, Supervisor, SupervisorStatistics

# How long recording the executions a crash interrupted may take, at most.
FAIL_TIMEOUT = 5.0


@attrs.frozen
class Admission:
    """A delivery let in: a new execution, or the replayed answer of an earlier one."""

    execution_id: str
    handle: ExecutionHandle | None
    answer: Answer | None
    replayed: bool = False


@attrs.frozen
class WorkflowStatistics:
    workflow: str
    queue: MailboxStatistics
    running: int
    completed: int
    failed: int
    supervisor: SupervisorStatistics
    nodes: tuple[ActorStatistics, ...]


class DrainRate:
    """Executions finished per second, smoothed, to tell a refused sender when to retry.

    ``clock`` gives the time in seconds; the workflow supervisor passes
    :func:`trio.current_time`, so a ``MockClock`` drives it in tests.
    """

    def __init__(
        self, half_life: float = 5.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._half_life = half_life
        self._clock = clock
        self._rate = 0.0
        self._last: float | None = None

    def tick(self) -> None:
        """One execution finished now."""
        now = self._clock()
        if self._last is None:
            # No interval yet: the first finish only starts the measurement.
            self._last = now
            return
        elapsed = max(now - self._last, 1e-6)
        weight = 0.5 ** (elapsed / self._half_life)
        self._rate = self._rate * weight + (1 - weight) / elapsed
        self._last = now

    @property
    def rate(self) -> float:
        """The smoothed rate, in executions per second (0 before two finishes)."""
        return self._rate

    def retry_after(self, backlog: int) -> float:
        """Seconds until ``backlog`` executions have drained, between 1 and 60; 5 while
        nothing has finished yet."""
        if self._rate <= 0:
            return 5.0
        return float(min(60, max(1, math.ceil(backlog / self._rate))))


def _lone_error(exc: Exception) -> Exception:
    """The one error inside (nested) single-error groups, else ``exc`` itself."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class _Slot:
    """One of the workflow's ``concurrency.max`` execution slots, while it is taken."""


class WorkflowSupervisor:
    """Owns one workflow's queue, its NodeActors and its running executions.

    ``accept`` reserves a queue slot before anything is stored, so a full queue is
    refused with :class:`QueueFull` (429) and an accepted delivery can always be queued.
    """

    def __init__(self, workflow: Workflow, store: Store, *, services: NodeServices) -> None:
        self.workflow = workflow
        self.store = store
        self.services = services
        key = workflow.key
        self.queue: Mailbox[ExecutionHandle] = Mailbox(
            workflow.concurrency.queue, name=f"workflow:{key}"
        )
        capacity = max(64, workflow.concurrency.max * 4)
        self.actors = {
            node.key: NodeActor(key, node, capacity=capacity) for node in workflow.walk()
        }
        self.running: dict[str, ExecutionHandle] = {}
        # Every live execution of this workflow, queued or running, by id.
        self.handles: dict[str, ExecutionHandle] = {}
        self.supervisor = Supervisor(f"workflow:{key}")
        self._completed = 0
        self._failed = 0
        self._drain = DrainRate(clock=trio.current_time)
        self._retired = trio.Event()
        self._intake = trio.CancelScope()
        self._intake_stopped = False
        self._retiring = False
        self._idle = trio.Event()
        self._idle.set()
        # Executions cut off from outside (shutdown or crash), to be settled by run().
        self._interrupted: list[ExecutionHandle] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the NodeActors and the execution loop under this workflow's supervisor;
        run until retired and drained, or until cancelled.

        Raises RestartIntensityExceeded when the supervisor gives up: the executions it
        was running are then recorded ``failed``. Cancelled from outside (shutdown),
        they stay ``running`` in the store, to resume on next start.
        """
        children = [ChildSpec(f"node:{key}", actor.run) for key, actor in self.actors.items()]
        children.append(ChildSpec("executions", self._run_executions, Restart.TRANSIENT))
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.supervisor.run, children)
                task_status.started()
                await self._retired.wait()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            crash = _lone_error(exc)
            await self._fail_interrupted(crash)
            if crash is exc:
                raise
            raise crash from crash.__cause__
        finally:
            self._abandon_interrupted()

    def retire(self) -> None:
        """Take no more deliveries; finish what is queued and running, then stop.

        A delivery being accepted right now (its records being written) still runs.
        """
        self._retiring = True
        self._close_if_retiring()

    @property
    def retired(self) -> bool:
        """True once retired and every execution it held has ended."""
        return self._retired.is_set()

    def _close_if_retiring(self) -> None:
        # Closing with a slot reserved would strand an execution already stored.
        if self._retiring and self.queue.statistics().reserved == 0:
            self.queue.close()

    def roots(self, delivery: Delivery, execution_id: str | None = None) -> dict[str, Any]:
        """Template roots for what is rendered at intake (idempotency key, response)."""
        return {
            "context": delivery.context(),
            "nodes": {},
            "scopes": {},
            "execution": {"id": execution_id},
            "workflow": {"key": self.workflow.key, "title": self.workflow.title},
            "system": {},
            "env": dict(self.services.env),
        }

    async def accept(self, delivery: Delivery) -> Admission:
        """Store the delivery and its new execution, then queue it.

        Raises QueueFull when the queue has no room, IdempotencyConflict (409) or
        IdempotencyMismatch (422) for a repeated key; replays the first answer of a
        finished duplicate. A rejection raised before the store write is recorded by the
        caller.
        """
        workflow = self.workflow
        if self._retiring:
            raise Unavailable(f"workflow '{workflow.key}' is being replaced", retry_after=1.0)
        key = idempotency_key(workflow, delivery, self.roots(delivery))
        body_hash = delivery.body_hash()
        if key is not None:
            earlier = await self.store.get_idempotency(workflow.key, key)
            if earlier is not None:
                admission = self._replay(delivery, earlier, body_hash)
                await self.store.post(
                    RecordDelivery(
                        delivery.record(
                            "duplicate",
                            status=admission.answer.status if admission.answer else None,
                            execution_id=earlier.execution_id,
                        )
                    )
                )
                return admission
        try:
            reservation = self.queue.reserve_nowait()
        except trio.WouldBlock:
            backlog = self.queue.statistics().depth + len(self.running)
            raise QueueFull(
                f"the queue of workflow '{workflow.key}' is full",
                retry_after=self._drain.retry_after(backlog),
            ) from None
        try:
            execution_id = new_id()
            now = time.time()
            answer = None
            if workflow.trigger.mode == "async":
                answer = accepted_answer(workflow, execution_id, self.roots(delivery, execution_id))
            claim = None
            if key is not None:
                expires = now + workflow.trigger.idempotency.ttl
                claim = IdempotencyClaim(key, body_hash, expires)
            record = delivery.record(
                "accepted",
                status=answer.status if answer is not None else None,
                execution_id=execution_id,
            )
            execution = ExecutionRecord(
                id=execution_id,
                workflow=workflow.key,
                delivery_id=delivery.id,
                status="queued",
                created_at=now,
                context=delivery.stored_context(),
            )
            # Shielded: once the write is queued it commits, and a committed execution
            # must be queued here too, even if the caller has gone meanwhile.
            with trio.CancelScope(shield=True):
                result = await self.store.write(AcceptDelivery(record, execution, claim, answer))
            if isinstance(result, IdempotencyRecord):
                return self._replay(delivery, result, body_hash, recorded=True)
            handle = ExecutionHandle(execution_id, workflow, delivery, idempotency_key=key)
            if answer is not None:
                handle.set_answer(answer)
            self.handles[execution_id] = handle
            reservation.send(handle)
            return Admission(execution_id, handle, answer)
        finally:
            reservation.release()
            self._close_if_retiring()

    def _replay(
        self,
        delivery: Delivery,
        earlier: IdempotencyRecord,
        body_hash: str,
        *,
        recorded: bool = False,
    ) -> Admission:
        try:
            answer = replay(earlier, body_hash)
        except Exception as exc:
            exc.delivery_recorded = recorded  # type: ignore[attr-defined]
            raise
        return Admission(earlier.execution_id, None, answer, replayed=True)

    async def _run_executions(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        limiter = trio.CapacityLimiter(self.workflow.concurrency.max)
        async with trio.open_nursery() as nursery:
            task_status.started()
            with trio.CancelScope() as self._intake:
                if self._intake_stopped:
                    self._intake.cancel()
                while True:
                    # Take a slot first, then an execution: one waiting for a slot stays
                    # in the queue, where it counts against ``concurrency.queue``.
                    slot = _Slot()
                    await limiter.acquire_on_behalf_of(slot)
                    try:
                        handle = await self.queue.receive()
                    except trio.EndOfChannel:
                        break  # retired, and the queue is drained
                    if handle.id not in self.handles:
                        limiter.release_on_behalf_of(slot)  # cancelled while queued
                        continue
                    if not self.running:
                        self._idle = trio.Event()
                    self.running[handle.id] = handle
                    nursery.start_soon(self._execute, handle, limiter, slot)
        self._retired.set()

    def stop_intake(self) -> None:
        """Start no more queued executions (shutdown); running ones go on. Those left
        in the queue stay ``queued`` in the store for the next start."""
        self._intake_stopped = True
        self._intake.cancel()

    async def wait_idle(self) -> None:
        """Return once no execution of this workflow is running (queued ones may wait)."""
        while self.running:
            await self._idle.wait()

    async def cancel(self, execution_id: str) -> bool:
        """Cancel a live execution: running, its jobs are cancelled at once; queued, it
        is recorded ``cancelled`` now and never starts. False if it is not live here."""
        handle = self.handles.get(execution_id)
        if handle is None:
            return False
        handle.cancel()
        if execution_id not in self.running:
            del self.handles[execution_id]
            await self._execution(handle).run()
            self._completed += 1
            self._failed += 1  # as a cancelled running one counts
        return True

    def _execution(self, handle: ExecutionHandle) -> Execution:
        return Execution(handle, self.actors, self.store, services=self.services)

    async def _execute(
        self, handle: ExecutionHandle, limiter: trio.CapacityLimiter, slot: _Slot
    ) -> None:
        try:
            outcome = await self._execution(handle).run()
            self._completed += 1
            if not outcome.succeeded:
                self._failed += 1
        finally:
            del self.running[handle.id]
            del self.handles[handle.id]
            if not self.running:
                self._idle.set()
            limiter.release_on_behalf_of(slot)
            self._drain.tick()
            if not handle.finished:
                # Interrupted from outside: shutdown or a crash; run() decides which.
                self._interrupted.append(handle)

    async def _fail_interrupted(self, exc: Exception) -> None:
        interrupted, self._interrupted = self._interrupted, []
        error = f"interrupted: the supervisor of workflow '{self.workflow.key}' crashed ({exc})"
        with trio.move_on_after(FAIL_TIMEOUT, shield=True):
            for handle in interrupted:
                outcome = ExecutionOutcome(handle.id, self.workflow.key, "failed", None, error)
                await self._execution(handle).finish(outcome)
                self._completed += 1
                self._failed += 1

    def _abandon_interrupted(self) -> None:
        interrupted, self._interrupted = self._interrupted, []
        for handle in interrupted:
            if not handle.finished:
                # The record stays ``running``: the next start resumes it.
                handle.set_outcome(
                    ExecutionOutcome(
                        handle.id, self.workflow.key, "cancelled", None, "the engine stopped"
                    )
                )

    def statistics(self) -> WorkflowStatistics:
        return WorkflowStatistics(
            workflow=self.workflow.key,
            queue=self.queue.statistics(),
            running=len(self.running),
            completed=self._completed,
            failed=self._failed,
            supervisor=self.supervisor.statistics(),
            nodes=tuple(actor.statistics() for actor in self.actors.values()),
        )
