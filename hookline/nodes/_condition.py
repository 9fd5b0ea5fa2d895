"""The ``condition`` node: run ``then`` or ``else`` depending on a comparison tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs

from ..definition import JSON, Condition, Fields
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register


@attrs.frozen
class ConditionNode:
    """``if`` holds: the execution runs ``then`` next; otherwise ``else``.

    The result is the name of the branch taken, ``"then"`` or ``"else"``.
    """

    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver
    test: Condition
    then: tuple[NodeSpec, ...] = ()
    otherwise: tuple[NodeSpec, ...] = ()

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return (self.then, self.otherwise)

    async def run(self, job: Job) -> NodeResult:
        if self.test.evaluate(job.variables):
            return NodeResult(output="then", branch=self.then)
        return NodeResult(output="else", branch=self.otherwise)

    def replay(self, output: JSON) -> NodeResult:
        """The branch a recorded result names (a resumed execution takes it again)."""
        return NodeResult(output=output, branch=self.then if output == "then" else self.otherwise)


@register("condition")
def parse(fields: Fields, nodes: NodeListParser) -> ConditionNode:
    return ConditionNode(
        test=fields.condition("if"), then=nodes(fields, "then"), otherwise=nodes(fields, "else")
    )
