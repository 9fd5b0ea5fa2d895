"""The ``wait`` node: pause until a matching event arrives, or time out.

An event is a delivery of another workflow (``event``, its key) whose
``trigger.correlate`` renders the same value as this node's ``match``. The node then
takes its ``then`` nodes, and ``$nodes.<key>`` is the event's ``$context``; past
``timeout``, it takes its ``timed_out`` nodes, and ``$nodes.<key>`` is
``{"timed_out": true}``.

Durability is the ``delay`` node's: before it waits, the node commits its job as
``running`` with ``{"until", "since"}`` (wall clock). A resumed execution runs it again;
it first looks for a matching event that arrived since it began waiting (one accepted
while its process was down), and waits only what is left of its timeout. The recorded
result then replays the branch taken, so each wait ends once, on its event or on its
timeout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from ..definition import JSON, Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
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

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return (self.then, self.timed_out)

    async def run(self, job: Job) -> NodeResult:
        events = job.services.events
        if events is None:
            raise NodeError("this engine takes no events (no event board)")
        clock = job.services.clock
        saved = job.checkpointed
        if isinstance(saved, Mapping) and isinstance(saved.get("until"), int | float):
            until, since = float(saved["until"]), float(saved.get("since") or 0.0)
            job.log(f"resumed: waiting until {until:.3f}")
        else:
            since = clock()
            until = since + self.timeout
            await job.checkpoint({"until": until, "since": since})
        value = job.render(self.match)
        match = "" if value is None else str(value)
        found = await events.wait_for(
            self.event,
            match,
            until=until,
            since=since if saved is not None else None,
            execution_id=job.execution_id,
        )
        if found is None:
            return NodeResult(output=TIMED_OUT, branch=self.timed_out)
        return NodeResult(output=found, branch=self.then)

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
