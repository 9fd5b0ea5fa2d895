"""The ``end`` node: stop the execution now, as succeeded or failed, with an output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import attrs

from ..definition import JSON, Compiled, Fields
from ._base import End, Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register


@attrs.frozen
class EndNode:
    """Stop with ``status``; the rendered ``output`` is the node's and the execution's."""

    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver
    status: Literal["succeeded", "failed"] = "succeeded"
    output: Compiled | None = None

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        output = None if self.output is None else job.render(self.output)
        return NodeResult(output=output, end=End(self.status, output))

    def replay(self, output: JSON) -> NodeResult:
        """A resumed execution that reached this node before ends here again."""
        return NodeResult(output=output, end=End(self.status, output))


@register("end")
def parse(fields: Fields, nodes: NodeListParser) -> EndNode:
    status = fields.choice("status", ("succeeded", "failed"), "succeeded")
    return EndNode(
        status="failed" if status == "failed" else "succeeded",
        output=fields.template("output", None),
    )
