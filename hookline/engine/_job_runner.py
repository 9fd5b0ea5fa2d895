"""Running one node of an execution: send each attempt to the node's actor, record it,
retry it as the node's ``retry`` says.

A resumed execution (after a restart, or retried from its failed node) first loads its
stored jobs: a job that succeeded is not run again (its recorded output is reused), the
others run again as their next attempt, with the checkpoint they saved. An attempt still
recorded ``running`` was interrupted: it is recorded ``cancelled`` before the next runs.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from ..errors import NodeError
from ..nodes._base import End, ExecutionEnded, NodeResult, NodeServices, NodeSpec
from ..store._ops import SaveJob
from ..store._records import JobRecord
from ..store._store import Store
from ._job import JobHost, JobTicket, RunningJob
from ._node_actor import NodeActor

log = logging.getLogger("hookline.engine")

# How long a cancelled execution waits for its running job to acknowledge the cancel.
CANCEL_GRACE = 1.0

# The error of an attempt a stop, crash or takeover left running, closed on resume.
INTERRUPTED = "interrupted: the process running it stopped before it ended"

# A job's identity within its execution: (node key, scope).
Identity = tuple[str, str]


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


class JobRunner:
    """Runs the jobs of one execution and keeps what it knows of their attempts.

    ``host`` is the execution nested nodes and checkpoints go back to. ``end`` is the
    ``end`` node that ran in the execution, if any: a job cancelled after it ends the
    execution rather than failing or being retried.
    """

    def __init__(
        self,
        execution_id: str,
        actors: Mapping[str, NodeActor],
        store: Store,
        services: NodeServices,
        host: JobHost,
    ) -> None:
        self.execution_id = execution_id
        self.actors = actors
        self.store = store
        self.services = services
        self.host = host
        self.end: End | None = None
        # From the store when resumed: jobs that succeeded, the last attempt number
        # and the last checkpoint of each (node, scope).
        self._succeeded: dict[Identity, JobRecord] = {}
        self._attempts: dict[Identity, int] = {}
        self._checkpoints: dict[Identity, Any] = {}
        self._random: random.Random | None = None

    async def resume(self) -> None:
        """Take in the stored jobs of a resumed execution, and record the attempts its
        last run left ``running`` as cancelled: they were interrupted, and the next
        attempt of each is the one that runs."""
        now = time.time()
        for record in await self.store.list_jobs(self.execution_id):
            identity = (record.node, record.scope)
            self._attempts[identity] = max(self._attempts.get(identity, 0), record.attempt)
            if record.status == "succeeded":
                self._succeeded[identity] = record
                continue
            if record.output is not None:
                # An unfinished job's output is the checkpoint it saved (a delay's due time).
                self._checkpoints[identity] = record.output
            if record.status == "running":
                closed = attrs.evolve(
                    record, status="cancelled", finished_at=now, error=INTERRUPTED
                )
                await self.store.post(SaveJob(closed))

    async def save_checkpoint(self, job: RunningJob) -> None:
        """Commit ``job`` as ``running`` with its checkpoint as output (durable)."""
        self._checkpoints[(job.node.key, job.scope)] = job.saved
        await self.store.write(
            SaveJob(job.record("running", started_at=time.time(), output=job.saved))
        )

    async def run(self, node: NodeSpec, frame: Frame) -> NodeResult:
        """Run one node: reuse its recorded result if it succeeded before a resume,
        else send it to its actor, retrying as its ``retry`` says. Every attempt is
        recorded. Raises JobFailed once it has failed for good, ExecutionEnded when it
        was cancelled because an ``end`` ran inside it."""
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
            if self.end is not None and ticket.status == "cancelled":
                raise ExecutionEnded(self.end)
            if policy is None or tries >= policy.attempts or ticket.status not in policy.retry_on:
                raise JobFailed(ticket)
            if self._random is None:
                # Seeded from the OS on first use: most executions never retry.
                self._random = random.Random()
            wait = policy.delay(tries, self._random)
            log.info(
                "execution %s: node '%s' %s (attempt %d); retrying in %.2fs",
                self.execution_id,
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
            self.execution_id,
            node,
            roots,
            attempt,
            self.services,
            scope=frame.scope,
            host=self.host,
            checkpointed=self._checkpoints.get((node.key, frame.scope)),
        )
        ticket = JobTicket(job)
        try:
            await self.actors[node.key].mailbox.send(ticket)
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
                await self._record(ticket)
            raise
        await self._record(ticket)
        return ticket

    async def _record(self, ticket: JobTicket) -> None:
        # Queued, not awaited: the execution's final write commits after it, in order.
        await self.store.post(SaveJob(ticket.record()))


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
