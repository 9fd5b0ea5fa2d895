"""One execution: walks the workflow's node tree, sending each job to its NodeActor.

Nodes that run node lists themselves (``loop``, ``parallel``) call back into the same
execution through :meth:`Execution.run_nested`, so nested jobs go to the same actors,
are recorded the same way and see the same answers and ``end``. A resumed execution
(after a restart, or retried from its failed node) reuses the recorded output of every
job that succeeded, and runs the others again as their next attempt.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from ..errors import NodeError, StoreError
from ..nodes._base import End, ExecutionEnded, NodeResult, NodeServices, NodeSpec
from ..store._ops import SaveAnswer, SaveJob, UpdateExecution
from ..store._records import Answer, ExecutionStatus, JobRecord
from ..store._store import Store
from ._answers import ExecutionOutcome, finished_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._job import JobTicket, RunningJob
from ._node_actor import NodeActor

log = logging.getLogger("hookline.engine")

# How long a cancelled execution waits for its running job to acknowledge the cancel.
CANCEL_GRACE = 1.0

# A job's identity within its execution: (node key, scope).
Identity = tuple[str, str]


class ExecutionHandle:
    """A live execution as its callers hold it: its answer, its outcome, its cancel.

    ``resumed`` marks an execution that ran before (found unfinished at start-up, or
    retried from its failed node): it reuses the outputs of the jobs that succeeded.
    ``context`` is the delivery's ``$context`` when admission built it already.
    """

    def __init__(
        self,
        execution_id: str,
        workflow: Workflow,
        delivery: Delivery,
        *,
        idempotency_key: str | None = None,
        resumed: bool = False,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.id = execution_id
        self.workflow = workflow
        self.delivery = delivery
        self.idempotency_key = idempotency_key
        self.resumed = resumed
        self.context = context
        self.answer: Answer | None = None
        self.outcome: ExecutionOutcome | None = None
        self.cancel_requested = False
        self._scope: trio.CancelScope | None = None
        self._answered = trio.Event()
        self._finished = trio.Event()
        # Set by whichever comes first: what a sync sender waits for.
        self._settled = trio.Event()

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
        self._settled.set()
        return True

    def set_outcome(self, outcome: ExecutionOutcome) -> None:
        self.outcome = outcome
        self._finished.set()
        self._settled.set()

    async def wait_answer(self) -> Answer:
        await self._answered.wait()
        assert self.answer is not None
        return self.answer

    async def wait_answered_or_finished(self) -> None:
        """Return once the execution answered or ended, whichever comes first."""
        await self._settled.wait()

    async def wait_finished(self) -> ExecutionOutcome:
        await self._finished.wait()
        assert self.outcome is not None
        return self.outcome


class JobFailed(NodeError):
    """A job ended other than succeeded (after its retries): the execution fails, or,
    nested, the node that ran it sees this error."""

    def __init__(self, ticket: JobTicket) -> None:
        super().__init__(f"node '{ticket.node.key}' {ticket.status}: {ticket.error}")
        self.ticket = ticket


@attrs.frozen
class Frame:
    """Where a node list runs: the scope its jobs are known by, and their variables
    (``nodes`` is the live dict the list's results are written to)."""

    scope: str
    roots: Mapping[str, Any]

    @property
    def outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = self.roots["nodes"]
        return outputs


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
        # From the store when resumed: jobs that succeeded, the last attempt number
        # and the last checkpoint of each (node, scope).
        self._succeeded: dict[Identity, JobRecord] = {}
        self._attempts: dict[Identity, int] = {}
        self._checkpoints: dict[Identity, Any] = {}
        self._end: End | None = None
        self._random: random.Random | None = None

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
        # A resumed execution keeps the time it first started.
        started_at = None if handle.resumed else time.time()
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
                    await self._load_jobs()
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

    async def _load_jobs(self) -> None:
        # A store that cannot be read fails the resume like a crash: the record stays
        # unfinished, to be resumed again.
        for record in await self.store.list_jobs(self.handle.id):
            identity = (record.node, record.scope)
            self._attempts[identity] = max(self._attempts.get(identity, 0), record.attempt)
            if record.status == "succeeded":
                self._succeeded[identity] = record
            elif record.output is not None:
                # An unfinished job's output is the checkpoint it saved (a delay's due time).
                self._checkpoints[identity] = record.output

    async def walk(self, nodes: Sequence[NodeSpec], frame: Frame) -> Any:
        """Run a node list in order; branches run in place. Returns the last result.

        Raises JobFailed when a job fails, ExecutionEnded when an ``end`` node ran.
        """
        last: Any = None
        for node in nodes:
            result = await self.run_job(node, frame)
            frame.outputs[node.key] = result.output
            last = result.output
            if result.answer is not None:
                await self._answer(result.answer)
            if result.end is not None:
                if self._end is None:
                    self._end = result.end
                raise ExecutionEnded(self._end)
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
        self._checkpoints[(job.node.key, job.scope)] = job.saved
        await self.store.write(
            SaveJob(job.record("running", started_at=time.time(), output=job.saved))
        )

    async def run_job(self, node: NodeSpec, frame: Frame) -> NodeResult:
        """Run one node: reuse its recorded result if it succeeded before a resume,
        else send it to its actor, retrying as its ``retry`` says. Every attempt is
        recorded. Raises JobFailed once it has failed for good."""
        identity = (node.key, frame.scope)
        done = self._succeeded.get(identity)
        if done is not None:
            return self._replay(node, frame, done)
        policy = node.retry
        tries = 0
        while True:
            tries += 1
            attempt = self._attempts.get(identity, 0) + 1
            self._attempts[identity] = attempt
            ticket = await self._send(node, frame, attempt)
            if ticket.status == "succeeded" and ticket.result is not None:
                return ticket.result
            if self._end is not None and ticket.status == "cancelled":
                raise ExecutionEnded(self._end)  # an `end` ran inside this node
            if policy is None or tries >= policy.attempts or ticket.status not in policy.retry_on:
                raise JobFailed(ticket)
            if self._random is None:
                # Seeded from the OS on first use: most executions never retry.
                self._random = random.Random()
            wait = policy.delay(tries, self._random)
            log.info(
                "execution %s: node '%s' %s (attempt %d); retrying in %.2fs",
                self.handle.id,
                node.key,
                ticket.status,
                attempt,
                wait,
            )
            await trio.sleep(wait)

    def _replay(self, node: NodeSpec, frame: Frame, done: JobRecord) -> NodeResult:
        """The result of a job that succeeded before this execution resumed."""
        # Nodes nested in it without a scope of their own (parallel branches) wrote
        # their results in this frame: later nodes may read them.
        for nested in node.walk()[1:]:
            earlier = self._succeeded.get((nested.key, frame.scope))
            if earlier is not None:
                frame.outputs[nested.key] = earlier.output
        replay = getattr(node.config, "replay", None)
        result: NodeResult = (
            replay(done.output) if replay is not None else NodeResult(output=done.output)
        )
        return result

    async def _send(self, node: NodeSpec, frame: Frame, attempt: int) -> JobTicket:
        """Send one attempt to the node's actor, wait for it and record it."""
        roots = {**frame.roots, "system": {"now": _now_iso()}}
        job = RunningJob(
            self.handle.id,
            node,
            roots,
            attempt,
            self.services,
            scope=frame.scope,
            host=self,
            checkpointed=self._checkpoints.get((node.key, frame.scope)),
        )
        ticket = JobTicket(job)
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
        return ticket

    async def _record_job(self, ticket: JobTicket) -> None:
        # Queued, not awaited: the execution's final write commits after it, in order.
        await self.store.post(SaveJob(ticket.record()))

    async def _answer(self, answer: Answer) -> None:
        handle = self.handle
        if handle.answer is not None:
            return
        if handle.workflow.trigger.mode == "sync" and handle.idempotency_key is not None:
            # Committed before the sender sees it: a retry right after gets it replayed.
            await self.store.write(
                SaveAnswer(handle.delivery.id, answer, self.workflow.key, handle.idempotency_key)
            )
        elif handle.workflow.trigger.mode == "sync":
            await self.store.post(SaveAnswer(handle.delivery.id, answer))
        handle.set_answer(answer)

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
                if self.handle.answer is None:
                    await self._answer(finished_answer(outcome))
            except StoreError:
                log.exception("could not record the end of execution %s", outcome.execution_id)
        self.handle.set_outcome(outcome)


_last_iso: tuple[int, str] = (-1, "")


def _now_iso() -> str:
    """The wall time as ISO 8601 UTC to the millisecond (``$system.now``); formatted
    once per millisecond, however many jobs start in it."""
    global _last_iso
    millis = time.time_ns() // 1_000_000
    if _last_iso[0] != millis:
        seconds, rest = divmod(millis, 1000)
        now = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        now = now.replace(microsecond=rest * 1000)
        _last_iso = (millis, now.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return _last_iso[1]
