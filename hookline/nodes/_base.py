"""What a node type is: its parsed config, the job it runs, and the result it returns.

A node type is a frozen attrs class (its config, validated at load time) with an async
``run(job)`` method. The execution hands it a :class:`Job` to render templates, write
log lines and save checkpoints; it returns a :class:`NodeResult`. Raising
:class:`hookline.errors.NodeError` (or any exception) fails the job; it never crashes
the actor that runs it. Loops and parallel nodes are structural: the execution core
(:mod:`hookline.engine._core`) runs their node lists itself.

A config class may also declare, as class attributes or methods (all optional):

- ``inline = True``: ``run`` never awaits (it computes from the job's variables), so
  the execution runs it synchronously, with no task of its own (``set``,
  ``condition``, ``switch``, ``json_query``, ``end``, ``response``);
- ``pure = True``: ``run`` awaits, but has no effect outside its execution (``code``):
  a sync workflow of inline and pure nodes runs whole at admission, in the sender's
  task, before anything is stored;
- ``parks = True``: ``run`` never awaits either, and may return a result with
  ``suspend``: the execution then parks, holding no task, until the engine ends the
  wait (``wait``);

- ``replay(output) -> NodeResult``: what a job that succeeded before a restart yields
  when its execution resumes (default ``NodeResult(output)``); branching nodes return
  the branch their recorded output names;
- ``handles_retry = True``: the type reads its own ``retry`` field (``http``), so the
  common per-node retry is not parsed for it;
- ``handles_concurrency = True``: the type reads its own ``concurrency`` field
  (``loop``), so the node actor's limit is not parsed for it;
- ``default_timeout``: the ``timeout`` used when the node sets none (30 s otherwise;
  ``math.inf`` for nodes that run others or wait, bounded by the workflow's timeout).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from ..definition import JSON
from ..store._records import Answer, WaitRecord

if TYPE_CHECKING:
    # The node modules that use each service define what they need of it.
    import httpx

    from ..store._collection_service import CollectionService
    from ._email import SmtpConfig
    from ._http import SharedHttpClient
    from ._script_pool import ScriptPool
    from ._workflow import Workflows


@attrs.frozen
class End:
    """Stop the execution now with this status and output (the ``end`` node)."""

    status: Literal["succeeded", "failed"]
    output: JSON = None


class ExecutionEnded(Exception):
    """An ``end`` node ran inside nested nodes: the whole execution stops with ``end``.
    (Kept for node types driven outside an execution, such as test doubles; the
    execution core handles ``end`` itself.)"""

    def __init__(self, end: End) -> None:
        super().__init__(f"the execution ended ({end.status}) inside this node")
        self.end = end


@attrs.frozen
class NodeResult:
    """What a job produced.

    ``output`` becomes ``$nodes.<key>``. ``branch`` lists the nodes the execution runs
    next, in place (``condition``, ``switch``). ``end`` stops the execution. ``answer``
    answers a sync webhook now while the workflow goes on (``response``). ``suspend``
    (a ``parks`` type only): the job goes on waiting for an event, its ``output`` saved
    as its checkpoint; the engine records its end later.
    """

    output: JSON = None
    branch: tuple[NodeSpec, ...] = ()
    end: End | None = None
    answer: Answer | None = None
    suspend: Suspend | None = None


@attrs.frozen
class Suspend:
    """What a parked job waits for: an event of workflow ``event`` correlating on
    ``match``, until ``until`` (wall time)."""

    event: str
    match: str
    until: float


def _wall_clock() -> float:
    return time.time()


@attrs.frozen
class NodeServices:
    """What the engine lends its nodes: shared clients and settings.

    One instance per engine. Fields are filled by the engine at start; a field left
    None means the service is not configured (a node needing it fails its job with a
    clear error).
    """

    # The one client of every http node (connection limits hold across executions),
    # made on first use; tests may pass an httpx.AsyncClient.
    http: SharedHttpClient | httpx.AsyncClient | None = None
    http_allow_hosts: tuple[str, ...] = ()  # private targets the http node may reach
    smtp: SmtpConfig | None = None  # the server's ``smtp:`` section
    collections: CollectionService | None = None  # collection records in the store
    workflows: Workflows | None = None  # runs other workflows (the engine)
    # The worker processes of code nodes (the engine's); None: a pool per trio run.
    scripts: ScriptPool | None = None
    events: EventWaits | None = None  # where parked executions wait (the engine's)
    env: Mapping[str, str] = attrs.field(factory=dict)
    # The wall clock (unix seconds) of durable timers (``delay``); tests pass one that
    # follows trio's MockClock. The default looks time.time up at each call.
    clock: Callable[[], float] = attrs.field(default=_wall_clock)


class EventWaits(Protocol):
    """The engine's event board: where executions parked on ``wait`` nodes are kept
    until an event, a timeout or an operator ends their wait. Their drivers register
    them; no node calls it."""

    def parked(self, waits: Sequence[WaitRecord], handle: Any) -> None:
        """The execution of ``handle`` committed ``waits`` and parked."""
        ...


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
    def scope(self) -> str:
        """Which run of the node this is inside loops: ``""`` outside any loop,
        ``each[3]`` in iteration 3 of loop ``each``, ``each[3]/inner[0]`` nested.
        A job is known by (execution, node, scope, attempt)."""
        ...

    @property
    def checkpointed(self) -> Any:
        """What an earlier, unfinished attempt of this node (same scope) saved with
        :meth:`checkpoint`, for instance before a restart; None if nothing was."""
        ...

    async def checkpoint(self, state: Any) -> None:
        """Commit this job's record as ``running`` with ``state`` as its output, and
        return once it is durable. A later attempt reads it as :attr:`checkpointed`."""
        ...

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
    """A compiled template value (see :mod:`hookline.definition._templates`)."""

    def render(self, roots: Mapping[str, Any]) -> Any: ...


class NodeConfig(Protocol):
    """A node type's validated configuration, able to run a job."""

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        """Nested node lists (``then``, ``else``, ``body`` ...), for walking the tree."""
        ...

    async def run(self, job: Job) -> NodeResult: ...


@attrs.frozen
class RetryPolicy:
    """The common ``retry`` field: run a job again when it ends in a status of
    ``retry_on``, up to ``attempts`` runs in all, waiting ``backoff`` doubled after
    each attempt and capped at ``max_backoff``; with ``jitter`` a random part of
    that wait (full jitter), so that many failing executions do not retry in step."""

    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    jitter: bool = True
    retry_on: frozenset[str] = frozenset({"failed", "timed_out"})

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        if not self.jitter:
            return ceiling
        return random.uniform(0, ceiling) if rng is None else rng.uniform(0, ceiling)


@attrs.frozen
class NodeSpec:
    """One node of a workflow: the fields every node has, and its type's config."""

    key: str
    type: str
    config: NodeConfig
    timeout: float = 30.0
    concurrency: int | None = None
    title: str | None = None
    retry: RetryPolicy | None = None

    def walk(self) -> Sequence[NodeSpec]:
        """This node and every node nested under it, depth first."""
        found: list[NodeSpec] = [self]
        for branch in self.config.branches():
            for child in branch:
                found.extend(child.walk())
        return found
