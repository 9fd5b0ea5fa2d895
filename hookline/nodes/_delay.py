"""The ``delay`` node: wait ``duration``, durably.

Before it sleeps, the node commits its job as ``running`` with the due time as output
(``{"until": <unix time>}``). If the process stops meanwhile, the resumed execution
runs the node again, which finds that due time and waits only what is left: a 1-hour
delay survives a restart and fires on time (at once if the time has passed). The wall
clock is ``job.services.clock``. The result is ``{"until": <unix time>}``.

A delay has no node timeout by default (the workflow's ``timeout`` bounds it: give
the workflow one longer than its delays). ``duration`` is a duration (``10m``) or a
template giving one, or a number of seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import trio

from ..definition import Compiled, Fields, parse_duration
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise NodeError(f"duration: expected a duration such as '5s', got {value!r}") from None


@attrs.frozen
class DelayNode:
    """Wait ``duration`` seconds (or what ``template`` renders to) from the first attempt."""

    duration: float = 0.0
    template: Compiled | None = None
    default_timeout: ClassVar[float] = math.inf

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        clock = job.services.clock
        saved = job.checkpointed
        if isinstance(saved, Mapping) and isinstance(saved.get("until"), int | float):
            until = float(saved["until"])
            job.log(f"resumed: due at {until:.3f}")
        else:
            seconds = (
                self.duration if self.template is None else _seconds(job.render(self.template))
            )
            until = clock() + seconds
            await job.checkpoint({"until": until})
        remaining = until - clock()
        if remaining > 0:
            await trio.sleep(remaining)
        return NodeResult(output={"until": until})


@register("delay")
def parse(fields: Fields, nodes: NodeListParser) -> DelayNode:
    raw = fields.value("duration", expected="a duration such as '5s'")
    if isinstance(raw, str) and "{{" in raw:
        return DelayNode(template=fields.template("duration"))
    return DelayNode(duration=fields.duration("duration", positive=False))
