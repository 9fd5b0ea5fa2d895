"""What a node type is: its parsed config, the job it runs, and the result it returns.

A node type is a frozen attrs class (its config, validated at load time) with an async
``run(job)`` method. The execution hands it a :class:`Job` to render templates, write
log lines and (for loops and parallel branches) run nested nodes; it returns a
:class:`NodeResult`. Raising :class:`hookline.errors.NodeError` (or any exception) fails
the job; it never crashes the actor that runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from ..store._records import Answer


@attrs.frozen
class End:
    """Stop the execution now with this status and output (the ``end`` node)."""

    status: Literal["succeeded", "failed"]
    output: Any = None


@attrs.frozen
class NodeResult:
    """What a job produced.

    ``output`` becomes ``$nodes.<key>``. ``branch`` lists the nodes the execution runs
    next, in place (``condition``, ``switch``). ``end`` stops the execution. ``answer``
    answers a sync webhook now while the workflow goes on (``response``).
    """

    output: Any = None
    branch: tuple[NodeSpec, ...] = ()
    end: End | None = None
    answer: Answer | None = None


@attrs.frozen
class NodeServices:
    """What the engine lends its nodes: shared clients and settings.

    One instance per engine. Fields are filled by the engine at start; a field left
    None means the service is not configured (a node needing it fails its job with a
    clear error).
    """

    http: Any = None  # httpx.AsyncClient shared by every http node (connection limits)
    http_allow_hosts: tuple[str, ...] = ()  # private targets the http node may reach
    smtp: Any = None  # hookline._config.SmtpConfig
    collections: Any = None  # collection records in the store
    workflows: Any = None  # runs other workflows (the workflow node)
    env: Mapping[str, str] = attrs.field(factory=dict)


class Job(Protocol):
    """The running job as a node sees it."""

    @property
    def services(self) -> NodeServices: ...

    @property
    def execution_id(self) -> str: ...

    @property
    def node(self) -> NodeSpec: ...

    @property
    def attempt(self) -> int: ...

    @property
    def variables(self) -> Mapping[str, Any]:
        """The template roots (``context``, ``nodes``, ``scopes``, ``execution`` ...)."""
        ...

    def render(self, value: Renderable) -> Any:
        """Render a compiled template value against the current variables."""
        ...

    def log(self, message: str) -> None:
        """Add a line to the job's log."""
        ...


class Renderable(Protocol):
    """A compiled template value (see :mod:`hookline.engine._templates`)."""

    def render(self, roots: Mapping[str, Any]) -> Any: ...


class NodeConfig(Protocol):
    """A node type's validated configuration, able to run a job."""

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        """Nested node lists (``then``, ``else``, ``body`` ...), for walking the tree."""
        ...

    async def run(self, job: Job) -> NodeResult: ...


@attrs.frozen
class NodeSpec:
    """One node of a workflow: the fields every node has, and its type's config."""

    key: str
    type: str
    config: NodeConfig
    timeout: float = 30.0
    concurrency: int | None = None
    title: str | None = None

    def walk(self) -> Sequence[NodeSpec]:
        """This node and every node nested under it, depth first."""
        found: list[NodeSpec] = [self]
        for branch in self.config.branches():
            for child in branch:
                found.extend(child.walk())
        return found
