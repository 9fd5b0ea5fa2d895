"""One execution: walks the workflow's node tree, sending each job to its NodeActor.

Nodes that run node lists themselves (``loop``, ``parallel``) call back into the same
execution through :meth:`Execution.run_nested`, so nested jobs go to the same actors,
are recorded the same way and see the same answers and ``end``. Each job is run (sent,
recorded, retried, or reused when resumed) by :mod:`._job_runner`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ..errors import StoreError
from ..nodes._base import ExecutionEnded, NodeServices, NodeSpec
from ..store._ops import SaveAnswer, UpdateExecution
from ..store._records import Answer, ExecutionStatus
from ..store._store import Store
from ._answers import ExecutionOutcome, finished_answer
from ._handle import ExecutionHandle
from ._job import RunningJob
from ._job_runner import Frame, JobFailed, JobRunner
from ._node_actor import NodeActor

# ExecutionHandle lives in ._handle; importers of it from here keep working.
__all__ = ["Execution", "ExecutionHandle"]

log = logging.getLogger("hookline.engine")


class Execution:
    """Runs one execution to its end and records it.

    The execution runs under the workflow's timeout (``timed_out``) and its handle's
    cancel scope (``cancelled``). When it is cancelled from outside (engine shutdown),
    its record stays ``running`` so the next start can resume it.
    """

    def __init__(
        self,
        handle: ExecutionHandle,
        actors: Mapping[str, NodeActor],
        store: Store,
        *,
        services: NodeServices,
    ) -> None:
        self.handle = handle
        self.workflow = handle.workflow
        self.actors = actors
        self.store = store
        self.services = services
        self.outputs: dict[str, Any] = {}
        self.roots: dict[str, Any] = {
            "context": handle.context if handle.context is not None else handle.delivery.context(),
            "nodes": self.outputs,
            "scopes": {},
            "execution": {"id": handle.id},
            "workflow": {"key": self.workflow.key, "title": self.workflow.title},
            "env": dict(services.env),
        }
        self.jobs = JobRunner(handle.id, actors, store, services, host=self)

    async def run(self) -> ExecutionOutcome:
        """Run the execution; never raises except for cancellation from outside."""
        handle = self.handle
        if handle.cancel_requested:
            # Cancelled while queued: it never starts (again), so no job runs.
            why = "cancelled before it started"
            if handle.resumed and handle.started_at is not None:
                # It ran in a process that stopped (a cancel adopted with it).
                why = "cancelled on request"
                try:
                    await self.jobs.resume()  # closes the attempts it left running
                except StoreError:
                    log.exception("could not read the jobs of execution %s", handle.id)
            outcome = ExecutionOutcome(handle.id, self.workflow.key, "cancelled", None, why)
            await self.finish(outcome)
            return outcome
        # A resumed execution keeps the time it first started, if it had started.
        started_at = time.time() if handle.started_at is None else None
        await self.store.post(UpdateExecution(handle.id, "running", started_at=started_at))
        status: ExecutionStatus = "succeeded"
        output: Any = None
        error: str | None = None
        # One scope for both the workflow timeout and a cancel on request (the handle
        # says which): entering a cancel scope is a large part of a short execution.
        with trio.CancelScope(deadline=trio.current_time() + self.workflow.timeout) as scope:
            handle.attach(scope)
            try:
                if handle.resumed:
                    # A store that cannot be read fails the resume like a crash: the
                    # record stays unfinished, to be resumed again.
                    await self.jobs.resume()
                output = await self.walk(self.workflow.nodes, Frame("", self.roots))
            except JobFailed as failure:
                status, error = "failed", str(failure)
            except ExecutionEnded as ended:
                status, output = ended.end.status, ended.end.output
                if ended.end.status == "failed":
                    error = "ended by an 'end' node with status failed"
        if scope.cancelled_caught:
            if handle.cancel_requested:
                status, error = "cancelled", "cancelled on request"
            else:
                status = "timed_out"
                error = f"the workflow timeout ({self.workflow.timeout}s) passed"
        outcome = ExecutionOutcome(handle.id, self.workflow.key, status, output, error)
        await self.finish(outcome)
        return outcome

    async def walk(self, nodes: Sequence[NodeSpec], frame: Frame) -> Any:
        """Run a node list in order; branches run in place. Returns the last result.

        Raises JobFailed when a job fails, ExecutionEnded when an ``end`` node ran.
        """
        last: Any = None
        for node in nodes:
            result = await self.jobs.run(node, frame)
            frame.outputs[node.key] = result.output
            last = result.output
            if result.answer is not None:
                await self._answer(result.answer)
            if result.end is not None:
                if self.jobs.end is None:
                    self.jobs.end = result.end
                raise ExecutionEnded(self.jobs.end)
            if result.branch:
                last = await self.walk(result.branch, frame)
        return last

    async def run_nested(
        self,
        job: RunningJob,
        nodes: Sequence[NodeSpec],
        scope: tuple[str, Mapping[str, Any]] | None,
    ) -> Any:
        """Run ``nodes`` for ``job`` (a loop iteration, a parallel branch): see
        :meth:`hookline.nodes._base.Job.run_nodes`."""
        parent = job.variables
        if scope is None:
            return await self.walk(nodes, Frame(job.scope, parent))
        key, values = scope
        label = f"{key}[{values.get('index', '')}]"
        roots = {
            **parent,
            # Results inside an iteration are its own: iterations may run at once.
            "nodes": dict(parent["nodes"]),
            "scopes": {**parent["scopes"], key: dict(values)},
        }
        return await self.walk(nodes, Frame(f"{job.scope}/{label}" if job.scope else label, roots))

    async def save_checkpoint(self, job: RunningJob) -> None:
        """Commit ``job`` as ``running`` with its checkpoint as output (durable)."""
        await self.jobs.save_checkpoint(job)

    async def _answer(self, answer: Answer) -> None:
        handle = self.handle
        if handle.answer is not None:
            return
        await self._record_answer(answer, commit=True)
        handle.set_answer(answer)

    async def _record_answer(self, answer: Answer, *, commit: bool) -> None:
        """Store a sync execution's answer; with ``commit``, wait for the commit (a
        sender told of it before could retry and find nothing). Async ones answered at
        intake."""
        handle = self.handle
        if handle.workflow.trigger.mode != "sync":
            return
        if handle.idempotency_key is None:
            await self.store.post(SaveAnswer(handle.delivery.id, answer))
            return
        save = SaveAnswer(handle.delivery.id, answer, self.workflow.key, handle.idempotency_key)
        # Committed before the sender sees it: a retry right after gets it replayed.
        if commit:
            await self.store.write(save)
        else:
            await self.store.post(save)

    async def finish(self, outcome: ExecutionOutcome) -> None:
        """Record how the execution ended, answer a sync sender, wake its waiters.
        Shielded: it completes even while the caller is being cancelled.

        The answer is queued before the end (they commit in that order): a crash
        between the two leaves an execution to resume whose answer retries already
        get, never a finished one whose answer is lost (retries would get 409 forever).
        """
        answer = finished_answer(outcome) if self.handle.answer is None else None
        with trio.CancelScope(shield=True):
            try:
                if answer is not None:
                    await self._record_answer(answer, commit=False)
                await self.store.write(
                    UpdateExecution(
                        outcome.execution_id,
                        outcome.status,
                        finished_at=time.time(),
                        output=outcome.output,
                        error=outcome.error,
                    )
                )
            except StoreError:
                log.exception("could not record the end of execution %s", outcome.execution_id)
        if answer is not None:
            self.handle.set_answer(answer)
        self.handle.set_outcome(outcome)
