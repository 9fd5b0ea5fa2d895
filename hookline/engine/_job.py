"""A job: one node run for one execution, sent to a NodeActor, with its reply slot."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import trio

from ..nodes._base import NodeResult, NodeServices, NodeSpec, Renderable
from ..store._records import JobRecord, JobStatus


class RunningJob:
    """What a node sees while it runs (implements :class:`hookline.nodes._base.Job`)."""

    def __init__(
        self,
        execution_id: str,
        node: NodeSpec,
        roots: Mapping[str, Any],
        attempt: int = 1,
        services: NodeServices | None = None,
    ) -> None:
        self._services = services if services is not None else NodeServices()
        self._execution_id = execution_id
        self._node = node
        self._roots = roots
        self._attempt = attempt
        self.lines: list[str] = []

    @property
    def execution_id(self) -> str:
        return self._execution_id

    @property
    def node(self) -> NodeSpec:
        return self._node

    @property
    def services(self) -> NodeServices:
        return self._services

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def variables(self) -> Mapping[str, Any]:
        return self._roots

    def render(self, value: Renderable) -> Any:
        return value.render(self._roots)

    def log(self, message: str) -> None:
        self.lines.append(message)


class JobTicket:
    """A request to run one job, and the slot its outcome is written to.

    The execution that sent it waits with :meth:`wait`; :meth:`cancel` cancels the job
    wherever it is (queued: it never starts; running: its cancel scope is cancelled).
    """

    def __init__(self, job: RunningJob) -> None:
        self.job = job
        self.status: JobStatus = "running"
        self.result: NodeResult | None = None
        self.error: str | None = None
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.sent = False
        self._cancelled = False
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    @property
    def node(self) -> NodeSpec:
        return self.job.node

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def started(self) -> bool:
        """True once a NodeActor started running the job."""
        return self._scope is not None

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled

    def attach(self, scope: trio.CancelScope) -> None:
        """Called by the NodeActor as the job starts, so that cancel() reaches it."""
        self._scope = scope
        self.started_at = time.time()
        if self._cancelled:
            scope.cancel()

    def cancel(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    def finish(
        self, status: JobStatus, result: NodeResult | None = None, error: str | None = None
    ) -> None:
        """Record the outcome once; later calls are ignored."""
        if self.done:
            return
        self.status = status
        self.result = result
        self.error = error
        self.finished_at = time.time()
        self._done.set()

    async def wait(self) -> None:
        await self._done.wait()

    def record(self) -> JobRecord:
        return JobRecord(
            execution_id=self.job.execution_id,
            node=self.node.key,
            type=self.node.type,
            status=self.status,
            attempt=self.job.attempt,
            started_at=self.started_at,
            finished_at=self.finished_at,
            output=self.result.output if self.result is not None else None,
            error=self.error,
            log=tuple(self.job.lines),
        )
