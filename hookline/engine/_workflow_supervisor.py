"""The WorkflowSupervisor: one per enabled workflow; admits, queues and runs executions.

Executions wait in the workflow's bounded queue, then run under ``concurrency.max``.
With ``concurrency.order_by``, executions sharing a key run one at a time in arrival
order (:mod:`._lanes` decides, this module carries it out). Executions found unfinished
at start-up, and retried ones, go first, ahead of new deliveries.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import attrs
import trio

from .._ids import new_id
from ..errors import ExecutionConflict, QueueFull, Unavailable
from ..nodes._base import NodeServices
from ..store._ops import AcceptDelivery, IdempotencyClaim, RecordDelivery, RequeueExecution
from ..store._records import Answer, ExecutionRecord, IdempotencyRecord
from ..store._store import Store
from ._actor import ActorStatistics
from ._answers import ExecutionOutcome, accepted_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._drain import DrainRate
from ._execution import Execution, ExecutionHandle
from ._idempotency import idempotency_key, replay
from ._lanes import Lanes
from ._mailbox import Mailbox, MailboxStatistics, Reservation
from ._node_actor import NodeActor
from ._supervisor import ChildSpec, Restart, Supervisor, SupervisorStatistics

__all__ = ["Admission", "DrainRate", "WorkflowStatistics", "WorkflowSupervisor"]

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
    """``queue`` is the mailbox of new executions; ``parked`` ones wait behind a running
    execution with the same order key; ``resuming`` ones (found at start-up, retried)
    wait to start ahead of the queue."""

    workflow: str
    queue: MailboxStatistics
    running: int
    completed: int
    failed: int
    supervisor: SupervisorStatistics
    nodes: tuple[ActorStatistics, ...]
    parked: int = 0
    resuming: int = 0


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
    Executions parked behind another of their order key count against the queue too.
    ``version`` is the stored version number of ``workflow``'s definition, recorded on
    each execution it accepts (None: not known).
    """

    def __init__(
        self,
        workflow: Workflow,
        store: Store,
        *,
        services: NodeServices,
        version: int | None = None,
    ) -> None:
        self.workflow = workflow
        self.version = version
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
        # Ordering: the order key of each live execution that has one, and the lanes.
        self._order_keys: dict[str, str] = {}
        self._lanes: Lanes[ExecutionHandle] = Lanes()
        # Resumed and retried executions: they start before anything in the queue.
        self._ready: deque[ExecutionHandle] = deque()
        self._wake: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None

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

    def roots(
        self,
        delivery: Delivery,
        execution_id: str | None = None,
        *,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Template roots for what is rendered at intake (idempotency key, response);
        ``context`` is the delivery's ``$context`` when the caller built it already."""
        return {
            "context": delivery.context() if context is None else context,
            "nodes": {},
            "scopes": {},
            "execution": {"id": execution_id},
            "workflow": {"key": self.workflow.key, "title": self.workflow.title},
            "system": {},
            "env": dict(self.services.env),
        }

    def order_key(self, delivery: Delivery, roots: dict[str, Any] | None = None) -> str | None:
        """The delivery's ``concurrency.order_by`` key; None when the workflow has none
        or it renders empty (then the execution is not ordered)."""
        template = self.workflow.concurrency.order_by
        if template is None:
            return None
        value = template.render(self.roots(delivery) if roots is None else roots)
        return None if value is None or value == "" else str(value)

    @property
    def backlog(self) -> int:
        """Executions waiting to start: queued, being admitted, parked and resuming."""
        queue = self.queue.statistics()
        return queue.depth + queue.reserved + self._lanes.parked + len(self._ready)

    @property
    def drain_rate(self) -> float:
        """Executions finished per second, smoothed."""
        return self._drain.rate

    # -- admission -------------------------------------------------------------------

    async def accept(self, delivery: Delivery) -> Admission:
        """Store the delivery and its new execution, then queue it.

        Raises QueueFull when the queue has no room, IdempotencyConflict (409) or
        IdempotencyMismatch (422) for a repeated key; replays the first answer of a
        finished duplicate. A rejection raised before the store write is recorded by the
        caller.
        """
        # The $context is built once per delivery: the intake templates, the stored
        # record and the execution all read the same one.
        context = delivery.context()
        roots = self.roots(delivery, context=context)
        key = idempotency_key(self.workflow, delivery, roots)
        body_hash = delivery.body_hash()
        if key is not None:
            earlier = await self.store.get_idempotency(self.workflow.key, key)
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
        reservation = self._reserve()
        return await self._admit(
            delivery, key, body_hash, reservation, context=context, roots=roots
        )

    async def replay(self, delivery: Delivery, of: str) -> Admission:
        """Start a new execution from ``delivery`` (a copy of the one execution ``of``
        started from), with no idempotency claim. Raises QueueFull or Unavailable as
        :meth:`accept` does."""
        context = delivery.context()
        return await self._admit(
            delivery,
            None,
            delivery.body_hash(),
            self._reserve(),
            context=context,
            roots=self.roots(delivery, context=context),
            reason=f"replay of {of}",
        )

    async def _admit(
        self,
        delivery: Delivery,
        key: str | None,
        body_hash: str,
        reservation: Reservation[ExecutionHandle],
        *,
        context: dict[str, Any],
        roots: dict[str, Any],
        reason: str | None = None,
    ) -> Admission:
        workflow = self.workflow
        try:
            execution_id = new_id()
            now = time.time()
            answer = None
            order_key = self.order_key(delivery, roots)
            if workflow.trigger.mode == "async":
                roots["execution"] = {"id": execution_id}
                answer = accepted_answer(workflow, execution_id, roots)
            claim = None
            if key is not None:
                expires = now + workflow.trigger.idempotency.ttl
                claim = IdempotencyClaim(key, body_hash, expires)
            record = delivery.record(
                "accepted",
                status=answer.status if answer is not None else None,
                execution_id=execution_id,
                reason=reason,
            )
            execution = ExecutionRecord(
                id=execution_id,
                workflow=workflow.key,
                delivery_id=delivery.id,
                status="queued",
                created_at=now,
                context={**context, "headers": record.headers},
                order_key=order_key,
                workflow_version=self.version,
            )
            # Shielded: once the write is queued it commits, and a committed execution
            # must be queued here too, even if the caller has gone meanwhile.
            with trio.CancelScope(shield=True):
                result = await self.store.write(AcceptDelivery(record, execution, claim, answer))
            if isinstance(result, IdempotencyRecord):
                return self._replay(delivery, result, body_hash, recorded=True)
            handle = ExecutionHandle(
                execution_id, workflow, delivery, idempotency_key=key, context=context
            )
            if answer is not None:
                handle.set_answer(answer)
            self._track(handle, order_key)
            reservation.send(handle)
            return Admission(execution_id, handle, answer)
        finally:
            reservation.release()
            self._close_if_retiring()

    def _reserve(self) -> Reservation[ExecutionHandle]:
        if self._retiring:
            raise Unavailable(f"workflow '{self.workflow.key}' is being replaced", retry_after=1.0)
        # Parked and resuming executions hold no mailbox slot but count against the queue.
        backlog = self.backlog
        if backlog < self.workflow.concurrency.queue:
            try:
                return self.queue.reserve_nowait()
            except trio.WouldBlock:
                pass
        raise QueueFull(
            f"the queue of workflow '{self.workflow.key}' is full",
            retry_after=self._drain.retry_after(backlog + len(self.running)),
        )

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

    def _track(self, handle: ExecutionHandle, order_key: str | None) -> None:
        self.handles[handle.id] = handle
        if order_key is not None:
            self._order_keys[handle.id] = order_key

    def resume(self, record: ExecutionRecord, delivery: Delivery) -> ExecutionHandle:
        """Queue a stored execution found unfinished at start-up, ahead of the queue
        and regardless of its limits (it was accepted before). Its jobs that succeeded
        are not run again."""
        handle = self._resumed(record, delivery)
        self._make_ready(handle)
        return handle

    async def retry(self, record: ExecutionRecord, delivery: Delivery) -> Admission:
        """Set an ended execution back to ``queued`` and run it again from its first
        job that did not succeed.

        Raises ExecutionConflict unless it ended failed, timed out or cancelled (checked
        again in the store, so of two retries one wins), QueueFull or Unavailable as
        :meth:`accept` does.
        """
        reservation = self._reserve()
        try:
            with trio.CancelScope(shield=True):
                requeued = await self.store.write(RequeueExecution(record.id))
            if not requeued:
                raise ExecutionConflict(
                    f"execution {record.id} is {record.status}: only failed, timed out "
                    "and cancelled executions can be retried"
                )
            handle = self._resumed(record, delivery)
            reservation.send(handle)
            return Admission(record.id, handle, None)
        finally:
            reservation.release()
            self._close_if_retiring()

    def _resumed(self, record: ExecutionRecord, delivery: Delivery) -> ExecutionHandle:
        # The key is found again from the rebuilt delivery (key headers are not secret),
        # so a sync execution still records its answer for later duplicates.
        key = idempotency_key(self.workflow, delivery, self.roots(delivery))
        handle = ExecutionHandle(
            record.id, self.workflow, delivery, idempotency_key=key, resumed=True
        )
        self._track(handle, record.order_key)
        return handle

    def _make_ready(self, handle: ExecutionHandle) -> None:
        self._ready.append(handle)
        if self._wake is not None:
            self._wake.cancel()

    # -- running ---------------------------------------------------------------------

    async def _next(self) -> ExecutionHandle:
        """The next execution to consider: resuming ones first, then the queue."""
        while True:
            if self._ready:
                return self._ready.popleft()
            try:
                # Without a scope when one is waiting: taking the slot was the checkpoint.
                return self.queue.receive_nowait()
            except trio.WouldBlock:
                pass
            with trio.CancelScope() as self._wake:
                return await self.queue.receive()
            # Woken by _make_ready: an execution is ready.

    async def _run_executions(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        limiter = trio.CapacityLimiter(self.workflow.concurrency.max)
        # Restarted after a crash: what was parked or waiting goes first, by age.
        waiting = [*self._ready, *self._lanes.reset()]
        self._ready = deque(sorted(waiting, key=lambda handle: handle.id))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
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
                        handle = await self._next()
                    except trio.EndOfChannel:
                        break  # retired, and the queue is drained
                    if handle.id not in self.handles:
                        limiter.release_on_behalf_of(slot)  # cancelled while queued
                        continue
                    if not self._lanes.admit(self._order_keys.get(handle.id), handle):
                        limiter.release_on_behalf_of(slot)  # parked behind its key
                        continue
                    self._start(handle, limiter, slot)
        self._retired.set()

    def _start(self, handle: ExecutionHandle, limiter: trio.CapacityLimiter, slot: _Slot) -> None:
        assert self._nursery is not None
        if not self.running:
            self._idle = trio.Event()
        self.running[handle.id] = handle
        self._nursery.start_soon(self._execute, handle, limiter, slot)

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
            self._lanes.remove(self._order_keys.pop(execution_id, None), handle)
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
            order_key = self._order_keys.pop(handle.id, None)
            self._drain.tick()
            if not handle.finished:
                # Interrupted from outside: shutdown or a crash; run() decides which.
                self._interrupted.append(handle)
                limiter.release_on_behalf_of(slot)
            else:
                self._hand_over(order_key, limiter, slot)
            if not self.running:
                self._idle.set()

    def _hand_over(self, order_key: str | None, limiter: trio.CapacityLimiter, slot: _Slot) -> None:
        """An execution ended: the next one of its lane takes its slot at once."""
        successor = self._lanes.release(order_key)
        assert self._nursery is not None
        stopping = self._intake_stopped or self._nursery.cancel_scope.cancel_called
        if successor is None or stopping:
            limiter.release_on_behalf_of(slot)
            if successor is not None:
                # Left for the next start (shutdown) or for the restarted loop (crash).
                # (The restarted loop frees every lane before it reads this.)
                self._ready.appendleft(successor)
            return
        self._start(successor, limiter, slot)

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
            parked=self._lanes.parked,
            resuming=len(self._ready),
        )
