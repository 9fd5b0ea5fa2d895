"""The ``set`` node: compute named values from templates; its result is that object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from ..definition import Compiled, Fields
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register


@attrs.frozen
class SetNode:
    """Render each of ``values`` (name, template); the output maps names to results."""

    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver
    values: tuple[tuple[str, Compiled], ...]

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        output: dict[str, Any] = {name: job.render(value) for name, value in self.values}
        return NodeResult(output=output)


@register("set")
def parse(fields: Fields, nodes: NodeListParser) -> SetNode:
    fields.mapping("values")  # present, and a mapping: an empty `set` is a mistake
    return SetNode(values=fields.templates("values"))
