"""The engine's side of a store shared by several processes: heartbeats, adoption,
start permits and wake-ups, carried out through the store's
:class:`~hookline.store._coordination.Coordinator` (see there for the guarantees).

:class:`Cluster` runs under the engine: it heartbeats (and stops the engine
with :class:`~hookline.errors.LeaseLost` if the others declared this process dead),
sweeps for the executions of dead processes and resumes them here, claims start
permits for the executions waiting in this process, and listens for the hints that an
execution ended elsewhere or is to be cancelled here.
"""

from __future__ import annotations

import bisect
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import attrs
import trio

from ..errors import LeaseLost, StoreClosed, StoreError
from ..store._coordination import Coordinator, Wakeup, WorkerRecord
from ..store._records import ExecutionRecord
from ._handle import ExecutionHandle
from ._recovery import recovered_delivery

if TYPE_CHECKING:
    from ._workflow_set import WorkflowSet

log = logging.getLogger("hookline.engine")

T = TypeVar("T")

# How many executions one sweep adopts at most.
ADOPT_BATCH = 200
# A claim asks about the oldest waiting executions only, a few per slot: the globally
# oldest waiting one is always among its owner's, so every lane still moves.
CLAIM_WINDOW_PER_SLOT = 4
CLAIM_WINDOW_EXTRA = 32
# How long one wait for wake-ups blocks its worker thread (also the longest a shutdown
# waits for it); between waits nothing is lost, the connection keeps what arrives.
LISTEN_TIMEOUT = 0.1


@attrs.frozen
class ClusterStatistics:
    """``waiting`` executions wait for a start permit; ``adopted`` counts executions
    taken over from dead processes; ``claims`` the permit rounds run."""

    worker_id: str
    waiting: int
    adopted: int
    claims: int
    heartbeats: int


class _Ticket:
    """One execution waiting for its start permit."""

    __slots__ = ("done", "granted", "refused")

    def __init__(self) -> None:
        self.granted = False
        # A claim said wait: it is really queued (behind max or its order key).
        self.refused = False
        self.done = trio.Event()


class _Waiters:
    """One workflow's executions waiting for a start permit, oldest first.

    Asked at every delivery (how many were refused) and at every claim (the oldest):
    both answers cost no more than the claim's window, however many wait.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tickets: dict[str, _Ticket] = {}
        self._order: list[str] = []  # ids sort by creation time
        self.refused = 0

    def add(self, id: str, ticket: _Ticket) -> None:
        self.tickets[id] = ticket
        bisect.insort(self._order, id)

    def remove(self, id: str) -> None:
        ticket = self.tickets.pop(id, None)
        if ticket is not None:
            del self._order[bisect.bisect_left(self._order, id)]
            self.refused -= ticket.refused

    def oldest(self, count: int) -> dict[str, _Ticket]:
        return {id: self.tickets[id] for id in self._order[:count]}

    def mark(self, ticket: _Ticket, refused: bool) -> None:
        self.refused += refused - ticket.refused
        ticket.refused = refused


class Cluster:
    """Coordinates this engine with the other processes sharing its store.

    ``heartbeat`` is how often it proves itself alive and sweeps for dead processes'
    work; ``lease`` how long another process may stay silent before it counts as dead.
    ``threaded=False`` calls the coordinator inline (tests on a virtual clock).
    """

    def __init__(
        self,
        coordinator: Coordinator,
        workflows: WorkflowSet,
        *,
        heartbeat: float = 1.0,
        lease: float = 10.0,
        threaded: bool = True,
    ) -> None:
        self.coordinator = coordinator
        self.workflows = workflows
        self.heartbeat = heartbeat
        self.lease = lease
        self.threaded = threaded
        # One call at a time on the coordinator's connection; the listener has its own.
        self._limiter = trio.CapacityLimiter(1)
        self._listen_limiter = trio.CapacityLimiter(1)
        self._waiting: dict[str, _Waiters] = {}
        self._dirty = trio.Event()
        self._adopted = 0
        self._claims = 0
        self._heartbeats = 0
        #: What to do when another process changed the workflow definitions (the
        #: engine loads its folder again).
        self.on_definitions_changed: Callable[[], Awaitable[object]] | None = None

    # -- what the runners call -----------------------------------------------------------

    async def permit(self, handle: ExecutionHandle) -> bool:
        """Wait until ``handle`` may start: True once it is ``running`` in the store
        under this process, False if it is no longer this process's to run."""
        workflow = handle.workflow
        waiting = self._waiting.get(workflow.key)
        if waiting is None:
            waiting = self._waiting[workflow.key] = _Waiters(workflow.concurrency.max)
        ticket = _Ticket()
        waiting.add(handle.id, ticket)
        self._dirty.set()
        try:
            await ticket.done.wait()
        finally:
            waiting.remove(handle.id)
            if not waiting.tickets and self._waiting.get(workflow.key) is waiting:
                del self._waiting[workflow.key]
        return ticket.granted

    async def book_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        """Seconds until the start booked for one event of ``key`` under the rate
        ``scope``, shared by every process (see ``Coordinator.book_rate``)."""
        book = functools.partial(self.coordinator.book_rate, scope, key, interval, tolerance)
        return await self._call(book)

    async def take_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        """0.0 if one event of ``key`` may go through under the rate ``scope`` now
        (counted), else the seconds until one may, across every process (see
        ``Coordinator.take_rate``)."""
        take = functools.partial(self.coordinator.take_rate, scope, key, interval, tolerance)
        return await self._call(take)

    def refused(self, workflow: str) -> int:
        """How many executions of ``workflow`` a claim told to wait, still waiting."""
        waiting = self._waiting.get(workflow)
        return 0 if waiting is None else waiting.refused

    def ended(self) -> None:
        """An execution of this process ended: a slot (and maybe its order key) is
        free, so claim again."""
        self._dirty.set()

    async def workers(self) -> list[WorkerRecord]:
        """The processes sharing the store now, by id."""
        return await self._call(self.coordinator.workers)

    async def request_cancel(self, execution_id: str) -> None:
        """Have the process that runs ``execution_id`` cancel it: at once, or at its
        next heartbeat if it missed the wake-up, or, if it died, the process that takes
        the execution over."""
        await self._call(lambda: self.coordinator.request_cancel(execution_id))

    async def announce_definitions(self) -> None:
        """Tell the other processes that this one's workflow definitions changed."""
        await self._call(self.coordinator.announce_definitions)

    # -- start-up ------------------------------------------------------------------------

    async def adopt(self) -> int:
        """Take over and resume the unfinished executions of dead processes (and those
        left by a previous run of this one), for the workflows enabled here. Returns
        how many."""
        total = 0
        while True:
            keys = sorted(self.workflows.supervisors)
            if not keys:
                return total
            adopt = functools.partial(self.coordinator.adopt, keys, self.lease, ADOPT_BATCH)
            adopted = await self._call(adopt)
            for each in adopted:
                if await self._resume(each.record) and each.cancel_requested:
                    await self.workflows.cancel(each.record.id)
            if adopted:
                log.info("took over %d executions of stopped processes", len(adopted))
            total += len(adopted)
            self._adopted += len(adopted)
            if len(adopted) < ADOPT_BATCH:
                return total

    async def _resume(self, record: ExecutionRecord) -> bool:
        """Resume an execution just taken over. False if its workflow was disabled
        meanwhile: it stays this process's, unrun, until the process stops and another
        one takes it over."""
        supervisor = self.workflows.supervisors.get(record.workflow)
        if supervisor is None:
            return False
        await supervisor.resume(record, await recovered_delivery(self.workflows.store, record))
        return True

    # -- the actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, sweep, claim and listen until cancelled. Raises LeaseLost when
        this process finds it was declared dead.

        Inline (``threaded=False``, tests on a virtual clock) it only claims, and
        heartbeats and sweeps when a claim finds that a heartbeat's worth of real time
        passed: a virtual clock skipping days must not spin timers, and no other
        process is there to hear from.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._grant)
            if self.threaded:
                nursery.start_soon(self._beat)
                nursery.start_soon(self._listen)
            task_status.started()

    async def _beat(self) -> None:
        while True:
            await trio.sleep(self.heartbeat)
            if not await self._beat_once():
                return

    async def _beat_once(self) -> bool:
        """Heartbeat, carry out the cancels whose wake-up was missed, then sweep for
        dead processes' work. False once the store closed; raises LeaseLost if this
        process was declared dead."""
        try:
            alive = await self._call(self.coordinator.heartbeat)
            self._heartbeats += 1
            if not alive:
                raise LeaseLost(
                    f"worker {self.coordinator.worker_id} missed its heartbeats for "
                    f"{self.lease}s: the other processes took its executions over"
                )
            for execution_id in await self._call(self.coordinator.cancels_requested):
                await self.workflows.cancel(execution_id)
            await self.adopt()
        except StoreClosed:
            return False
        except StoreError as exc:
            log.warning("could not reach the shared store: %s", exc)
        return True

    async def _grant(self) -> None:
        beat = time.monotonic()
        while True:
            if self.threaded:
                # A wake-up may be missed (a connection dropped): claim now and then.
                with trio.move_on_after(self.heartbeat):
                    await self._dirty.wait()
            else:
                await self._dirty.wait()
                if time.monotonic() - beat >= self.heartbeat:
                    beat = time.monotonic()
                    if not await self._beat_once():
                        return
            self._dirty = trio.Event()
            for key in sorted(self._waiting):
                try:
                    await self._claim(key)
                except StoreClosed:
                    return
                except StoreError as exc:
                    log.warning("could not claim start permits: %s", exc)

    async def _claim(self, workflow: str) -> None:
        waiting = self._waiting.get(workflow)
        if waiting is None:
            return
        limit = waiting.limit
        tickets = waiting.oldest(limit * CLAIM_WINDOW_PER_SLOT + CLAIM_WINDOW_EXTRA)
        ids = list(tickets)
        claim = await self._call(lambda: self.coordinator.claim(workflow, ids, limit))
        self._claims += 1
        for id in claim.granted:
            tickets[id].granted = True
            tickets[id].done.set()
        for id in claim.gone:
            tickets[id].done.set()
        for id, ticket in tickets.items():
            if id in waiting.tickets:  # not withdrawn while the claim ran
                waiting.mark(ticket, refused=not ticket.done.is_set())

    async def _listen(self) -> None:
        while True:
            try:
                wakeups = await trio.to_thread.run_sync(
                    self.coordinator.wait, LISTEN_TIMEOUT, limiter=self._listen_limiter
                )
            except StoreClosed:
                return
            except StoreError as exc:
                log.warning("could not listen to the shared store: %s", exc)
                await trio.sleep(self.heartbeat)
                continue
            try:
                await self._woken(wakeups)
            except StoreClosed:
                return
            except StoreError as exc:
                # A cancel or a reload that could not be stored: the store's trouble
                # is logged, the wake-ups after it still count.
                log.warning("could not act on a wake-up from another process: %s", exc)

    async def _woken(self, wakeups: Sequence[Wakeup]) -> None:
        for wakeup in wakeups:
            if wakeup.cancel is not None:
                await self.workflows.cancel(wakeup.cancel)
            elif wakeup.definitions_changed_by is not None:
                mine = wakeup.definitions_changed_by == self.coordinator.worker_id
                if not mine and self.on_definitions_changed is not None:
                    await self.on_definitions_changed()
            elif wakeup.workflow in self._waiting:
                self._dirty.set()

    async def _call(self, fn: Callable[[], T]) -> T:
        if self.threaded:
            return await trio.to_thread.run_sync(fn, limiter=self._limiter)
        return fn()

    def statistics(self) -> ClusterStatistics:
        return ClusterStatistics(
            worker_id=self.coordinator.worker_id,
            waiting=sum(len(waiting.tickets) for waiting in self._waiting.values()),
            adopted=self._adopted,
            claims=self._claims,
            heartbeats=self._heartbeats,
        )
