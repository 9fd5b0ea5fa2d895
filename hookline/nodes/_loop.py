"""The ``loop`` node: run ``body`` once per item, in order or a few at once.

``items`` is a template giving a list (each element), a number ``n`` (0 .. n-1) or an
object (its entries, each ``{key, value}``). Inside the body, ``$scopes.<loop key>``
holds ``item``, ``index`` and ``length``. The result is the list of each iteration's
last result (its body's last node), in item order.

``concurrency`` (default 1) is the loop's own: how many iterations run at once (1: one
after the other). It is not the node actor's limit that other node types take from the
same field; a loop has none. The first iteration to fail fails the loop and cancels
the others. The results of the body's nodes stay inside their iteration: after the
loop, read the loop's result. Each iteration's jobs are recorded with the scope
``<loop key>[<index>]``, so a resumed execution skips the iterations that completed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ..definition import Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

# More items than this is a mistake (a number template gone wrong), not a workload.
MAX_ITEMS = 100_000


def loop_items(value: Any) -> list[Any]:
    """The items a rendered ``items`` value stands for. Raises NodeError for others."""
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, bool):
        raise NodeError(f"items: expected a list, a number or an object, got {value!r}")
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        if value < 0:
            raise NodeError(f"items: expected a count of 0 or more, got {value!r}")
        if value > MAX_ITEMS:
            raise NodeError(f"items: at most {MAX_ITEMS} iterations, got {value!r}")
        items = list(range(int(value)))
    elif isinstance(value, Mapping):
        items = [{"key": key, "value": item} for key, item in value.items()]
    elif value is None:
        items = []
    else:
        raise NodeError(f"items: expected a list, a number or an object, got {value!r}")
    if len(items) > MAX_ITEMS:
        raise NodeError(f"items: at most {MAX_ITEMS} iterations, got {len(items)}")
    return items


@attrs.frozen
class LoopNode:
    """Run ``body`` for each of ``items``, ``concurrency`` iterations at once."""

    items: Compiled
    body: tuple[NodeSpec, ...]
    concurrency: int = 1
    handles_concurrency: ClassVar[bool] = True
    default_timeout: ClassVar[float] = math.inf

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return (self.body,)

    async def run(self, job: Job) -> NodeResult:
        # Iterations are decided by the execution core (hookline.engine._core), which
        # never calls this: the type is structural.
        raise NodeError("a loop runs only inside an execution")


@register("loop")
def parse(fields: Fields, nodes: NodeListParser) -> LoopNode:
    return LoopNode(
        items=fields.template("items"),
        body=nodes(fields, "body", required=True),
        concurrency=fields.integer("concurrency", 1, low=1),
    )
