"""The ``wait`` node: pause until a matching event arrives, or time out.

An event is a delivery of another workflow (``event``, its key) whose
``trigger.correlate`` renders the same value as this node's ``match``. The node then
takes its ``then`` nodes, and ``$nodes.<key>`` is the event's ``$context``; past
``timeout``, it takes its ``timed_out`` nodes, and ``$nodes.<key>`` is
``{"timed_out": true}``.

The node itself never waits: it asks its execution to park (``suspend``). The engine
commits the wait (a row in the store: event, value, deadline) and the execution's
``waiting`` status, and ends the execution's task; it holds no task and no timer of
its own while it waits (the engine's event board keeps one timer for every deadline).
Whoever ends the wait (a matching event, the timeout, an operator) deletes its row and
records the job's result in one transaction, so each wait ends once, even across
processes sharing a PostgreSQL store; the execution then resumes from its records, and
the recorded result replays the branch taken.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from ..definition import JSON, Compiled, Fields
from ._base import Job, NodeResult, NodeSpec, Suspend
from ._registry import NodeListParser, register

TIMED_OUT: JSON = {"timed_out": True}


@attrs.frozen
class WaitNode:
    """Wait for an event of workflow ``event`` correlating on ``match``."""

    event: str
    match: Compiled
    timeout: float
    then: tuple[NodeSpec, ...] = ()
    timed_out: tuple[NodeSpec, ...] = ()
    # Its own ``timeout`` bounds it, not a node timeout (the workflow's bounds both).
    default_timeout: ClassVar[float] = math.inf
    parks: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return (self.then, self.timed_out)

    async def run(self, job: Job) -> NodeResult:
        now = job.services.clock()
        saved = job.checkpointed
        if isinstance(saved, Mapping) and isinstance(saved.get("until"), int | float):
            until, since = float(saved["until"]), float(saved.get("since") or now)
        else:
            since, until = now, now + self.timeout
        if now >= until:
            return NodeResult(output=TIMED_OUT, branch=self.timed_out)
        value = job.render(self.match)
        match = "" if value is None else str(value)
        checkpoint: JSON = {"until": until, "since": since, "event": self.event, "match": match}
        return NodeResult(output=checkpoint, suspend=Suspend(self.event, match, until))

    def replay(self, output: JSON) -> NodeResult:
        """The branch a recorded result took (a resumed execution takes it again)."""
        return NodeResult(
            output=output, branch=self.timed_out if output == TIMED_OUT else self.then
        )


@register("wait")
def parse(fields: Fields, nodes: NodeListParser) -> WaitNode:
    event = fields.string("event", pattern=r"[a-z0-9][a-z0-9_-]*", expected="the key of a workflow")
    timeout = fields.duration("timeout")
    if timeout > nodes.workflow_timeout:
        fields.fail("timeout", "at most the workflow's timeout", fields.value("timeout"))
    return WaitNode(
        event=event,
        match=fields.template("match"),
        timeout=timeout,
        then=nodes(fields, "then"),
        timed_out=nodes(fields, "timed_out"),
    )
