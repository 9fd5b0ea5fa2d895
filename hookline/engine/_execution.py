"""One execution: walks the workflow's node tree, sending each job to its NodeActor."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ..errors import StoreError
from ..nodes._base import End, NodeResult, NodeServices, NodeSpec
from ..store._ops import SaveAnswer, SaveJob, UpdateExecution
from ..store._records import Answer, ExecutionStatus
from ..store._store import Store
from ._answers import ExecutionOutcome, finished_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._job import JobTicket, RunningJob
from ._node_actor import NodeActor

log = logging.getLogger("hookline.engine")

# How long a cancelled execution waits for its running job to acknowledge the cancel.
CANCEL_GRACE = 1.0


class ExecutionHandle:
    """A live execution as its callers hold it: its answer, its outcome, its cancel."""

    def __init__(
        self,
        execution_id: str,
        workflow: Workflow,
        delivery: Delivery,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        self.id = execution_id
        self.workflow = workflow
        self.delivery = delivery
        self.idempotency_key = idempotency_key
        self.answer: Answer | None = None
        self.outcome: ExecutionOutcome | None = None
        self.cancel_requested = False
        self._scope: trio.CancelScope | None = None
        self._answered = trio.Event()
        self._finished = trio.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Cancel the execution: queued, it never starts; running, its jobs are cancelled."""
        self.cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def attach(self, scope: trio.CancelScope) -> None:
        self._scope = scope
        if self.cancel_requested:
            scope.cancel()

    def set_answer(self, answer: Answer) -> bool:
        """Keep the first answer (a ``response`` node or the end); False if already set."""
        if self._answered.is_set():
            return False
        self.answer = answer
        self._answered.set()
        return True

    def set_outcome(self, outcome: ExecutionOutcome) -> None:
        self.outcome = outcome
        self._finished.set()

    async def wait_answer(self) -> Answer:
        await self._answered.wait()
        assert self.answer is not None
        return self.answer

    async def wait_finished(self) -> ExecutionOutcome:
        await self._finished.wait()
        assert self.outcome is not None
        return self.outcome


class JobFailed(Exception):
    """Internal: a job ended other than succeeded, so the execution fails."""

    def __init__(self, ticket: JobTicket) -> None:
        super().__init__(f"node '{ticket.node.key}' {ticket.status}: {ticket.error}")
        self.ticket = ticket


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
            "context": handle.delivery.context(),
            "nodes": self.outputs,
            "scopes": {},
            "execution": {"id": handle.id},
            "workflow": {"key": self.workflow.key, "title": self.workflow.title},
            "env": dict(services.env),
        }
        self._last_output: Any = None

    async def run(self) -> ExecutionOutcome:
        """Run the execution; never raises except for cancellation from outside."""
        handle = self.handle
        if handle.cancel_requested:
            # Cancelled while queued: it never starts, so no job runs and none is recorded.
            outcome = ExecutionOutcome(
                handle.id, self.workflow.key, "cancelled", None, "cancelled before it started"
            )
            await self.finish(outcome)
            return outcome
        await self.store.post(UpdateExecution(handle.id, "running", started_at=time.time()))
        status: ExecutionStatus = "succeeded"
        output: Any = None
        error: str | None = None
        with trio.CancelScope() as cancel_scope:
            handle.attach(cancel_scope)
            with trio.move_on_after(self.workflow.timeout) as timeout_scope:
                try:
                    end = await self.run_nodes(self.workflow.nodes)
                except JobFailed as failure:
                    status, error = "failed", str(failure)
                else:
                    if end is not None:
                        status, output = end.status, end.output
                        error = (
                            "ended by an 'end' node with status failed"
                            if (end.status == "failed")
                            else None
                        )
                    else:
                        output = self._last_output
        if timeout_scope.cancelled_caught:
            status, error = "timed_out", f"the workflow timeout ({self.workflow.timeout}s) passed"
        elif cancel_scope.cancelled_caught:
            status, error = "cancelled", "cancelled on request"
        outcome = ExecutionOutcome(handle.id, self.workflow.key, status, output, error)
        await self.finish(outcome)
        return outcome

    async def run_nodes(self, nodes: Sequence[NodeSpec]) -> End | None:
        """Run a node list in order; branches run in place. Returns an ``end`` if one ran."""
        for node in nodes:
            result = await self.run_job(node)
            self.outputs[node.key] = result.output
            self._last_output = result.output
            if result.answer is not None:
                await self._answer(result.answer)
            if result.end is not None:
                return result.end
            if result.branch:
                end = await self.run_nodes(result.branch)
                if end is not None:
                    return end
        return None

    async def run_job(self, node: NodeSpec) -> NodeResult:
        """Send one job to the node's actor and wait for it; record the job."""
        roots = {**self.roots, "system": {"now": _now_iso()}}
        ticket = JobTicket(RunningJob(self.handle.id, node, roots, services=self.services))
        actor = self.actors[node.key]
        try:
            await actor.mailbox.send(ticket)
            ticket.sent = True
            await ticket.wait()
        except BaseException:
            ticket.cancel()
            with trio.CancelScope(shield=True):
                if ticket.started:
                    # Let the job see its cancel, so its record says how it really ended.
                    with trio.move_on_after(CANCEL_GRACE):
                        await ticket.wait()
                ticket.finish("cancelled", error="cancelled")
                await self._record_job(ticket)
            raise
        await self._record_job(ticket)
        if ticket.status != "succeeded" or ticket.result is None:
            raise JobFailed(ticket)
        return ticket.result

    async def _record_job(self, ticket: JobTicket) -> None:
        # Queued, not awaited: the execution's final write commits after it, in order.
        await self.store.post(SaveJob(ticket.record()))

    async def _answer(self, answer: Answer) -> None:
        handle = self.handle
        if handle.set_answer(answer) and handle.workflow.trigger.mode == "sync":
            await self.store.post(
                SaveAnswer(handle.delivery.id, answer, self.workflow.key, handle.idempotency_key)
            )

    async def finish(self, outcome: ExecutionOutcome) -> None:
        """Record how the execution ended, answer a sync sender, wake its waiters.
        Shielded: it completes even while the caller is being cancelled."""
        with trio.CancelScope(shield=True):
            try:
                await self.store.write(
                    UpdateExecution(
                        outcome.execution_id,
                        outcome.status,
                        finished_at=time.time(),
                        output=outcome.output,
                        error=outcome.error,
                    )
                )
                await self._answer(finished_answer(outcome))
            except StoreError:
                log.exception("could not record the end of execution %s", outcome.execution_id)
        self.handle.set_outcome(outcome)


def _now_iso() -> str:
    now = datetime.datetime.now(tz=datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
