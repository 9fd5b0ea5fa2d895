"""A sync execution of quick or pure nodes only, run whole before it is accepted.

A sync workflow whose every node is inline (``set``, ``condition``, ``switch``,
``json_query``, ``end``, ``response``, and loops or parallel nodes of those) or pure
(``code``: it awaits its script, but has no effect outside the execution) needs no
queue and no writes while it runs. Its admission runs it through the same
:class:`~._core.ExecutionCore` as any execution, in the sender's own task (a pure node
is awaited there, under its own timeout and the workflow's), then commits the delivery,
the finished execution, its jobs, its idempotency claim and its answer in one
transaction, and only then answers: a crash before that commit acknowledged nothing
(the sender retries), and after it everything is stored. Nothing runs twice with an
effect: nodes of these types have none outside the execution. A pure node inside a
``parallel`` node is not run this way (its branches would run one after the other).

While a run awaits, it holds one of the workflow's ``concurrency.max`` slots (taken from
its runner), and it is not in the store yet: it cannot be listed or cancelled until it
ends, which a pure node's own timeout bounds.

An execution that would run more than :data:`~._execution.INLINE_BUDGET` nodes is not
run here (it would hold the event loop too long): it is accepted and queued as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from ..definition import JSON
from ..nodes._base import NodeServices, NodeSpec
from ..nodes._loop import LoopNode
from ..nodes._parallel import ParallelNode
from ..store._records import Answer, ExecutionStatus, JobRecord
from ._answers import ExecutionOutcome, finished_answer
from ._core import ExecutionCore, Finish, RunJob, SaveRecord, SendAnswer
from ._definition import Workflow
from ._execution import INLINE_BUDGET, run_inline_job
from ._node_actor import NodeActor


@attrs.frozen
class InlineRun:
    """An execution run whole: its outcome, the answer its sender gets, its jobs and
    when it started and ended (wall clock)."""

    status: ExecutionStatus
    output: JSON
    error: str | None
    answer: Answer
    jobs: tuple[JobRecord, ...]
    started_at: float
    finished_at: float

    def outcome(self, execution_id: str, workflow: str) -> ExecutionOutcome:
        return ExecutionOutcome(execution_id, workflow, self.status, self.output, self.error)

    def count(self, actors: Mapping[str, NodeActor]) -> None:
        """Count its jobs in their actors' statistics (loops and parallel nodes have
        no job of their own to count)."""
        for job in self.jobs:
            actor = actors[job.node]
            if actor.inline:
                actor.count_inline(succeeded=job.status == "succeeded")


def all_inline(workflow: Workflow) -> bool:
    """Whether every node of ``workflow`` runs inline (loops and parallel nodes are
    decided by the core: they count when what they hold is inline)."""
    return all(
        getattr(node.config, "inline", False) or isinstance(node.config, LoopNode | ParallelNode)
        for node in workflow.walk()
    )


def runs_inline(workflow: Workflow) -> bool:
    """Whether ``workflow`` is sync and every node of it runs inline or is pure (and no
    pure node is in a ``parallel`` node)."""
    return workflow.trigger.mode == "sync" and _runnable(workflow.nodes, parallel=False)


def _runnable(nodes: Sequence[NodeSpec], *, parallel: bool) -> bool:
    for node in nodes:
        config = node.config
        if not isinstance(config, LoopNode | ParallelNode):
            pure = getattr(config, "pure", False) and not parallel
            if not (getattr(config, "inline", False) or pure):
                return False
        inside = parallel or isinstance(config, ParallelNode)
        if not all(_runnable(branch, parallel=inside) for branch in config.branches()):
            return False
    return True


async def run_inline(
    workflow: Workflow,
    execution_id: str,
    roots: Mapping[str, Any],
    actors: Mapping[str, NodeActor],
    services: NodeServices,
) -> InlineRun | None:
    """Run the execution to its end now; None when it would take more than the
    inline budget (then nothing of it is kept)."""
    clock = services.clock
    core = ExecutionCore(
        execution_id,
        workflow.nodes,
        {
            "context": roots["context"],
            "execution": {"id": execution_id},
            "workflow": roots["workflow"],
            "env": services.env,
        },
        timeout=workflow.timeout,
        services=services,
    )
    started_at = clock()
    commands = core.start(now=trio.current_time(), wall=started_at)
    jobs: list[JobRecord] = []
    answer: Answer | None = None
    ran = 0
    index = 0
    while index < len(commands):
        command = commands[index]
        index += 1
        if isinstance(command, RunJob):
            ran += 1
            if ran > INLINE_BUDGET:
                return None
            job = command.job
            actor = actors[job.node.key]
            if actor.inline:
                # Counted once it is kept: an execution found to be a duplicate is not.
                commands += run_inline_job(core, actor, job, clock, count=False)
                continue
            # A pure node (code): awaited here, under its own timeout and the workflow's.
            deadline = core.next_deadline()
            status, result, error = await actor.run_job(job, deadline=deadline)
            now = trio.current_time()
            if status == "cancelled" and now >= deadline:
                commands += core.tick(now=now, wall=clock())
            else:
                commands += core.job_finished(job, status, result, error, now=now, wall=clock())
        elif isinstance(command, SaveRecord):
            jobs.append(command.record)
        elif isinstance(command, SendAnswer):
            answer = command.answer
    end = core.finished
    assert isinstance(end, Finish)
    outcome = ExecutionOutcome(execution_id, workflow.key, end.status, end.output, end.error)
    return InlineRun(
        status=end.status,
        output=end.output,
        error=end.error,
        answer=answer if answer is not None else finished_answer(outcome),
        jobs=tuple(jobs),
        started_at=started_at,
        finished_at=clock(),
    )
