"""A job: one node run for one execution, sent to a NodeActor, with its reply slot."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import trio

from ..definition import JSON
from ..errors import NodeError
from ..nodes._base import NodeResult, NodeServices, NodeSpec, Renderable
from ..store._records import JobRecord, JobStatus


class JobHost(Protocol):
    """What a running job asks of the execution that runs it (its driver)."""

    async def save_checkpoint(self, job: RunningJob) -> None: ...


class RunningJob:
    """What a node sees while it runs (implements :class:`hookline.nodes._base.Job`).

    ``scope`` names the loop iteration the job runs in (``""`` outside loops); ``host``
    is the execution that runs nested nodes and commits checkpoints for it (without
    one, :meth:`run_nodes` and :meth:`checkpoint` raise NodeError); ``checkpointed``
    what an earlier unfinished attempt saved.
    """

    def __init__(
        self,
        execution_id: str,
        node: NodeSpec,
        roots: Mapping[str, Any],
        attempt: int = 1,
        services: NodeServices | None = None,
        *,
        scope: str = "",
        host: JobHost | None = None,
        checkpointed: Any = None,
    ) -> None:
        self._services = services if services is not None else NodeServices()
        self._execution_id = execution_id
        self._node = node
        self._roots = roots
        self._attempt = attempt
        self._scope = scope
        self._host = host
        self._checkpointed = checkpointed
        self.lines: list[str] = []
        # The state this attempt saved with checkpoint(): kept on its record even when
        # it ends unfinished, so that the next attempt finds it.
        self.saved: Any = None
        # Set by the execution core: when the attempt started (wall clock) and which
        # try of its retry policy it is.
        self.started_at = 0.0
        self.tries = 1
        self.cancelled = False
        self._cancel_scope: trio.CancelScope | None = None

    def attach(self, scope: trio.CancelScope) -> None:
        """Called as the attempt starts running in a task, so that :meth:`cancel`
        reaches it."""
        self._cancel_scope = scope
        if self.cancelled:
            scope.cancel()

    def cancel(self) -> None:
        self.cancelled = True
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

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
    def scope(self) -> str:
        return self._scope

    @property
    def checkpointed(self) -> Any:
        return self._checkpointed

    @property
    def variables(self) -> Mapping[str, Any]:
        return self._roots

    def render(self, value: Renderable) -> Any:
        return value.render(self._roots)

    def log(self, message: str) -> None:
        self.lines.append(message)

    async def checkpoint(self, state: Any) -> None:
        if self._host is None:
            raise NodeError("this job has no execution to save a checkpoint in")
        self.saved = state
        await self._host.save_checkpoint(self)

    def record(
        self,
        status: JobStatus,
        *,
        started_at: float,
        finished_at: float | None = None,
        output: JSON = None,
        error: str | None = None,
    ) -> JobRecord:
        """This job's record with the given outcome."""
        return JobRecord(
            execution_id=self._execution_id,
            node=self._node.key,
            type=self._node.type,
            status=status,
            attempt=self._attempt,
            started_at=started_at,
            finished_at=finished_at,
            output=output,
            error=error,
            log=tuple(self.lines),
            scope=self._scope,
        )


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
        """The job's record; unfinished, its output is the checkpoint it saved."""
        return self.job.record(
            self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            output=self.result.output if self.result is not None else self.job.saved,
            error=self.error,
        )
