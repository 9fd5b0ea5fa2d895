"""Running a definition as a test: outside nodes answered, collection writes captured.

``hookline test`` and the UI's test runs load a workflow with some node types
*answered*: a node of such a type does not run (no HTTP request, no email, no store
write); it yields what a recording or a mocks file says it yielded, and a collection
write node also notes the write it would have made (its fields rendered). Everything
else runs as in production, on the engine's own clock, which a test makes virtual.

The node types are replaced at load time (:func:`answered_types`), so the loaded
:class:`~._definition.Workflow` is an ordinary one: the engine runs it through its
public entry points (:meth:`~._engine.Engine.accept`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import trio
import trio.testing

from ..definition import JSON, Compiled, Fields
from ..errors import NodeError
from ..nodes._base import Job, NodeConfig, NodeResult, NodeSpec
from ..nodes._call import NodeFunction, custom_node_types
from ..nodes._registry import NodeListParser, NodeParser, NodeTypes
from ..store._records import Answer
from ._answers import ExecutionOutcome, finished_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._engine import open_engine
from ._loader import _load_text

__all__ = [
    "CODE_TYPES",
    "COLLECTION_READS",
    "COLLECTION_WRITES",
    "OUTSIDE_TYPES",
    "AnsweredNode",
    "Recorded",
    "Recording",
    "TestRunResult",
    "answered_types",
    "context_delivery",
    "load_for_test",
    "run_delivery",
]

OUTSIDE_TYPES = frozenset({"http", "email", "chat", "sms", "workflow"})
"""Node types that reach outside the workflow: answered unless a run asks for them live."""
CODE_TYPES = frozenset({"code"})
"""Run live by default (they compute from the execution's variables), answered if asked."""
COLLECTION_WRITES = frozenset({"create", "update", "delete", "upsert"})
COLLECTION_READS = frozenset({"query"})
# Their outputs depend on the store's state when they ran: answered from the
# recording, and a write's rendered fields are kept to compare.


@attrs.frozen
class Recorded:
    """What an answered node yields: an output, or an error (the job fails with it)."""

    status: str = "succeeded"
    output: JSON = None
    error: str | None = None


class Recording:
    """The answers of one test run: ``mocks`` by node key first, then ``jobs`` by
    (node key, loop scope). Every answered job leaves a line in ``calls`` and every
    collection write its rendered fields in ``writes``, in the order they ran."""

    def __init__(
        self,
        jobs: Mapping[tuple[str, str], Recorded] | None = None,
        mocks: Mapping[str, Recorded] | None = None,
        *,
        live: frozenset[str] = frozenset(),
    ) -> None:
        self.jobs = dict(jobs or {})
        self.mocks = dict(mocks or {})
        self.live = live
        self.calls: list[dict[str, Any]] = []
        self.writes: list[dict[str, Any]] = []
        self._holds = 0
        self._held_threshold = 0.0

    async def run_live(self, config: NodeConfig, job: Job) -> NodeResult:
        """Run ``config`` for real. Under an autojumping ``MockClock`` the clock holds
        still meanwhile: a node working in a thread (``code``) looks idle to trio, which
        would otherwise jump past its timeout."""
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, trio.testing.MockClock):
            return await config.run(job)
        if self._holds == 0:
            self._held_threshold = clock.autojump_threshold
            clock.autojump_threshold = math.inf
        self._holds += 1
        try:
            return await config.run(job)
        finally:
            self._holds -= 1
            if self._holds == 0:
                clock.autojump_threshold = self._held_threshold

    def answer(self, node: str, scope: str) -> tuple[Recorded | None, str]:
        if node in self.mocks:
            return self.mocks[node], "mocks"
        found = self.jobs.get((node, scope))
        return found, "recording" if found is not None else "none"


@attrs.frozen
class AnsweredNode:
    """A node of an answered type: yields its recorded answer instead of running."""

    type: str
    original: NodeConfig
    recording: Recording

    inline = False

    @property
    def default_timeout(self) -> float:
        return float(getattr(self.original, "default_timeout", 30.0))

    @property
    def handles_retry(self) -> bool:
        return bool(getattr(self.original, "handles_retry", False))

    @property
    def handles_concurrency(self) -> bool:
        return bool(getattr(self.original, "handles_concurrency", False))

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return self.original.branches()

    async def run(self, job: Job) -> NodeResult:
        node, scope = job.node.key, job.scope
        if self.type in self.recording.live:
            return await self.recording.run_live(self.original, job)
        found, source = self.recording.answer(node, scope)
        call: dict[str, Any] = {"node": node, "scope": scope, "type": self.type, "from": source}
        self.recording.calls.append(call)
        if self.type in COLLECTION_WRITES:
            write = {"node": node, "type": self.type, **rendered_fields(self.original, job)}
            if scope:
                write["scope"] = scope
            self.recording.writes.append(write)
        await trio.lowlevel.checkpoint()
        where = f" (scope {scope})" if scope else ""
        if found is None:
            raise NodeError(
                f"no recorded answer for {self.type} node '{node}'{where}: the recording "
                "has no job of this node; answer it in a mocks file"
            )
        if found.status != "succeeded":
            raise NodeError(found.error or f"the recorded job ended {found.status}")
        return NodeResult(output=found.output)


def rendered_fields(config: object, job: Job) -> dict[str, Any]:
    """A node config's fields with their templates rendered for ``job``: what a write
    would have written, as JSON values."""
    value = _rendered(config, job)
    return value if isinstance(value, dict) else {"fields": value}


def _rendered(value: object, job: Job) -> Any:
    if isinstance(value, Compiled):
        return job.render(value)
    kind: Any = type(value)
    if attrs.has(kind):
        return {
            field.name: _rendered(getattr(value, field.name), job)
            for field in attrs.fields(kind)
            if not field.name.startswith("_")
        }
    if isinstance(value, tuple | list):
        return [_rendered(item, job) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _rendered(item, job) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def answered_types(
    recording: Recording,
    *,
    answer: Iterable[str] = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS,
    nodes: Mapping[str, NodeFunction] | None = None,
) -> NodeTypes:
    """The node types of a test load: those named in ``answer`` answered by
    ``recording``, the others (``nodes``' custom types too) as they are."""
    types = custom_node_types(nodes)
    answered = {name: _answering(name, types[name], recording) for name in answer if name in types}
    return {**dict(types.items()), **answered}


def _answering(name: str, parser: NodeParser, recording: Recording) -> NodeParser:
    def parse(fields: Fields, nodes: NodeListParser) -> AnsweredNode:
        return AnsweredNode(type=name, original=parser(fields, nodes), recording=recording)

    return parse


def load_for_test(
    text: str,
    recording: Recording,
    *,
    source: str,
    env: Mapping[str, str] | None = None,
    answer: Iterable[str] = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS,
    nodes: Mapping[str, NodeFunction] | None = None,
) -> Workflow:
    """Load definition ``text`` with the types of ``answer`` answered by ``recording``.
    Raises :class:`~hookline.errors.DefinitionError` like any load."""
    types = answered_types(recording, answer=answer, nodes=nodes)
    return _load_text(text, source=source, env=env, types=types)


def context_delivery(workflow: str, context: Mapping[str, Any], received_at: float) -> Delivery:
    """The delivery that gives ``context`` (an execution's stored ``$context``) again."""
    known = {
        "data",
        "headers",
        "query",
        "params",
        "method",
        "path",
        "remote_addr",
        "raw",
        "files",
        "delivery_id",
        "received_at",
        "jwt",
    }
    raw = context.get("raw")
    text = raw if isinstance(raw, str) else ""
    jwt = context.get("jwt")
    return Delivery(
        id=str(context.get("delivery_id") or "test-delivery"),
        workflow=workflow,
        received_at=received_at,
        method=str(context.get("method") or "POST"),
        path=str(context.get("path") or ""),
        headers={str(k).lower(): str(v) for k, v in _mapping(context.get("headers")).items()},
        query=dict(_mapping(context.get("query"))),
        params={str(k): str(v) for k, v in _mapping(context.get("params")).items()},
        body=text.encode(),
        data=context.get("data"),
        text=text,
        files={str(k): dict(_mapping(v)) for k, v in _mapping(context.get("files")).items()},
        remote_addr=str(context.get("remote_addr") or "test"),
        extra={k: v for k, v in context.items() if k not in known},
        jwt=dict(jwt) if isinstance(jwt, Mapping) else None,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@attrs.frozen
class TestRunResult:
    """How a test run ended: the sender's answer, the execution's end, what the
    answered nodes were asked (``calls``) and the collection writes they would make."""

    __test__ = False  # not a pytest class

    execution_id: str
    answer: Answer | None
    status: str
    output: JSON
    error: str | None
    calls: tuple[dict[str, Any], ...]
    writes: tuple[dict[str, Any], ...]


async def run_delivery(
    workflow: Workflow,
    recording: Recording,
    delivery: Delivery,
    *,
    env: Mapping[str, str] | None = None,
    nodes: Mapping[str, NodeFunction] | None = None,
    limit: float | None = None,
) -> TestRunResult:
    """Run ``delivery`` through ``workflow`` (loaded by :func:`load_for_test` with
    ``recording``) in an engine of its own with an in-memory store, and wait for it to
    end. The engine's wall clock starts at the delivery's ``received_at`` and follows
    trio's clock: under ``MockClock(autojump_threshold=0)`` delays take no time.
    ``limit`` (default: the workflow's timeout and a minute) bounds the wait in trio's
    seconds; past it the execution is reported ``timed_out``."""
    started = trio.current_time()

    def clock() -> float:
        return delivery.received_at + (trio.current_time() - started)

    bound = limit if limit is not None else workflow.timeout + 60.0
    if not math.isfinite(bound):
        bound = 3600.0
    async with open_engine([workflow], env=env, nodes=nodes, clock=clock) as engine:
        admission = await engine.accept(delivery)
        handle = admission.handle
        outcome: ExecutionOutcome | None = None
        if handle is not None:
            with trio.move_on_after(bound):
                outcome = await handle.wait_finished()
            if outcome is None:
                handle.cancel()
                outcome = ExecutionOutcome(
                    admission.execution_id, workflow.key, "timed_out", None, "test run limit"
                )
        answer = admission.answer
        if answer is None and handle is not None:
            answer = handle.answer
        if answer is None and outcome is not None and workflow.trigger.mode == "sync":
            answer = finished_answer(outcome)
    assert outcome is not None or handle is None
    return TestRunResult(
        execution_id=admission.execution_id,
        answer=answer,
        status=outcome.status if outcome is not None else "succeeded",
        output=outcome.output if outcome is not None else None,
        error=outcome.error if outcome is not None else None,
        calls=tuple(recording.calls),
        writes=tuple(recording.writes),
    )
