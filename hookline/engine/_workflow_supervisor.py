"""The WorkflowSupervisor: one per enabled workflow; admits its deliveries and
supervises its NodeActors and the runner of its executions.

What admission decides is pure code in :mod:`._admission`; running the admitted
executions (queue, concurrency, ordering) is :mod:`._workflow_runner`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._ids import new_id
from ..definition import MailboxStatistics, Reservation, format_duration
from ..errors import QueueFull, RateLimited, Unavailable
from ..nodes._base import NodeServices
from ..store._ops import RecordDelivery, RequeueExecution, SaveCancelKeys
from ..store._records import RESUMABLE_STATUSES, ExecutionRecord, IdempotencyRecord
from ..store._store import Store
from ._actor import ActorStatistics
from ._admission import (
    Admission,
    accept_op,
    cancel_keys,
    priority,
    rate_key,
    replayed,
    template_roots,
)
from ._definition import Workflow
from ._delivery import Delivery
from ._gcra import Gcra
from ._groups import lone_error
from ._handle import ExecutionHandle
from ._idempotency import idempotency_key
from ._inline_run import all_inline, run_inline, runs_inline
from ._node_actor import NodeActor
from ._recovery import RETRYABLE, not_retryable
from ._supervisor import ChildSpec, Restart, RestartPolicy, Supervisor, SupervisorStatistics
from ._workflow_runner import WorkflowRunner

if TYPE_CHECKING:
    from ._cluster import Cluster

# How long a delivery waiting for room (``wait=True``) waits before it looks again when
# parked or resuming executions, not the queue itself, fill the queue's limit.
BACKLOG_RECHECK = 0.05

# Admission lives in ._admission; importers of it from here keep working.
__all__ = ["Admission", "WorkflowStatistics", "WorkflowSupervisor"]


@attrs.frozen
class WorkflowStatistics:
    """``completed`` counts the executions that ended, whatever their status;
    ``failed``, ``cancelled`` and ``timed_out`` those that ended so (the rest
    succeeded). ``queue`` is the mailbox of new executions; ``parked`` ones wait behind
    a running execution with the same order key; ``resuming`` ones (found at start-up,
    retried) wait to start ahead of the queue. On a store shared by several processes
    the limits hold across all of them: no execution is parked, and ``waiting`` ones
    wait for a start permit (counted in ``queue.depth``, not in ``running``).
    ``throttled`` ones wait for the start ``throttle`` booked for them, ``debouncing``
    ones for their ``debounce`` key to be quiet, ``batching`` ones in an open ``batch``
    (each ends batched into its batch's execution, or is that execution)."""

    workflow: str
    queue: MailboxStatistics
    running: int
    completed: int
    failed: int
    supervisor: SupervisorStatistics
    nodes: tuple[ActorStatistics, ...]
    parked: int = 0
    resuming: int = 0
    waiting: int = 0
    cancelled: int = 0
    timed_out: int = 0
    #: When (wall clock) the oldest execution waiting to start was received; None
    #: when none waits (alerts on ``oldest_queued`` read it).
    oldest_queued_at: float | None = None
    throttled: int = 0
    debouncing: int = 0
    batching: int = 0


class WorkflowSupervisor:
    """Owns one workflow's queue, its NodeActors and its running executions.

    ``accept`` reserves a queue slot before anything is stored, so a full queue is
    refused with :class:`QueueFull` (429) and an accepted delivery can always be queued.
    Executions parked behind another of their order key count against the queue too.
    ``version`` is the stored version number of ``workflow``'s definition, recorded on
    each execution it runs (None: not known). With a ``cluster`` (a store shared by
    several processes), its limits hold across all of them. ``restart`` is how many
    crashes of its actors its supervisor absorbs.
    """

    def __init__(
        self,
        workflow: Workflow,
        store: Store,
        *,
        services: NodeServices,
        version: int | None = None,
        cluster: Cluster | None = None,
        restart: RestartPolicy | None = None,
    ) -> None:
        self.workflow = workflow
        self.version = version
        self.store = store
        self.services = services
        capacity = max(64, workflow.concurrency.max * 4)
        self.actors = {
            node.key: NodeActor(workflow.key, node, capacity=capacity) for node in workflow.walk()
        }
        self.runner = WorkflowRunner(workflow, self.actors, store, services, cluster)
        # A throttled or debounced workflow's executions may have to wait: none runs
        # whole at admission.
        waits = workflow.throttle is not None or workflow.debounce is not None
        waits = waits or workflow.batch is not None
        self._runs_inline = runs_inline(workflow) and not waits
        self._awaits = not all_inline(workflow)  # its run at admission awaits pure nodes
        rule = workflow.rate_limit
        self._rate_limit = Gcra(rule.rate) if rule is not None else None
        # cancel_on: each live execution's rendered (event, match) pairs.
        self._matches: dict[str, set[tuple[str, str]]] = {}
        self.supervisor = Supervisor(f"workflow:{workflow.key}", policy=restart)
        self._retiring = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the NodeActors and the execution runner under this workflow's
        supervisor; run until retired and drained, or until cancelled.

        Raises RestartIntensityExceeded when the supervisor gives up: the executions it
        was running are then recorded ``failed``. Cancelled from outside (shutdown),
        they stay ``running`` in the store, to resume on next start.
        """
        children = [ChildSpec(f"node:{key}", actor.run) for key, actor in self.actors.items()]
        children.append(ChildSpec("executions", self.runner.run, Restart.TRANSIENT))
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.supervisor.run, children)
                task_status.started()
                await self.runner.ended.wait()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            crash = lone_error(exc)
            await self.runner.fail_interrupted(crash)
            if crash is exc:
                raise
            raise crash from crash.__cause__
        finally:
            self.runner.abandon_interrupted()

    def retire(self) -> None:
        """Take no more deliveries; finish what is queued and running, then stop.

        A delivery being accepted right now (its records being written) still runs.
        """
        self._retiring = True
        self._close_if_retiring()

    @property
    def retired(self) -> bool:
        """True once retired and every execution it held has ended."""
        return self.runner.ended.is_set()

    def _close_if_retiring(self) -> None:
        # Closing with a slot reserved would strand an execution already stored.
        if self._retiring and self.runner.queue.statistics().reserved == 0:
            self.runner.queue.close()

    def _roots(self, delivery: Delivery) -> dict[str, Any]:
        """Template roots for what is rendered at intake (idempotency key, order key,
        response)."""
        return template_roots(self.workflow, delivery.context(), None, self.services.env)

    # -- admission -------------------------------------------------------------------

    async def accept(self, delivery: Delivery, *, wait: bool = False) -> Admission:
        """Store the delivery and its new execution, then queue it.

        Raises QueueFull when the queue has no room (with ``wait``, waits for room in
        turn instead; Unavailable if the workflow is replaced meanwhile),
        IdempotencyConflict (409) or IdempotencyMismatch (422) for a repeated key;
        replays the first answer of a finished duplicate. A rejection raised before the
        store write is recorded by the caller.
        """
        # The $context is built once per delivery (in the roots): the intake templates,
        # the stored record and the execution all read the same one.
        roots = self._roots(delivery)
        await self._check_rate(roots)
        key = idempotency_key(self.workflow, delivery, roots)
        # The body is hashed only to tell a retry from a reuse of its key.
        body_hash = delivery.body_hash() if key is not None else ""
        try:
            # No read of the key first: the accepting transaction checks it anyway.
            admission = await self._admit(delivery, key, body_hash, roots, wait=wait)
            correlate = self.workflow.trigger.correlate
            if correlate is None or admission.replayed:
                return admission
            # A delivery that renders no value (a Slack mention, not a reaction) is no event.
            value = rate_key(correlate, roots)
            return attrs.evolve(admission, correlation=value) if value else admission
        except QueueFull:
            if key is None:
                raise
            # A duplicate gets its first answer again, even while the queue is full.
            earlier = await self.store.get_idempotency(self.workflow.key, key)
            if earlier is None:
                raise
        return await self._duplicate(delivery, earlier, body_hash)

    def cancel_matching(self, event: str, value: str) -> list[str]:
        """The live executions whose ``cancel_on`` for workflow ``event`` matches
        ``value``: each cancel_on ``match`` rendered once per execution, then kept."""
        rules = [rule for rule in self.workflow.cancel_on if rule.event == event]
        if not rules:
            return []
        handles = self.runner.handles
        if len(self._matches) > 2 * len(handles) + 64:  # forget ended executions
            self._matches = {id_: self._matches[id_] for id_ in handles if id_ in self._matches}
        found = []
        for handle in handles.values():
            values = self._matches.get(handle.id)
            if values is None:
                context = handle.template_context()
                values = set(cancel_keys(self.workflow, context, handle.id, self.services.env))
                self._matches[handle.id] = values
            if (event, value) in values:
                found.append(handle.id)
        return found

    async def _check_rate(self, roots: dict[str, Any]) -> None:
        """Refuse the delivery (429) past the workflow's ``rate_limit`` for its key:
        this process's rate, or on a store shared by several, theirs together."""
        limiter, rule, cluster = self._rate_limit, self.workflow.rate_limit, self.runner.cluster
        if limiter is None or rule is None:
            return
        key = rate_key(rule.key, roots)
        if cluster is None:
            wait = limiter.take(key, trio.current_time())
        else:
            scope = f"rate_limit:{self.workflow.key}"
            wait = await cluster.take_rate(scope, key, rule.rate.interval, rule.rate.tolerance)
        if wait > 0:
            raise RateLimited(
                f"workflow '{self.workflow.key}' takes at most {rule.rate.limit} deliveries "
                f"per {format_duration(rule.rate.period)} for this sender",
                retry_after=wait,
            )

    async def _duplicate(
        self, delivery: Delivery, earlier: IdempotencyRecord, body_hash: str
    ) -> Admission:
        """The first answer again for a duplicate of ``earlier``, recorded; 409 or 422
        (raised, for the caller to record) when it cannot be replayed."""
        admission = replayed(earlier, body_hash)
        status = admission.answer.status if admission.answer else None
        duplicate = delivery.record("duplicate", status=status, execution_id=earlier.execution_id)
        await self.store.post(RecordDelivery(duplicate))
        return admission

    async def replay(self, delivery: Delivery, of: str) -> Admission:
        """Start a new execution from ``delivery`` (a copy of the one execution ``of``
        started from), with no idempotency claim. Raises QueueFull or Unavailable as
        :meth:`accept` does."""
        roots = self._roots(delivery)
        return await self._admit(
            delivery, None, delivery.body_hash(), roots, reason=f"replay of {of}"
        )

    async def _admit(
        self,
        delivery: Delivery,
        key: str | None,
        body_hash: str,
        roots: dict[str, Any],
        *,
        reason: str | None = None,
        wait: bool = False,
    ) -> Admission:
        if self._runs_inline and self._may_run_now():
            admission = await self._admit_run(delivery, key, body_hash, roots, reason)
            if admission is not None:
                return admission
        reservation = await self._reserve_waiting() if wait else self._reserve()
        try:
            op = accept_op(
                self.workflow,
                delivery,
                new_id(),
                now=self.services.clock(),
                key=key,
                body_hash=body_hash,
                roots=roots,
                version=self.version,
                reason=reason,
            )
            # Shielded: once the write is queued it commits, and a committed execution
            # must be queued here too, even if the caller has gone meanwhile.
            with trio.CancelScope(shield=True):
                if self.workflow.cancel_on:
                    # Committed with it (queued first): an event accepted by any
                    # process, or after a restart while it is parked, finds it.
                    keys = cancel_keys(
                        self.workflow, roots["context"], op.execution.id, self.services.env
                    )
                    await self.store.post(SaveCancelKeys(op.execution.id, keys))
                result = await self.store.write(op)
            if isinstance(result, IdempotencyRecord):
                return await self._duplicate(delivery, result, body_hash)
            execution = op.execution
            handle = ExecutionHandle(
                execution.id,
                self.workflow,
                delivery,
                idempotency_key=key,
                context=roots["context"],
                priority=priority(self.workflow, roots),
            )
            if op.answer is not None:
                handle.set_answer(op.answer)
            self.runner.track(handle, execution.order_key)
            reservation.send(handle)
            return Admission(execution.id, handle, op.answer)
        finally:
            reservation.release()
            self._close_if_retiring()

    @contextmanager
    def _slot_for_run(self) -> Iterator[bool]:
        """A run at admission that awaits (pure nodes) holds one of the runner's
        ``concurrency.max`` slots meanwhile: False when none is free (or executions
        are ordered by key), and it queues instead. One that never awaits needs none."""
        limiter = self.runner.limiter
        if not self._awaits:
            yield True
            return
        if limiter is None or self.workflow.concurrency.order_by is not None:
            yield False
            return
        slot = object()
        try:
            limiter.acquire_on_behalf_of_nowait(slot)
        except trio.WouldBlock:
            yield False
            return
        try:
            yield True
        finally:
            limiter.release_on_behalf_of(slot)

    def _may_run_now(self) -> bool:
        """Whether an execution may run whole at admission: no other process shares
        the limits, none of this workflow's executions is live here (so ``max`` and
        order per key hold), and the workflow is not being replaced."""
        runner = self.runner
        return runner.cluster is None and not runner.handles and not self._retiring

    async def _admit_run(
        self,
        delivery: Delivery,
        key: str | None,
        body_hash: str,
        roots: dict[str, Any],
        reason: str | None,
    ) -> Admission | None:
        """Run a sync execution of quick or pure nodes whole, then accept it finished
        in one transaction (see :mod:`._inline_run`). None: it is too long to run here,
        or it would await with no ``concurrency.max`` slot free."""
        execution_id = new_id()
        roots["execution"] = {"id": execution_id}
        with self._slot_for_run() as free:
            if not free:
                return None
            ran = await run_inline(self.workflow, execution_id, roots, self.actors, self.services)
        if ran is None:
            return None
        op = accept_op(
            self.workflow,
            delivery,
            execution_id,
            now=ran.started_at,
            key=key,
            body_hash=body_hash,
            roots=roots,
            version=self.version,
            reason=reason,
            ran=ran,
        )
        # Shielded: once queued it commits, and its sender must hear of it.
        with trio.CancelScope(shield=True):
            result = await self.store.write(op)
        if isinstance(result, IdempotencyRecord):
            return await self._duplicate(delivery, result, body_hash)
        handle = ExecutionHandle(
            execution_id, self.workflow, delivery, idempotency_key=key, context=roots["context"]
        )
        outcome = ran.outcome(execution_id, self.workflow.key)
        ran.count(self.actors)
        handle.set_answer(ran.answer)
        handle.set_outcome(outcome)
        self.runner.count(outcome)
        self.runner.drain.tick()
        return Admission(execution_id, handle, ran.answer)

    def _replaced(self) -> Unavailable:
        return Unavailable(f"workflow '{self.workflow.key}' is being replaced", retry_after=1.0)

    async def _reserve_waiting(self) -> Reservation[ExecutionHandle]:
        """A queue slot as :meth:`_reserve` takes one, waiting for room in turn instead
        of raising QueueFull. Raises Unavailable once the workflow is being replaced."""
        while True:
            if self._retiring:
                raise self._replaced()
            try:
                reservation = await self.runner.queue.reserve()
            except trio.ClosedResourceError:
                raise self._replaced() from None
            # Parked and resuming executions count against the queue too (the slot
            # just taken is in the backlog).
            if not self._retiring and self.runner.backlog <= self.workflow.concurrency.queue:
                return reservation
            reservation.release()
            # Those leave the backlog as running executions end: look again shortly.
            await trio.sleep(BACKLOG_RECHECK)

    def _reserve(self) -> Reservation[ExecutionHandle]:
        if self._retiring:
            raise self._replaced()
        # Parked and resuming executions hold no mailbox slot but count against the queue.
        backlog = self.runner.backlog
        if backlog < self.workflow.concurrency.queue:
            try:
                return self.runner.queue.reserve_nowait()
            except trio.WouldBlock:
                pass
        raise QueueFull(
            f"the queue of workflow '{self.workflow.key}' is full",
            retry_after=self.runner.drain.retry_after(backlog + len(self.runner.running)),
        )

    async def resume(
        self, record: ExecutionRecord, delivery: Delivery, handle: ExecutionHandle | None = None
    ) -> ExecutionHandle:
        """Queue a stored execution found unfinished at start-up (or whose wait
        ended), ahead of the queue and regardless of its limits (it was accepted
        before). Its jobs that succeeded are not run again; it runs with this
        supervisor's definition, so its record takes this ``version``. ``handle``: the
        parked execution's own, still held by a caller waiting for its end."""
        if self.version is not None and record.workflow_version != self.version:
            await self.store.post(
                RequeueExecution(
                    record.id, statuses=RESUMABLE_STATUSES, workflow_version=self.version
                )
            )
        if handle is not None and handle.workflow is self.workflow:
            handle.unpark(record.started_at)
            self.runner.track(handle, record.order_key)
        else:
            handle = self._resumed(record, delivery)
        self.runner.make_ready(handle)
        return handle

    async def retry(self, record: ExecutionRecord, delivery: Delivery) -> Admission:
        """Set an ended execution back to ``queued`` (with this ``version``) and run it
        again from its first job that did not succeed.

        Raises ExecutionConflict unless it ended failed, timed out or cancelled (checked
        again in the store, so of two retries one wins), QueueFull or Unavailable as
        :meth:`accept` does.
        """
        reservation = self._reserve()
        try:
            with trio.CancelScope(shield=True):
                requeued = await self.store.write(
                    RequeueExecution(record.id, RETRYABLE, workflow_version=self.version)
                )
            if not requeued:
                raise not_retryable(record)
            handle = self._resumed(record, delivery)
            reservation.send(handle)
            return Admission(record.id, handle, None)
        finally:
            reservation.release()
            self._close_if_retiring()

    def _resumed(self, record: ExecutionRecord, delivery: Delivery) -> ExecutionHandle:
        # The key is found again from the rebuilt delivery (key headers are not secret),
        # so a sync execution still records its answer for later duplicates.
        key = idempotency_key(self.workflow, delivery, self._roots(delivery))
        handle = ExecutionHandle(
            record.id,
            self.workflow,
            delivery,
            idempotency_key=key,
            resumed=True,
            started_at=record.started_at,
        )
        self.runner.track(handle, record.order_key)
        return handle

    def statistics(self) -> WorkflowStatistics:
        runner = self.runner
        running = runner.running
        queue = runner.queue.statistics()
        return WorkflowStatistics(
            workflow=self.workflow.key,
            # Waiting for a start permit is waiting in the queue, as a user sees it.
            queue=attrs.evolve(queue, depth=queue.depth + runner.waiting),
            running=len(runner.running) - runner.waiting,
            completed=runner.completed,
            failed=runner.failed,
            cancelled=runner.cancelled,
            timed_out=runner.timed_out,
            oldest_queued_at=min(
                (h.delivery.received_at for k, h in runner.handles.items() if k not in running),
                default=None,
            ),
            supervisor=self.supervisor.statistics(),
            nodes=tuple(actor.statistics() for actor in self.actors.values()),
            parked=runner.lanes.parked,
            resuming=len(runner.ready),
            waiting=runner.waiting,
            throttled=runner.throttled,
            debouncing=runner.debouncing,
            batching=runner.batching,
        )
