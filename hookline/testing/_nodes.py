"""Node types and a fake job for tests: the engine's and embedding teams' own.

:func:`register_test_nodes` adds two node types to the registry, for tests only (a
server never registers them):

- ``sleep``: ``{type: sleep, duration: 10s, output: <template>}`` sleeps on trio's clock
  (so a ``MockClock`` skips it) then yields ``output`` rendered, or ``{"slept": seconds}``;
- ``fail``: ``{type: fail, message: "boom {{$context.data.id}}"}`` raises
  :class:`~hookline.errors.NodeError` with the rendered message; with
  ``exception: RuntimeError`` it raises that instead (a node's bug, still a failed job).

:class:`FakeJob` implements the :class:`~hookline.nodes._base.Job` protocol over fixed
variables, for calling a node config's ``run`` without an engine (it runs no nested
nodes; :meth:`FakeJob.checkpoint` only collects what is saved in ``checkpoints``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..definition import Compiled, Fields
from ..errors import NodeError
from ..nodes._base import Job, NodeResult, NodeServices, NodeSpec, Renderable
from ..nodes._registry import NodeListParser, register

__all__ = ["FailNode", "FakeJob", "SleepNode", "register_test_nodes"]


@attrs.frozen
class SleepNode:
    """Sleep ``duration`` seconds, then yield ``output`` (or ``{"slept": duration}``)."""

    duration: float
    output: Compiled | None = None

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        await trio.sleep(self.duration)
        if self.output is None:
            return NodeResult(output={"slept": self.duration})
        return NodeResult(output=job.render(self.output))


@attrs.frozen
class FailNode:
    """Raise :class:`~hookline.errors.NodeError` (or ``RuntimeError``) with ``message``."""

    message: Compiled
    exception: str = "NodeError"

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        await trio.lowlevel.checkpoint()
        text = str(job.render(self.message))
        if self.exception == "RuntimeError":
            raise RuntimeError(text)
        raise NodeError(text)


def _parse_sleep(fields: Fields, nodes: NodeListParser) -> SleepNode:
    return SleepNode(
        duration=fields.duration("duration", positive=False),
        output=fields.template("output", None),
    )


def _parse_fail(fields: Fields, nodes: NodeListParser) -> FailNode:
    return FailNode(
        message=fields.compile("message", fields.value("message", "failed on purpose")),
        exception=fields.choice("exception", ("NodeError", "RuntimeError"), "NodeError"),
    )


def register_test_nodes() -> None:
    """Register the ``sleep`` and ``fail`` node types; calling it again does nothing.

    Raises :class:`ValueError` only if another module already registered one of
    those names with a different parser.
    """
    register("sleep")(_parse_sleep)
    register("fail")(_parse_fail)


@attrs.define
class FakeJob:
    """The :class:`~hookline.nodes._base.Job` protocol over fixed ``variables``,
    rendering with the real templates; log lines land in ``lines``. ``spec`` is what
    ``node`` returns (reading ``node`` without one raises :class:`AttributeError`);
    ``services`` is empty unless given."""

    variables: Mapping[str, Any] = attrs.Factory(dict)
    spec: NodeSpec | None = None
    execution_id: str = "ex-1"
    attempt: int = 1
    lines: list[str] = attrs.Factory(list)
    services: NodeServices = attrs.Factory(NodeServices)
    scope: str = ""
    checkpointed: Any = None
    checkpoints: list[Any] = attrs.Factory(list)

    @property
    def node(self) -> NodeSpec:
        if self.spec is None:
            raise AttributeError("this FakeJob was made without a node spec")
        return self.spec

    def render(self, value: Renderable) -> Any:
        return value.render(self.variables)

    def log(self, message: str) -> None:
        self.lines.append(message)

    async def checkpoint(self, state: Any) -> None:
        """Keep ``state`` in ``checkpoints`` (nothing is stored)."""
        await trio.lowlevel.checkpoint()
        self.checkpoints.append(state)

    async def run_nodes(
        self, nodes: Sequence[NodeSpec], *, scope: tuple[str, Mapping[str, Any]] | None = None
    ) -> Any:
        """Raises NodeError: a FakeJob has no execution to run nested nodes in."""
        raise NodeError("a FakeJob cannot run nested nodes; run the workflow in an engine")


if TYPE_CHECKING:
    # Fails type checking the day the Job protocol grows and FakeJob does not.
    _fake_is_a_job: type[Job] = FakeJob
