"""The ``workflow`` node: run another workflow by key, and (by default) wait for it.

``input`` (a template) becomes the child's ``$context.data``. With ``wait: true`` the
node's result is the child's output, and the node fails when the child does not
succeed; with ``wait: false`` the result is ``{"execution_id": ...}`` as soon as the
child is durably queued. The child is an execution of its own: cancelling the node,
or its timeout passing, stops the waiting, not the child.

Workflows calling each other in a loop are stopped: each child is started with the
header ``x-hookline-depth`` one more than its parent's, and a node that would start a
child past :data:`MAX_DEPTH` fails. A waiting parent holds one of its workflow's
``concurrency.max`` slots, so a workflow that waits on children of its own kind needs
room for them. On resume after a crash a ``workflow`` node that was mid-run starts its
child again (at least once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import attrs
import trio

from ..definition import Compiled, Fields
from ..errors import NodeError, Rejected
from ..store._records import FINISHED_STATUSES, ExecutionRecord
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

DEPTH_HEADER = "x-hookline-depth"
MAX_DEPTH = 8
WORKFLOW_KEY = r"[a-z0-9][a-z0-9_-]*"
# How often a child that is not live in this process is looked up in the store.
POLL_INTERVAL = 0.5


class _Outcome(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def output(self) -> Any: ...
    @property
    def error(self) -> str | None: ...


class _Handle(Protocol):
    async def wait_finished(self) -> _Outcome: ...


class _Admission(Protocol):
    @property
    def execution_id(self) -> str: ...
    @property
    def handle(self) -> _Handle | None: ...


class _Store(Protocol):
    async def get_execution(self, id: str) -> ExecutionRecord | None: ...


class Workflows(Protocol):
    """What the node needs of the engine (``job.services.workflows``)."""

    @property
    def store(self) -> _Store: ...

    async def submit(
        self, key: str, *, data: Any = None, headers: Mapping[str, str] | None = None
    ) -> _Admission: ...

    def handle(self, execution_id: str) -> _Handle | None: ...


def current_depth(variables: Mapping[str, Any]) -> int:
    """How many workflow nodes led to this execution (0 for a webhook's own)."""
    context = variables.get("context") or {}
    headers = context.get("headers") or {} if isinstance(context, Mapping) else {}
    try:
        return max(0, int(headers.get(DEPTH_HEADER, 0)))
    except (TypeError, ValueError):
        return 0


@attrs.frozen
class WorkflowNode:
    """Start workflow ``workflow`` with ``input`` as its data; ``wait`` for its output."""

    workflow: str
    input: Compiled | None = None
    wait: bool = True
    default_timeout: ClassVar[float] = math.inf

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        engine = job.services.workflows
        if engine is None:
            raise NodeError("workflows cannot be started here: the engine lent no runner")
        depth = current_depth(job.variables) + 1
        if depth > MAX_DEPTH:
            raise NodeError(
                f"workflow '{self.workflow}' would run {depth} workflows deep, past the "
                f"limit of {MAX_DEPTH}: do workflows call each other in a loop?"
            )
        data = None if self.input is None else job.render(self.input)
        try:
            admission = await engine.submit(
                self.workflow, data=data, headers={DEPTH_HEADER: str(depth)}
            )
        except Rejected as exc:
            raise NodeError(f"could not start workflow '{self.workflow}': {exc}") from None
        child = admission.execution_id
        job.log(f"started execution {child} of workflow '{self.workflow}'")
        if not self.wait:
            return NodeResult(output={"execution_id": child})
        status, output, error = await _wait(engine, admission)
        if status != "succeeded":
            raise NodeError(f"workflow '{self.workflow}' (execution {child}) {status}: {error}")
        return NodeResult(output=output)


async def _wait(engine: Workflows, admission: _Admission) -> tuple[str, Any, str | None]:
    handle = admission.handle or engine.handle(admission.execution_id)
    if handle is not None:
        outcome = await handle.wait_finished()
        return outcome.status, outcome.output, outcome.error
    # Not live here (an earlier delivery's execution, replayed): watch its record.
    while True:
        record = await engine.store.get_execution(admission.execution_id)
        if record is None:
            raise NodeError(f"execution {admission.execution_id} is not in the store")
        if record.status in FINISHED_STATUSES:
            return record.status, record.output, record.error
        await trio.sleep(POLL_INTERVAL)


@register("workflow")
def parse(fields: Fields, nodes: NodeListParser) -> WorkflowNode:
    return WorkflowNode(
        workflow=fields.string(
            "workflow", pattern=WORKFLOW_KEY, expected=f"a workflow key matching {WORKFLOW_KEY}"
        ),
        input=fields.template("input", None),
        wait=fields.boolean("wait", default=True),
    )
