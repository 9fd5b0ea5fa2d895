"""Bulk actions: replay or retry every execution matching a filter, paced.

:class:`BulkFilter` says which executions (workflow, status, a creation time window,
text in the error); :func:`matching` lists their ids from the store, newest first, once,
so the executions the action itself starts are never matched again. :class:`BulkRun`
then replays or retries them one at a time, with progress in :meth:`BulkRun.progress`;
:meth:`BulkRun.cancel` stops it between two executions.

Pacing (:func:`room_to_start`): the next one starts only while the engine holds fewer
than half its ``pending`` limit and the workflow's queue is less than half full, so a
bulk run never pushes the engine into refusing deliveries (503) or the workflow into
429; otherwise it waits for the queue to drain. An execution the engine still refuses
(it filled up from elsewhere meanwhile) is tried again after a pause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs
import trio

from .._ids import new_id
from ..errors import HooklineError, QueueFull

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "MAX_MATCHED",
    "Action",
    "BulkFilter",
    "BulkProgress",
    "BulkRun",
    "matching",
    "room_to_start",
]

log = logging.getLogger("hookline.engine")

Action = Literal["replay", "retry"]
#: The most executions one bulk run takes on.
MAX_MATCHED = 100_000
#: How long to wait before looking again at a full engine or queue.
PAUSE = 0.05
#: How often an execution refused for a full queue is tried again before it counts as failed.
FULL_ATTEMPTS = 100


@attrs.frozen
class BulkFilter:
    """Executions of ``workflow`` with ``status``, created within [``since``, ``until``]
    (Unix seconds), whose error contains ``error`` (any case). None: any."""

    workflow: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    error: str | None = None

    def accepts(self, workflow: str, status: str, created_at: float, error: str | None) -> bool:
        if self.workflow is not None and workflow != self.workflow:
            return False
        if self.status is not None and status != self.status:
            return False
        if self.since is not None and created_at < self.since:
            return False
        if self.until is not None and created_at > self.until:
            return False
        return self.error is None or self.error.casefold() in (error or "").casefold()


def room_to_start(pending: int, pending_limit: int, queued: int, queue_capacity: int) -> bool:
    """Whether one more execution may start now without crowding the engine (half its
    pending limit) or the workflow's queue (half its capacity)."""
    return pending < max(1, pending_limit // 2) and queued < max(1, queue_capacity // 2)


async def matching(engine: Engine, selector: BulkFilter, *, limit: int = MAX_MATCHED) -> list[str]:
    """The ids of the executions ``selector`` accepts, newest first, at most ``limit``."""
    found: list[str] = []
    cursor: str | None = None
    while len(found) < limit:
        page = await engine.store.list_executions(
            workflow=selector.workflow, status=selector.status, limit=500, cursor=cursor
        )
        found.extend(
            record.id
            for record in page.items
            if selector.accepts(record.workflow, record.status, record.created_at, record.error)
        )
        oldest = page.items[-1].created_at if page.items else None
        cursor = page.cursor
        if cursor is None or (
            selector.since is not None and oldest is not None and oldest < selector.since
        ):
            break
    return found[:limit]


@attrs.frozen
class BulkProgress:
    """A snapshot of a bulk run. ``started`` lists the new executions (replay) or the
    retried ones; ``errors`` the last few refusals, by execution id."""

    id: str
    action: Action
    filter: BulkFilter
    state: Literal["running", "finished", "cancelled"]
    total: int
    done: int
    failed: int
    created_at: float
    finished_at: float | None
    started: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]


class BulkRun:
    """One bulk replay or retry of ``ids``; :meth:`run` carries it out."""

    def __init__(
        self,
        action: Action,
        selector: BulkFilter,
        ids: list[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = new_id()
        self.action: Action = action
        self.filter = selector
        self.ids = ids
        self._clock = clock
        self.created_at = clock()
        self.finished_at: float | None = None
        self.state: Literal["running", "finished", "cancelled"] = "running"
        self.done = 0
        self.failed = 0
        self.started: list[str] = []
        self.errors: list[tuple[str, str]] = []
        self._scope = trio.CancelScope()
        self._ended = trio.Event()

    def progress(self) -> BulkProgress:
        return BulkProgress(
            id=self.id,
            action=self.action,
            filter=self.filter,
            state=self.state,
            total=len(self.ids),
            done=self.done,
            failed=self.failed,
            created_at=self.created_at,
            finished_at=self.finished_at,
            started=tuple(self.started[-100:]),
            errors=tuple(self.errors[-20:]),
        )

    def cancel(self) -> None:
        """Stop before the next execution (one being admitted is admitted)."""
        if self.state == "running":
            self.state = "cancelled"
        self._scope.cancel()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def run(self, engine: Engine) -> None:
        try:
            with self._scope:
                for execution_id in self.ids:
                    await self._one(engine, execution_id)
                    self.done += 1
            if self.state == "running":
                self.state = "finished"
        finally:
            self.finished_at = self._clock()
            self._ended.set()

    async def _one(self, engine: Engine, execution_id: str) -> None:
        act = engine.replay if self.action == "replay" else engine.retry
        for _attempt in range(FULL_ATTEMPTS):
            await self._wait_for_room(engine, execution_id)
            try:
                # Once asked, the admission completes: a cancel lands between two.
                with trio.CancelScope(shield=True):
                    admission = await act(execution_id)
            except QueueFull:
                await trio.sleep(PAUSE)  # filled up from elsewhere: try this one again
                continue
            except HooklineError as exc:  # gone, disabled, in a state it cannot be redone
                self._failed(execution_id, str(exc))
                return
            self.started.append(admission.execution_id)
            return
        self._failed(execution_id, "its workflow's queue stayed full")

    def _failed(self, execution_id: str, error: str) -> None:
        self.failed += 1
        self.errors.append((execution_id, error))

    async def _wait_for_room(self, engine: Engine, execution_id: str) -> None:
        workflow = None
        record = await engine.store.get_execution(execution_id)
        if record is not None:
            workflow = record.workflow
        while True:
            stats = engine.workflow_statistics(workflow) if workflow is not None else None
            queued = stats.queue.depth if stats is not None else 0
            capacity = stats.queue.capacity if stats is not None else 1 << 30
            if room_to_start(engine.pending(), engine.pending_limit, queued, capacity):
                return
            await trio.sleep(PAUSE)
