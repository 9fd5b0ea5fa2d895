"""``on_failure: <workflow key>``: a failed execution starts its workflow's error workflow.

When an execution of a workflow with ``on_failure`` ends ``failed`` or ``timed_out``,
the workflow named there is started with ``$context.data``::

    {"execution_id": ..., "workflow": ..., "status": "failed", "error": "...",
     "context": {the failed execution's stored $context: data, headers, query, ...}}

and the header ``x-hookline-failed-execution: <id>``. An execution started that way
never starts another one when it fails in turn (no loops, even when a workflow names
itself). :func:`failure_start` decides, without I/O; :class:`FailureRelay` carries it
out in its own task, so the runner that saw the failure never waits for it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import trio

from ..errors import HooklineError
from ..store._records import ExecutionRecord
from ._answers import ExecutionOutcome
from ._definition import Workflow

__all__ = ["FAILED_HEADER", "FailureRelay", "FailureStart", "failure_start"]

log = logging.getLogger("hookline.engine")

FAILED_HEADER = "x-hookline-failed-execution"
#: Failures waiting to be relayed; past it the oldest are dropped (and logged).
BACKLOG = 1000


@attrs.frozen
class FailureStart:
    """The error workflow to start, with its data and headers."""

    workflow: str
    data: dict[str, Any]
    headers: dict[str, str]


def failure_start(
    on_failure: str, outcome: ExecutionOutcome, record: ExecutionRecord | None
) -> FailureStart | None:
    """What to start for ``outcome`` (an execution of a workflow whose ``on_failure``
    names ``on_failure``), given its stored ``record``; None when it was itself started
    by an ``on_failure``."""
    context = record.context if record is not None else None
    context = dict(context) if isinstance(context, Mapping) else {}
    headers = context.get("headers")
    if isinstance(headers, Mapping) and FAILED_HEADER in headers:
        return None
    data = {
        "execution_id": outcome.execution_id,
        "workflow": outcome.workflow,
        "status": outcome.status,
        "error": outcome.error,
        "context": context,
    }
    return FailureStart(on_failure, data, {FAILED_HEADER: outcome.execution_id})


class _Engine(Protocol):
    @property
    def store(self) -> _Store: ...

    async def submit(
        self, key: str, *, data: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any: ...


class _Store(Protocol):
    async def get_execution(self, id: str) -> ExecutionRecord | None: ...


class FailureRelay:
    """Starts the ``on_failure`` workflow of each failed execution it is told of."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[tuple[str, ExecutionOutcome]](math.inf)
        self._waiting = 0
        #: How many error workflows were started, and how many could not be.
        self.started = 0
        self.refused = 0
        self.dropped = 0

    def notice(self, workflow: Workflow, outcome: ExecutionOutcome) -> None:
        """Called for every execution that ended; never blocks."""
        if workflow.on_failure is None or outcome.status not in ("failed", "timed_out"):
            return
        if self._waiting >= BACKLOG:
            self.dropped += 1
            log.error(
                "on_failure of %s: %d failures already waiting, %s not relayed",
                workflow.key,
                BACKLOG,
                outcome.execution_id,
            )
            return
        self._waiting += 1
        self._send.send_nowait((workflow.on_failure, outcome))

    async def run(
        self, engine: _Engine, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for on_failure, outcome in self._receive:
            self._waiting -= 1
            await self._relay(engine, on_failure, outcome)

    async def _relay(self, engine: _Engine, on_failure: str, outcome: ExecutionOutcome) -> None:
        try:
            record = await engine.store.get_execution(outcome.execution_id)
            start = failure_start(on_failure, outcome, record)
            if start is None:
                return
            await engine.submit(start.workflow, data=start.data, headers=start.headers)
        except HooklineError as exc:
            self.refused += 1
            log.error(
                "on_failure: could not start '%s' for failed execution %s: %s",
                on_failure,
                outcome.execution_id,
                exc,
            )
        else:
            self.started += 1
