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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import trio

from ..engine._fields import Fields
from ..errors import NodeError
from ._base import ExecutionEnded, Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

Mode = Literal["all", "any", "race"]
MODES: tuple[Mode, ...] = ("all", "any", "race")


async def gather(calls: Sequence[Callable[[], Awaitable[Any]]], *, limit: float) -> list[Any]:
    """Run ``calls``, at most ``limit`` at once, and return their results in order.

    The first to raise cancels the others, and its exception is raised as it is (not
    in a group), so that :class:`ExecutionEnded` and failures keep their meaning.
    """
    results: list[Any] = [None] * len(calls)
    failure: Exception | None = None
    limiter = trio.CapacityLimiter(limit) if limit < math.inf else None

    async with trio.open_nursery() as nursery:

        async def one(index: int) -> None:
            nonlocal failure
            try:
                results[index] = await calls[index]()
            except Exception as exc:  # noqa: BLE001 (re-raised below)
                if failure is None:
                    failure = exc
                nursery.cancel_scope.cancel()
            finally:
                if limiter is not None:
                    limiter.release_on_behalf_of(index)

        for index in range(len(calls)):
            # Taking the slot here, not in the task, starts calls in their order.
            if limiter is not None:
                await limiter.acquire_on_behalf_of(index)
            nursery.start_soon(one, index)
    if failure is not None:
        raise failure
    return results


@attrs.frozen
class ParallelNode:
    """Run ``lanes`` (the ``branches`` field) at once, as ``mode`` says."""

    lanes: tuple[tuple[NodeSpec, ...], ...]
    mode: Mode = "all"
    default_timeout: ClassVar[float] = math.inf

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return self.lanes

    async def run(self, job: Job) -> NodeResult:
        if self.mode == "all":
            calls = [_runner(job, lane) for lane in self.lanes]
            return NodeResult(output=await gather(calls, limit=math.inf))
        return NodeResult(output=await self._first(job))

    async def _first(self, job: Job) -> Any:
        """The first branch to succeed (``any``) or to finish (``race``)."""
        # In the order they finished: (index, result, None) or (index, None, error).
        finished: list[tuple[int, Any, Exception | None]] = []
        ended: list[ExecutionEnded] = []
        async with trio.open_nursery() as nursery:

            async def lane(index: int, nodes: tuple[NodeSpec, ...]) -> None:
                try:
                    finished.append((index, await job.run_nodes(nodes), None))
                except ExecutionEnded as exc:
                    ended.append(exc)
                    nursery.cancel_scope.cancel()
                    return
                except Exception as exc:  # noqa: BLE001 (a branch failing is an outcome)
                    finished.append((index, None, exc))
                    if self.mode == "race" or len(finished) == len(self.lanes):
                        nursery.cancel_scope.cancel()
                    return
                nursery.cancel_scope.cancel()

            for index, nodes in enumerate(self.lanes):
                nursery.start_soon(lane, index, nodes)
        if ended:
            raise ended[0]
        if self.mode == "race":
            index, result, error = finished[0]
            if error is not None:
                raise NodeError(f"branch {index} finished first, and failed: {error}")
            job.log(f"branch {index} finished first")
            return result
        for index, result, error in finished:
            if error is None:
                job.log(f"branch {index} succeeded first")
                return result
        detail = "; ".join(f"branch {index}: {error}" for index, _, error in sorted(finished))
        raise NodeError(f"every branch failed ({detail})")


def _runner(job: Job, nodes: tuple[NodeSpec, ...]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return await job.run_nodes(nodes)

    return run


@register("parallel")
def parse(fields: Fields, nodes: NodeListParser) -> ParallelNode:
    raw = fields.sequence("branches", non_empty=True)
    lanes = tuple(nodes.parse(fields, f"branches[{index}]", item) for index, item in enumerate(raw))
    mode = fields.choice("mode", MODES, "all")
    return ParallelNode(
        lanes=lanes, mode="any" if mode == "any" else "race" if mode == "race" else "all"
    )
