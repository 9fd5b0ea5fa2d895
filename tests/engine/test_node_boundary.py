"""The node boundary holds from outside: a node's bug, wrong return value or ignored
cancel never strands another execution or breaks ``concurrency.max`` (issue 12's
embedding defects 2, 5 and 7), through the public API."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import hookline
from hookline import open_engine
from hookline.definition import Fields
from hookline.engine._execution import INLINE_BUDGET, Execution
from hookline.engine._workflow_runner import WorkflowRunner
from hookline.nodes._base import Job, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


@attrs.frozen
class WrongReturn:
    """A built-in-style node type whose ``run`` returns a bare dict or None."""

    value: Any = None
    inline: bool = False

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> Any:
        await trio.lowlevel.checkpoint()
        return self.value


@register("test_wrong_return")
def _parse(fields: Fields, nodes: NodeListParser) -> WrongReturn:
    return WrongReturn(value=fields.value("value", None))


def workflow(text: str, **options: Any) -> hookline.Workflow:
    return hookline.load_workflow_text(textwrap.dedent(text), source="test.yaml", **options)


@pytest.mark.parametrize("value", [None, {"a": 1}])
async def test_a_node_returning_something_else_than_a_result_fails_its_job(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory, value: Any
) -> None:
    wf = workflow(
        f"""
        key: wrong
        concurrency: {{max: 2}}
        nodes:
          - {{key: odd, type: test_wrong_return, value: {value if value is not None else "null"}}}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        outcomes = [await engine.run("wrong") for _ in range(3)]
        stats = (
            engine.workflow_statistics("wrong") if hasattr(engine, "workflow_statistics") else None
        )
        jobs = await store.list_jobs(outcomes[0].execution_id)
    expected = f"the node returned {type(value).__name__}, not a NodeResult"
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert outcomes[0].error == f"node 'odd' failed: {expected}"
    assert [(j.status, j.error) for j in jobs] == [("failed", expected)]
    if stats is not None:
        assert stats.running == 0


async def test_a_crash_while_running_one_execution_fails_it_alone(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Execution._carry_out

    async def carry_out(self: Execution, commands: Any) -> None:
        if self.handle.delivery.data == {"boom": True}:
            raise RuntimeError("a bug in the driver")
        await original(self, commands)

    monkeypatch.setattr(Execution, "_carry_out", carry_out)
    wf = workflow(
        """
        key: shared
        concurrency: {max: 4}
        nodes:
          - {key: nap, type: sleep, duration: 1s, output: "{{$context.data.n}}"}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        before = [await engine.submit("shared", data={"n": n}) for n in range(3)]
        crashed = await engine.run("shared", data={"boom": True})
        after = await engine.run("shared", data={"n": 9})
        outcomes = []
        for admission in before:
            assert admission.handle is not None
            outcomes.append(await admission.handle.wait_finished())
        record = await store.get_execution(crashed.execution_id)
        stats = engine.statistics().workflows[0]
    assert (crashed.status, crashed.error) == (
        "failed",
        "internal error: RuntimeError: a bug in the driver",
    )
    assert record is not None
    assert record.status == "failed"
    assert [(o.status, o.output) for o in outcomes] == [("succeeded", n) for n in range(3)]
    assert (after.status, after.output) == ("succeeded", 9)
    assert stats.running == 0


async def test_a_runner_that_crashes_runs_what_it_held_again_at_its_restart(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = WorkflowRunner._hand_over
    crashes = [0]

    def hand_over(self: WorkflowRunner, *args: Any) -> None:
        if crashes[0] == 0:
            crashes[0] += 1
            raise RuntimeError("a bug in the runner")
        original(self, *args)

    monkeypatch.setattr(WorkflowRunner, "_hand_over", hand_over)
    wf = workflow(
        """
        key: held
        concurrency: {max: 4}
        nodes:
          - {key: nap, type: delay, duration: "{{$context.data.n}}s"}
          - {key: out, type: set, values: {n: "{{$context.data.n}}"}}
        """
    )
    async with open_engine([wf], store=make_store()) as engine:
        admissions = [await engine.submit("held", data={"n": n}) for n in (1, 5, 6, 7)]
        with trio.fail_after(60):
            outcomes = []
            for admission in admissions:
                assert admission.handle is not None
                outcomes.append(await admission.handle.wait_finished())
        stats = engine.statistics().workflows[0]
    assert crashes[0] == 1
    assert [(o.status, o.output) for o in outcomes] == [
        ("succeeded", {"n": n}) for n in (1, 5, 6, 7)
    ]
    assert stats.supervisor.restarts == 1
    assert stats.running == 0


async def test_a_node_ignoring_its_cancel_keeps_its_slot_until_it_really_ends(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    running = [0]
    peak = [0]

    async def stubborn(call: hookline.NodeCall) -> object:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            with trio.CancelScope(shield=True):  # ignores its cancel for 1 s
                await trio.sleep(1)
        finally:
            running[0] -= 1
        return "done"

    wf = workflow(
        """
        key: stubborn
        concurrency: {max: 1}
        nodes:
          - {key: work, type: stubborn}
        """,
        nodes={"stubborn": stubborn},
    )
    store = make_store()
    async with open_engine([wf], store=store, nodes={"stubborn": stubborn}) as engine:
        first = await engine.submit("stubborn")
        await trio.sleep(0.1)
        assert await engine.cancel(first.execution_id)
        second = await engine.run("stubborn")
        assert first.handle is not None
        cancelled = await first.handle.wait_finished()
        record = await store.get_execution(first.execution_id)
        jobs = await store.list_jobs(first.execution_id)
    assert (cancelled.status, cancelled.error) == ("cancelled", "cancelled on request")
    assert record is not None
    assert record.status == "cancelled"
    assert second.status == "succeeded"
    assert peak[0] == 1  # `max: 1` held: the second body started after the first ended
    assert [(j.status, j.error) for j in jobs] == [("cancelled", "cancelled")]


async def test_a_long_loop_of_quick_nodes_leaves_room_for_other_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = workflow(
        """
        key: busy
        nodes:
          - key: each
            type: loop
            items: 2000
            body: [{key: step, type: set, values: {i: "{{$scopes.each.index}}"}}]
        """
    )
    turns = [0]
    done = [False]

    async def other_task() -> None:
        while not done[0]:
            turns[0] += 1
            await trio.lowlevel.checkpoint()

    async with open_engine([wf]) as engine, trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        before = turns[0]
        outcome = await engine.run("busy")
        done[0] = True
    assert outcome.status == "succeeded"
    # 2,000 quick nodes: the driver yields at least once per INLINE_BUDGET of them.
    assert turns[0] - before >= 2000 // INLINE_BUDGET


async def test_a_node_that_raises_fails_its_job_which_keeps_the_traceback(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async def buggy(call: hookline.NodeCall) -> object:
        return {"x": 1}["missing"]

    wf = workflow(
        """
        key: buggy
        nodes:
          - {key: bug, type: buggy}
        """,
        nodes={"buggy": buggy},
    )
    store = make_store()
    async with open_engine([wf], store=store, nodes={"buggy": buggy}) as engine:
        outcome = await engine.run("buggy")
        (job,) = await store.list_jobs(outcome.execution_id)
    assert outcome.error == "node 'bug' failed: KeyError: 'missing'"
    assert (job.status, job.error) == ("failed", "KeyError: 'missing'")
    assert job.log[-1].startswith("Traceback (most recent call last):")
    assert 'return {"x": 1}["missing"]' in job.log[-1]
