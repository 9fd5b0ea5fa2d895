"""The ``switch`` node: run the nodes of the first case whose ``if`` holds, or ``default``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs

from ..definition import JSON, Condition, Fields
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

DEFAULT = "default"


@attrs.frozen
class SwitchCase:
    """One case: its comparison tree and the nodes run when it is the first to hold."""

    test: Condition
    nodes: tuple[NodeSpec, ...]


@attrs.frozen
class SwitchNode:
    """Test ``cases`` in order; the execution runs the nodes of the first that holds,
    in place, or ``default`` when none does.

    The result is the index of the case taken (0, 1, ...) or ``"default"``.
    """

    cases: tuple[SwitchCase, ...]
    default: tuple[NodeSpec, ...] = ()
    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return (*(case.nodes for case in self.cases), self.default)

    async def run(self, job: Job) -> NodeResult:
        for index, case in enumerate(self.cases):
            if case.test.evaluate(job.variables):
                return NodeResult(output=index, branch=case.nodes)
        return NodeResult(output=DEFAULT, branch=self.default)

    def replay(self, output: JSON) -> NodeResult:
        """The branch a recorded result names (a resumed execution takes it again)."""
        if isinstance(output, int) and 0 <= output < len(self.cases):
            return NodeResult(output=output, branch=self.cases[output].nodes)
        return NodeResult(output=output, branch=self.default)


@register("switch")
def parse(fields: Fields, nodes: NodeListParser) -> SwitchNode:
    cases = []
    for case in fields.items("cases", required=True):
        cases.append(SwitchCase(test=case.condition("if"), nodes=nodes(case, "nodes")))
        case.done()
    return SwitchNode(cases=tuple(cases), default=nodes(fields, "default"))
