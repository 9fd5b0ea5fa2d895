"""Where parked executions wait for events, and where accepted events are offered.

An execution whose every open path waits on a ``wait`` node parks: its waits are rows
in the store (event workflow, correlation value, deadline) and it holds no task. The
board keeps, for the waits it knows of, an index by (event, value) and one heap of
deadlines served by one timer. Every end of a wait is a claim in the store
(:class:`~hookline.store._ops.ClaimWaits`): it deletes the wait's row and records its
job's result in one transaction, so a wait ends once, whichever comes first (its event,
its deadline, an operator, a ``cancel_on`` event) and whichever process claims it. The
execution is then queued again and resumes from its records.

On a store shared by several processes, waits parked by another process are not in
this board's index: every event is then offered to the store, and the timer also
sweeps due waits every :data:`SWEEP` seconds (a process that died leaves its waits to
the others).
"""

from __future__ import annotations

import heapq
import logging
import math
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import trio

from ..definition import JSON
from ..errors import StoreError
from ..store._ops import ClaimWaits
from ..store._records import WaitRecord
from ..store._store import Store
from ._handle import ExecutionHandle

log = logging.getLogger("hookline.engine")

#: A timed-out wait's result (``$nodes.<key>``).
TIMED_OUT: JSON = {"timed_out": True}
#: How often (seconds) a board on a shared store claims the due waits it may not know
#: of (parked by a process that died): they time out within this of their deadline.
SWEEP = 60.0
# How many waits one claim takes at most (a due sweep repeats until none are left).
CLAIM_LIMIT = 500

_Key = tuple[str, str, str]  # (execution id, node, scope)
K = TypeVar("K")


class Unpark(Protocol):
    """Resume a parked execution whose wait was claimed (see ``WorkflowSet.unpark``)."""

    def __call__(
        self, execution_id: str, handle: ExecutionHandle | None, cancel_reason: str | None = None
    ) -> Awaitable[bool]: ...


@attrs.frozen
class EventBoardStatistics:
    """``waiting``: executions parked here; ``offered``: events offered;
    ``unmatched``: events that found no wait (and no ``cancel_on``) for their value."""

    waiting: int
    offered: int
    unmatched: int


class EventBoard:
    """The parked waits of one engine (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        env: Mapping[str, str],
        *,
        shared: bool = False,
    ) -> None:
        self._store = store
        self._clock = clock  # wall time, as ``until`` is
        self._env = env
        self.shared = shared
        #: Set by the engine: resumes an execution once its wait is claimed.
        self.unpark: Unpark | None = None
        self._waits: dict[_Key, WaitRecord] = {}
        self._by_event: dict[tuple[str, str], set[_Key]] = {}
        self._of: dict[str, set[_Key]] = {}  # by execution
        # (trio deadline, until, key); entries of ended waits are stale.
        self._deadlines: list[tuple[float, float, _Key]] = []
        # A parked execution's handle, while a caller still holds it (for its end).
        self._handles: weakref.WeakValueDictionary[str, ExecutionHandle] = (
            weakref.WeakValueDictionary()
        )
        self._timer: trio.CancelScope | None = None
        self._offered = 0
        self._unmatched = 0

    # -- parking -------------------------------------------------------------------

    def parked(self, waits: Sequence[WaitRecord], handle: Any) -> None:
        """An execution committed ``waits`` and parked (``handle``: its handle)."""
        if isinstance(handle, ExecutionHandle):
            self._handles[handle.id] = handle
        for wait in waits:
            self._add(wait)

    def _add(self, wait: WaitRecord) -> None:
        key = (wait.execution_id, wait.node, wait.scope)
        self._forget(key)
        self._waits[key] = wait
        self._by_event.setdefault((wait.event, wait.match), set()).add(key)
        self._of.setdefault(wait.execution_id, set()).add(key)
        deadline = trio.current_time() + max(0.0, wait.until - self._clock())
        heapq.heappush(self._deadlines, (deadline, wait.until, key))
        if self._timer is not None:
            self._timer.deadline = min(self._timer.deadline, deadline)

    def _forget(self, key: _Key) -> None:
        wait = self._waits.pop(key, None)
        if wait is None:
            return
        _discard(self._by_event, (wait.event, wait.match), key)
        _discard(self._of, wait.execution_id, key)

    # -- ending waits --------------------------------------------------------------

    async def offer(self, event: str, value: str, context: JSON) -> int:
        """An event of workflow ``event`` correlating on ``value`` was stored: end the
        waits on it; how many executions it resumed. (Its ``cancel_on`` targets are
        found in the store: see ``Intake``.)"""
        self._offered += 1
        if not self.shared and (event, value) not in self._by_event:
            return 0
        return await self._claim(ClaimWaits(self._clock(), context, event=event, match=value))

    async def release(self, execution_id: str, context: JSON) -> bool:
        """End the wait of ``execution_id`` now as if an event with this ``$context``
        came (an operator's hand); False if it is not parked."""
        claim = ClaimWaits(self._clock(), context, execution_id=execution_id)
        return await self._claim(claim) > 0

    async def expire(self, execution_id: str) -> bool:
        """Time the wait of ``execution_id`` out now; False if it is not parked."""
        claim = ClaimWaits(self._clock(), TIMED_OUT, execution_id=execution_id)
        return await self._claim(claim) > 0

    async def cancel(self, execution_id: str, why: str = "cancelled on request") -> bool:
        """Cancel a parked execution: its waits end ``cancelled`` and it resumes only
        to record that. False if it is not parked."""
        claim = ClaimWaits(self._clock(), None, execution_id=execution_id, status="cancelled")
        return await self._claim(claim, cancel_reason=why) > 0

    def unmatched(self, event: str, value: str) -> None:
        """An event that no wait and no ``cancel_on`` took: counted and logged."""
        self._unmatched += 1
        log.info("event %s (%s) matched no waiting execution", event, value)

    async def _claim(self, claim: ClaimWaits, cancel_reason: str | None = None) -> int:
        """Claim waits in the store and resume their executions; how many."""
        with trio.CancelScope(shield=True):  # claimed rows must resume their executions
            claimed: list[WaitRecord] = await self._store.write(claim)
            resumed: set[str] = set()
            for wait in claimed:
                if wait.execution_id in resumed:
                    continue
                resumed.add(wait.execution_id)
                # The store deleted every wait of it: those still needed park again.
                for key in list(self._of.get(wait.execution_id, ())):
                    self._forget(key)
                handle = self._handles.pop(wait.execution_id, None)
                assert self.unpark is not None, "the engine sets unpark"
                try:
                    await self.unpark(wait.execution_id, handle, cancel_reason)
                except StoreError:
                    # Its wait ended and it is queued in the store: the next start
                    # (or the process adopting it) resumes it.
                    log.exception("could not resume execution %s now", wait.execution_id)
        return len(resumed)

    # -- the one timer ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the parked waits, then time out each at its deadline (those past
        already, at once)."""
        for wait in await self._store.list_waits():
            self._add(wait)
        task_status.started()
        while True:
            with trio.CancelScope() as self._timer:
                self._timer.deadline = self._next_wake()
                await trio.sleep_forever()
            self._timer = None
            # The timer runs on trio's clock, deadlines are wall times: a deadline the
            # timer reached is due, even if the wall clock lags (or is a test's).
            now = self._clock()
            current = trio.current_time()
            due: list[_Key] = []
            while self._deadlines and self._deadlines[0][0] <= current:
                _, until, key = heapq.heappop(self._deadlines)
                now = max(now, until)
                due.append(key)
            while await self._claim(ClaimWaits(now, TIMED_OUT, due=True, limit=CLAIM_LIMIT)):
                pass
            # Due waits the claims did not find were ended by another process (an
            # event it accepted): this board learns it no sooner than their deadline.
            for key in due:
                if self._waits.get(key, None) is not None and self._waits[key].until <= now:
                    self._forget(key)

    def _next_wake(self) -> float:
        while self._deadlines and self._deadlines[0][2] not in self._waits:
            heapq.heappop(self._deadlines)
        due = self._deadlines[0][0] if self._deadlines else math.inf
        return min(due, trio.current_time() + SWEEP) if self.shared else due

    def waiting_for(self, execution_id: str) -> str | None:
        """What a parked execution waits for, in words; None if it is not parked here."""
        waits = [self._waits[key] for key in self._of.get(execution_id, ())]
        if not waits:
            return None
        left = min(w.until for w in waits) - self._clock()
        events = ", ".join(f"{w.event} ({w.match})" for w in waits)
        return f"event: {events}; times out in {max(0.0, left):.1f} s"

    def statistics(self) -> EventBoardStatistics:
        return EventBoardStatistics(len(self._of), self._offered, self._unmatched)


def _discard(index: dict[K, set[_Key]], at: K, key: _Key) -> None:
    keys = index[at]
    keys.discard(key)
    if not keys:
        del index[at]
