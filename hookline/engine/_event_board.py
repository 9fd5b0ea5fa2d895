"""Where ``wait`` nodes wait for events, and where accepted events are offered.

An event is a delivery of a workflow whose ``trigger.correlate`` renders a value. Intake
offers each one here (:meth:`EventBoard.offer`) once it is stored; every ``wait`` of
that workflow waiting on that value gets the event's ``$context``. A wait resumed after
a restart first looks, in the store, for an event accepted since it began: one that
came while its process was down is not missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import attrs
import trio

from ..definition import JSON
from ..store._store import Store
from ._admission import rate_key, template_roots
from ._definition import Workflow

log = logging.getLogger("hookline.engine")

# How many stored executions of an event workflow a resumed wait looks through, at most.
RESCAN_LIMIT = 5000


@attrs.define
class _Waiter:
    execution_id: str
    event: trio.Event = attrs.Factory(trio.Event)
    found: JSON = None
    expired: bool = False


@attrs.frozen
class EventBoardStatistics:
    """``waiting``: waits now; ``offered``: events offered; ``unmatched``: events that
    found no wait (and no ``cancel_on``) for their value."""

    waiting: int
    offered: int
    unmatched: int


class EventBoard:
    """The waits of one engine, by (event workflow, value)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        definitions: Callable[[], Mapping[str, Workflow]],
        env: Mapping[str, str],
    ) -> None:
        self._store = store
        self._clock = clock
        self._definitions = definitions  # workflow key -> Workflow, for rescans
        self._env = env
        self._waiters: dict[tuple[str, str], list[_Waiter]] = {}
        self._by_execution: dict[str, _Waiter] = {}
        self._offered = 0
        self._unmatched = 0

    async def wait_for(
        self, event: str, match: str, *, until: float, since: float | None, execution_id: str
    ) -> JSON | None:
        if since is not None:
            found = await self._stored_event(event, match, since)
            if found is not None:
                return found
        waiter = _Waiter(execution_id)
        waiters = self._waiters.setdefault((event, match), [])
        waiters.append(waiter)
        self._by_execution[execution_id] = waiter
        try:
            with trio.move_on_after(max(0.0, until - self._clock())):
                await waiter.event.wait()
        finally:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[(event, match)]
            del self._by_execution[execution_id]
        return None if waiter.expired or not waiter.event.is_set() else waiter.found

    def release(self, execution_id: str, context: JSON) -> bool:
        """End the wait of ``execution_id`` now as if an event with this ``$context``
        came (an operator's hand); False if it waits for nothing here."""
        waiter = self._by_execution.get(execution_id)
        if waiter is None or waiter.event.is_set():
            return False
        waiter.found = context
        waiter.event.set()
        return True

    def expire(self, execution_id: str) -> bool:
        """Time the wait of ``execution_id`` out now; False if it waits for nothing here."""
        waiter = self._by_execution.get(execution_id)
        if waiter is None or waiter.event.is_set():
            return False
        waiter.expired = True
        waiter.event.set()
        return True

    def offer(self, event: str, value: str, context: JSON) -> int:
        """An event of workflow ``event`` correlating on ``value`` was stored: wake the
        waits on it; how many."""
        self._offered += 1
        waiters = self._waiters.get((event, value), [])
        for waiter in waiters:
            if not waiter.event.is_set():
                waiter.found = context
                waiter.event.set()
        return len(waiters)

    def unmatched(self, event: str, value: str) -> None:
        """An event that no wait and no ``cancel_on`` took: counted and logged."""
        self._unmatched += 1
        log.info("event %s (%s) matched no waiting execution", event, value)

    async def _stored_event(self, event: str, match: str, since: float) -> JSON | None:
        """The first stored event of ``event`` accepted since ``since`` that correlates
        on ``match`` (newest first pages: stop at the first older than ``since``)."""
        workflow = self._definitions().get(event)
        if workflow is None or workflow.trigger.correlate is None:
            return None
        correlate = workflow.trigger.correlate
        found: JSON = None
        cursor: str | None = None
        seen = 0
        while seen < RESCAN_LIMIT:
            page = await self._store.list_executions(workflow=event, limit=200, cursor=cursor)
            for record in page.items:
                if record.created_at < since:
                    return found
                seen += 1
                context = dict(record.context)
                roots = template_roots(workflow, context, record.id, self._env)
                if rate_key(correlate, roots) == match:
                    found = context  # keep looking: the oldest since wins
            if page.cursor is None:
                break
            cursor = page.cursor
        return found

    def statistics(self) -> EventBoardStatistics:
        waiting = sum(len(waiters) for waiters in self._waiters.values())
        return EventBoardStatistics(waiting, self._offered, self._unmatched)
