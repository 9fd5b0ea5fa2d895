"""The ``parallel`` node: run node lists (branches) at once, in mode all, any or race.

- ``all``: wait for every branch; the result is the list of each branch's last result;
  the first branch to fail fails the node and the others are cancelled.
- ``any``: the first branch to succeed wins (its last result is the node's), the
  others are cancelled; the node fails only if every branch fails.
- ``race``: the first branch to finish wins, success or failure; the others are
  cancelled.

Branches run through the same execution: their nodes' results are visible after the
node (``$nodes.<key>``; node keys are unique in a workflow, so branches never clash).
An ``end`` node in a branch ends the whole execution, in every mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

import attrs

from ..definition import Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

Mode = Literal["all", "any", "race"]
MODES: tuple[Mode, ...] = ("all", "any", "race")


@attrs.frozen
class ParallelNode:
    """Run ``lanes`` (the ``branches`` field) at once, as ``mode`` says."""

    lanes: tuple[tuple[NodeSpec, ...], ...]
    mode: Mode = "all"
    default_timeout: ClassVar[float] = math.inf

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return self.lanes

    async def run(self, job: Job) -> NodeResult:
        # Branches are decided by the execution core (hookline.engine._core), which
        # never calls this: the type is structural.
        raise NodeError("a parallel node runs only inside an execution")


@register("parallel")
def parse(fields: Fields, nodes: NodeListParser) -> ParallelNode:
    raw = fields.sequence("branches", non_empty=True)
    lanes = tuple(nodes.parse(fields, f"branches[{index}]", item) for index, item in enumerate(raw))
    mode = fields.choice("mode", MODES, "all")
    return ParallelNode(
        lanes=lanes, mode="any" if mode == "any" else "race" if mode == "race" else "all"
    )
