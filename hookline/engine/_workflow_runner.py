"""Running one workflow's admitted executions under its concurrency and ordering rules.

Executions wait in the workflow's bounded queue, then run under ``concurrency.max``.
With ``concurrency.order_by``, executions sharing a key run one at a time in arrival
order (:mod:`._lanes` decides, this module carries it out). With ``priority``, the queue
hands out the highest priority first. With ``debounce``, an execution waits until its
key is quiet, and a newer one of the same key supersedes it (:mod:`._debounce` decides).
With ``throttle``, an execution whose start would exceed the rate waits until its
booked start (:mod:`._gcra` decides). Waiting executions hold no slot; one timer serves
every one of them. Executions found unfinished
at start-up, and retried ones, go first, ahead of the queue.

On a store shared by several processes, both limits hold across all of them: each
execution then waits for a start permit from the :class:`~._cluster.Cluster` instead
(the local limiter and lanes would only add waits that can deadlock across processes).
There, an execution whose debounce window closes goes on only if no newer execution
of its key arrived in any of them (one store read); else it is superseded.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from ..definition import Mailbox
from ..errors import StoreClosed, StoreError
from ..nodes._base import NodeServices, Renderable
from ..store._ops import UpdateExecution
from ..store._store import Store
from ._admission import rate_key, template_roots
from ._answers import ExecutionOutcome
from ._batch_runner import Batcher
from ._debounce import Debounce
from ._definition import Workflow
from ._drain import DrainRate
from ._execution import Execution
from ._gcra import Gcra
from ._groups import lone_error
from ._handle import ExecutionHandle
from ._inline_run import all_inline
from ._lanes import Lanes
from ._node_actor import NodeActor, describe_failure

if TYPE_CHECKING:
    from ._cluster import Cluster

log = logging.getLogger("hookline.engine")

# How long recording the executions a crash interrupted may take, at most.
FAIL_TIMEOUT = 5.0


class _Slot:
    """One of the workflow's ``concurrency.max`` execution slots, while it is taken."""


class WorkflowRunner:
    """Takes one workflow's executions from its queue and runs them.

    ``handles`` holds every live execution (queued, parked, resuming or running) by id;
    :meth:`track` adds one, and it leaves when it ends or is cancelled while queued.
    With a ``cluster``, each execution waits for its start permit before it runs.
    """

    def __init__(
        self,
        workflow: Workflow,
        actors: Mapping[str, NodeActor],
        store: Store,
        services: NodeServices,
        cluster: Cluster | None = None,
    ) -> None:
        self.workflow = workflow
        self.cluster = cluster
        # Quick nodes only (and a store of one process: a cluster counts what runs by
        # its stored status, so every start is written).
        self._quick = cluster is None and all_inline(workflow)
        self.actors = actors
        self.store = store
        self.services = services
        self.queue: Mailbox[ExecutionHandle] = Mailbox(
            workflow.concurrency.queue,
            name=f"workflow:{workflow.key}",
            order=_by_priority if workflow.priority is not None else None,
        )
        self.handles: dict[str, ExecutionHandle] = {}
        self.running: dict[str, ExecutionHandle] = {}
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.timed_out = 0
        #: Told of each execution that ended (on_failure, alerts).
        self.on_ended: Callable[[ExecutionOutcome], None] | None = None
        self.drain = DrainRate(clock=trio.current_time)
        self.ended = trio.Event()
        self._intake = trio.CancelScope()
        self._intake_stopped = False
        self._idle = trio.Event()
        self._idle.set()
        # Executions cut off from outside (shutdown or crash), to be settled by the
        # supervisor once it knows which.
        self._interrupted: list[ExecutionHandle] = []
        self._cut_keys: dict[str, str] = {}  # their order keys
        # Ordering: the order key of each live execution that has one, and the lanes.
        self._order_keys: dict[str, str] = {}
        self.lanes: Lanes[ExecutionHandle] = Lanes()
        # Resumed and retried executions: they start before anything in the queue.
        self.ready: deque[ExecutionHandle] = deque()
        self._wake: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        #: The ``concurrency.max`` slots while it runs (a sync run at admission that
        #: awaits takes one too: see :mod:`._inline_run`).
        self.limiter: trio.CapacityLimiter | None = None
        # Cluster only: the executions started here that have no start permit yet, and
        # the scopes of those waiting for one (cancelled by a shutdown).
        self._unpermitted: set[str] = set()
        self._permits: dict[str, trio.CancelScope] = {}
        # Debounce: the open windows; throttle: the booked starts, by start. The
        # runner's one timer waits for the first of either. Executions past a step go
        # round through ``ready`` (debounced: past debounce; cleared: past both).
        debounce = workflow.debounce
        self._debounce: Debounce[ExecutionHandle] | None = (
            Debounce(debounce.period, debounce.max_wait) if debounce is not None else None
        )
        # Batch: the open windows, and the batches being formed (:mod:`._batch_runner`).
        batch = workflow.batch
        self._batcher = (
            Batcher(self, batch, lambda handle: flow_key(batch.key, handle, services.env))
            if batch is not None
            else None
        )
        # On a store shared by several processes the throttle's state is the store's,
        # booked per execution before its start permit (``_booked``).
        throttle = workflow.throttle if cluster is None else None
        self._throttle = Gcra(throttle.rate) if throttle is not None else None
        # Cluster only: the executions waiting for their booked start, and when.
        self._bookings: dict[str, float] = {}
        self._throttled: list[tuple[float, int, ExecutionHandle]] = []
        self._arrivals = itertools.count()
        self._debounced: set[str] = set()
        # Cluster only: closed by debounce, being checked for a newer one in the store.
        self._superseding: set[str] = set()
        self._cleared: set[str] = set()
        self._timer: trio.CancelScope | None = None

    @property
    def throttled(self) -> int:
        """Executions waiting for their booked start under ``throttle``."""
        return len(self._throttled) + len(self._bookings)

    def waiting_for(self, execution_id: str) -> str | None:
        """What holds a queued execution back from starting (``debounce`` or
        ``throttle``), in words; None when nothing does."""
        handle = self.handles.get(execution_id)
        if handle is None:
            return None
        now = trio.current_time()
        booked = self._bookings.get(execution_id)
        for start, _, held in self._throttled:
            if held is handle:
                booked = start
        if booked is not None:
            return f"throttle: starts in {max(0.0, booked - now):.1f} s"
        due = self._debounce.due_of(handle) if self._debounce is not None else None
        if due is not None:
            return (
                f"debounce: starts in {max(0.0, due - now):.1f} s unless a newer delivery "
                "with its key comes first"
            )
        if self._batcher is not None:
            return self._batcher.waiting_for(handle, now)
        return None

    @property
    def debouncing(self) -> int:
        """Executions waiting for their key to be quiet under ``debounce``."""
        if self._debounce is None:
            return 0
        return len(self._debounce) + len(self._superseding)

    @property
    def batching(self) -> int:
        """Executions waiting in open ``batch`` windows (or being formed into one)."""
        return self._batcher.waiting if self._batcher is not None else 0

    @property
    def waiting(self) -> int:
        """Executions waiting for a start permit (counted in ``running`` too)."""
        return len(self._unpermitted)

    @property
    def backlog(self) -> int:
        """Executions waiting to start: queued, being admitted, parked, resuming and
        waiting for a start permit."""
        queue = self.queue.statistics()
        waiting = queue.depth + queue.reserved + self.lanes.parked + len(self.ready)
        waiting += len(self._throttled) + self.debouncing + self.batching
        if self.cluster is None:
            return waiting
        # Waiting for a permit: a backlog once a claim refused it; before that, all but
        # those that this process's free slots would start at once without a cluster.
        refused = min(self.cluster.refused(self.workflow.key), len(self._unpermitted))
        permitted = len(self.running) - len(self._unpermitted)
        free = max(0, self.workflow.concurrency.max - permitted)
        return waiting + refused + max(0, len(self._unpermitted) - refused - free)

    def track(self, handle: ExecutionHandle, order_key: str | None) -> None:
        """Count ``handle`` as live from now on (before it is queued or made ready)."""
        self.handles[handle.id] = handle
        if order_key is not None:
            self._order_keys[handle.id] = order_key

    def untrack(self, execution_id: str) -> str | None:
        """Stop counting a queued execution as live (it is being batched into
        another); its order key. Raises KeyError if it is not live here."""
        del self.handles[execution_id]
        return self._order_keys.pop(execution_id, None)

    def make_ready(self, handle: ExecutionHandle) -> None:
        """Start ``handle`` before anything in the queue, whatever the queue's limits."""
        self.ready.append(handle)
        if self._wake is not None:
            self._wake.cancel()

    async def _next(self) -> ExecutionHandle:
        """The next execution to consider: resuming ones first, then the queue."""
        while True:
            if self.ready:
                return self.ready.popleft()
            try:
                # Without a scope when one is waiting: taking the slot was the checkpoint.
                return self.queue.receive_nowait()
            except trio.WouldBlock:
                pass
            with trio.CancelScope() as self._wake:
                return await self.queue.receive()
            # Woken by make_ready: an execution is ready.

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run executions until the queue is closed and drained (retired), or until
        cancelled. Restarted after a crash, it starts with what was waiting."""
        concurrency = self.workflow.concurrency
        # With a cluster, the permits limit what runs; the limiter only bounds waiters.
        slots = concurrency.max + (concurrency.queue if self.cluster is not None else 0)
        limiter = self.limiter = trio.CapacityLimiter(slots)
        # Restarted after a crash: the executions it cut off run again (resumed from
        # their records) with what was parked or waiting, first, by age.
        interrupted, self._interrupted = self._interrupted, []
        for handle in interrupted:
            handle.resumed = True
            self.track(handle, self._cut_keys.pop(handle.id, None))
        waiting = [*interrupted, *self.ready, *self.lanes.reset()]
        self.ready = deque(sorted(waiting, key=lambda handle: handle.id))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            releasing = trio.CancelScope()
            if (self._throttle, self._debounce, self._batcher) != (None, None, None):
                nursery.start_soon(self._release_until_retired, releasing)
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
                        # Retired, and the queue is drained: open batches close now
                        # and run here. Once nothing waits for the timer, it stops.
                        if self._batcher is not None and await self._batcher.close_all():
                            limiter.release_on_behalf_of(slot)
                            continue
                        if not self._throttled and not self.debouncing:
                            releasing.cancel()
                        break
                    if handle.id not in self.handles:
                        limiter.release_on_behalf_of(slot)  # cancelled while queued
                        continue
                    if self._held_back(handle):
                        limiter.release_on_behalf_of(slot)  # it waits, slot-free
                        continue
                    ordered = self.cluster is None
                    if ordered and not self.lanes.admit(self._order_keys.get(handle.id), handle):
                        limiter.release_on_behalf_of(slot)  # parked behind its key
                        continue
                    self._start(handle, limiter, slot)
        self.ended.set()

    def _held_back(self, handle: ExecutionHandle) -> bool:
        """Put ``handle`` through ``debounce`` then ``throttle``: True when it must
        wait (it comes back through ``ready`` then, and goes on)."""
        if handle.cancel_requested:
            return False
        if handle.id in self._cleared:
            self._cleared.discard(handle.id)
            return False
        now = trio.current_time()
        batcher, nursery = self._batcher, self._nursery
        if batcher is not None and nursery is not None and batcher.holds(handle, now, nursery):
            self._wake_at(batcher.next_due())
            return True
        # (One that started before a restart was its key's chosen one: it goes on.)
        debounce = handle.id not in self._debounced and handle.started_at is None
        if self._debounce is not None and debounce:
            self._debounce_window(handle, now)
            return True
        self._debounced.discard(handle.id)
        throttle = self.workflow.throttle
        if self._throttle is None or throttle is None:
            return False  # none, or the cluster's (``_booked``)
        start = self._throttle.schedule(flow_key(throttle.key, handle, self.services.env), now)
        if start <= now:
            return False
        heapq.heappush(self._throttled, (start, next(self._arrivals), handle))
        self._wake_at(start)
        assert self._nursery is not None
        self._nursery.start_soon(self._record_throttled, handle)
        return True

    async def _record_throttled(self, handle: ExecutionHandle) -> None:
        """Record that ``handle`` waits for its booked start (posted: its ``running``,
        posted later, supersedes it; a restart resumes a throttled one as a queued one)."""
        if handle.cancel_requested or handle.id not in self.handles:
            return  # cancelled first: its end is recorded, and must stay
        with contextlib.suppress(StoreClosed):  # stopping: left queued, it resumes alike
            await self.store.post(UpdateExecution(handle.id, "throttled"))

    def _debounce_window(self, handle: ExecutionHandle, now: float) -> None:
        rule, debounce = self.workflow.debounce, self._debounce
        assert rule is not None
        assert debounce is not None
        key = flow_key(rule.key, handle, self.services.env)
        waiting = debounce.waiting(key)
        older = debounce.offer(key, handle, now, rank=handle.id)
        self._wake_at(debounce.next_due())
        if older is not None and older.id in self.handles:
            newer = handle if older is not handle else waiting
            assert newer is not None
            older.cancel_reason = f"superseded by execution {newer.id} (debounce)"
            assert self._nursery is not None
            self._nursery.start_soon(self.cancel, older.id)

    def _wake_at(self, when: float) -> None:
        if self._timer is not None:
            self._timer.deadline = min(self._timer.deadline, when)

    async def _release_until_retired(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._release_waiting()

    async def _release_waiting(self) -> None:
        """The one timer of debounce windows and throttle bookings: each execution
        whose wait is over goes on through ``ready``."""
        while True:
            with trio.CancelScope() as self._timer:
                self._timer.deadline = self._next_wake()
                await trio.sleep_forever()
            now = trio.current_time()
            if self._batcher is not None and self._nursery is not None:
                self._batcher.close_due(now, self._nursery)
            if self._debounce is not None:
                for handle in self._debounce.close_due(now):
                    if handle.id in self.handles:  # not cancelled meanwhile
                        self._window_closed(handle)
            while self._throttled and self._throttled[0][0] <= now:
                handle = heapq.heappop(self._throttled)[2]
                if handle.id in self.handles:
                    self._cleared.add(handle.id)
                    self.make_ready(handle)

    def _window_closed(self, handle: ExecutionHandle) -> None:
        """``handle``'s debounce window closed: it goes on, unless (cluster only) a
        newer execution of its key arrived in another process."""
        if self.cluster is None or self._nursery is None:
            self._debounced.add(handle.id)
            self.make_ready(handle)
            return
        self._superseding.add(handle.id)
        self._nursery.start_soon(self._go_on_unless_superseded, handle)

    async def _go_on_unless_superseded(self, handle: ExecutionHandle) -> None:
        rule = self.workflow.debounce
        assert rule is not None
        key = flow_key(rule.key, handle, self.services.env)
        try:
            newer = await self.store.superseding_execution(self.workflow.key, key, handle.id)
        except StoreClosed:
            return  # stopping: it stays queued in the store, and resumes
        except StoreError as exc:
            # Run twice rather than lose the key's last delivery.
            log.warning("debounce of %s could not ask the store, it goes on: %s", handle.id, exc)
            newer = None
        finally:
            self._superseding.discard(handle.id)
        if handle.id not in self.handles:
            return  # cancelled meanwhile
        if newer is None:
            self._debounced.add(handle.id)
            self.make_ready(handle)
            return
        handle.cancel_reason = f"superseded by execution {newer} (debounce)"
        await self.cancel(handle.id)

    def _next_wake(self) -> float:
        booked = self._throttled[0][0] if self._throttled else math.inf
        batched = self._batcher.next_due() if self._batcher else math.inf
        return min(booked, batched, self._debounce.next_due() if self._debounce else math.inf)

    def _start(self, handle: ExecutionHandle, limiter: trio.CapacityLimiter, slot: _Slot) -> None:
        assert self._nursery is not None
        if not self.running:
            self._idle = trio.Event()
        self.running[handle.id] = handle
        if self.cluster is not None:
            self._unpermitted.add(handle.id)
        self._nursery.start_soon(self._execute, handle, limiter, slot)

    def stop_intake(self) -> None:
        """Start no more queued executions (shutdown); running ones go on. Those left
        in the queue stay ``queued`` in the store for the next start."""
        self._intake_stopped = True
        self._intake.cancel()
        for scope in self._permits.values():
            scope.cancel()

    async def wait_idle(self) -> None:
        """Return once no execution is running (queued ones may wait)."""
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
            if self._batcher is not None:
                self._batcher.discard(handle)
            self.lanes.remove(self._order_keys.pop(execution_id, None), handle)
            self.count(await self._execution(handle).run())
        return True

    def count(self, outcome: ExecutionOutcome) -> None:
        """Count an execution that ended (here, or run whole at admission)."""
        self.completed += 1
        if outcome.status == "cancelled":
            self.cancelled += 1
        elif outcome.status == "timed_out":
            self.timed_out += 1
        elif not outcome.succeeded:
            self.failed += 1
        if self.on_ended is not None:
            self.on_ended(outcome)

    def _execution(self, handle: ExecutionHandle) -> Execution:
        return Execution(handle, self.actors, self.store, services=self.services, quick=self._quick)

    async def _execute(
        self, handle: ExecutionHandle, limiter: trio.CapacityLimiter, slot: _Slot
    ) -> None:
        try:
            if await self._booked(handle) and await self._permitted(handle):
                outcome = await self._run_isolated(handle)
                if not handle.parked:  # parked: it ends later, when it resumes
                    self.count(outcome)
        finally:
            if self.cluster is not None:
                self.cluster.ended()
            del self.running[handle.id]
            del self.handles[handle.id]
            order_key = self._order_keys.pop(handle.id, None)
            self.drain.tick()
            if not handle.finished and not handle.parked:
                # Interrupted from outside: shutdown (the supervisor abandons it) or a
                # crash (the restarted runner resumes it; past the restart intensity,
                # the supervisor fails it).
                self._interrupted.append(handle)
                if order_key is not None:
                    self._cut_keys[handle.id] = order_key
                limiter.release_on_behalf_of(slot)
            else:
                self._hand_over(order_key, limiter, slot)
            if not self.running:
                self._idle.set()

    async def _run_isolated(self, handle: ExecutionHandle) -> ExecutionOutcome:
        """Run one execution; a bug in running it fails that execution alone (its
        error names the exception), never the runner and the others it holds."""
        execution = self._execution(handle)
        try:
            return await execution.run()
        except Exception as exc:
            crash = lone_error(exc)
            log.error("execution %s crashed", handle.id, exc_info=crash)
            error = f"internal error: {describe_failure(crash)}"
            outcome = ExecutionOutcome(handle.id, self.workflow.key, "failed", None, error)
            if not handle.finished:
                await execution.finish(outcome)
            return handle.outcome or outcome

    async def _booked(self, handle: ExecutionHandle) -> bool:
        """Cluster only: wait for the start ``throttle`` books for ``handle`` across
        every process sharing the store. False: a shutdown came first (it stays
        queued, and is booked again when it resumes)."""
        throttle, cluster = self.workflow.throttle, self.cluster
        if cluster is None or throttle is None or handle.cancel_requested:
            return True
        if handle.started_at is not None:
            return True  # it started before a restart: it was let through then
        rate = throttle.rate
        key = flow_key(throttle.key, handle, self.services.env)
        scope_name = f"throttle:{self.workflow.key}"
        wait = await cluster.book_rate(scope_name, key, rate.interval, rate.tolerance)
        if wait <= 0:
            return True
        self._bookings[handle.id] = trio.current_time() + wait
        try:
            await self._record_throttled(handle)
            with trio.CancelScope() as scope:
                if self._intake_stopped:
                    scope.cancel()
                self._permits[handle.id] = scope
                handle.attach(scope)
                try:
                    await trio.sleep(wait)
                    return True
                finally:
                    del self._permits[handle.id]
        finally:
            del self._bookings[handle.id]
        return handle.cancel_requested  # cancelled: recorded as never started

    async def _permitted(self, handle: ExecutionHandle) -> bool:
        """Wait for ``handle``'s start permit (cluster only). False: it must not run
        here, being another process's now (its handle ends) or left queued by a
        shutdown (its handle stays unfinished)."""
        if self.cluster is None:
            return True
        if handle.cancel_requested:
            self._unpermitted.discard(handle.id)
            return True
        with trio.CancelScope() as scope:
            if self._intake_stopped:
                scope.cancel()  # a shutdown began before it could ask: it stays queued
            self._permits[handle.id] = scope
            handle.attach(scope)
            try:
                if await self.cluster.permit(handle):
                    return True
            finally:
                del self._permits[handle.id]
                self._unpermitted.discard(handle.id)
        if handle.cancel_requested:
            return True  # cancelled while waiting: recorded as never started
        if not scope.cancelled_caught:
            abandon(handle, "another process runs this execution now")
        return False

    def _hand_over(self, order_key: str | None, limiter: trio.CapacityLimiter, slot: _Slot) -> None:
        """An execution ended: the next one of its lane takes its slot at once."""
        successor = self.lanes.release(order_key)
        assert self._nursery is not None
        stopping = self._intake_stopped or self._nursery.cancel_scope.cancel_called
        if successor is None or stopping:
            limiter.release_on_behalf_of(slot)
            if successor is not None:
                # Left for the next start (shutdown) or for the restarted loop (crash).
                # (The restarted loop frees every lane before it reads this.)
                self.ready.appendleft(successor)
            return
        self._start(successor, limiter, slot)

    async def fail_interrupted(self, crash: Exception) -> None:
        """Record the executions a crash cut off as ``failed`` (within FAIL_TIMEOUT)."""
        interrupted, self._interrupted = self._interrupted, []
        self._cut_keys.clear()
        error = f"interrupted: the supervisor of workflow '{self.workflow.key}' crashed ({crash})"
        with trio.move_on_after(FAIL_TIMEOUT, shield=True):
            for handle in interrupted:
                outcome = ExecutionOutcome(handle.id, self.workflow.key, "failed", None, error)
                await self._execution(handle).finish(outcome)
                self.count(outcome)

    def abandon_interrupted(self) -> None:
        """End the handles of the executions a shutdown cut off, as ``cancelled``; their
        records stay ``running``, so the next start resumes them."""
        interrupted, self._interrupted = self._interrupted, []
        self._cut_keys.clear()
        for handle in interrupted:
            abandon(handle)


def _by_priority(handle: ExecutionHandle) -> int:
    return -handle.priority


def flow_key(template: Renderable | None, handle: ExecutionHandle, env: Mapping[str, str]) -> str:
    """An execution's ``throttle`` or ``debounce`` key (:func:`rate_key`)."""
    if template is None:
        return ""
    roots = template_roots(handle.workflow, handle.template_context(), handle.id, env)
    return rate_key(template, roots)


def abandon(handle: ExecutionHandle, why: str = "the engine stopped") -> None:
    """End a live handle the engine leaves behind (its record stays as it is, to resume
    on next start or in another process); a finished one is left alone."""
    if not handle.finished:
        handle.set_outcome(ExecutionOutcome(handle.id, handle.workflow.key, "cancelled", None, why))
