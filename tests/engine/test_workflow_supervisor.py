"""The WorkflowSupervisor: bounded queue, concurrency, crash restarts and escalation."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._drain import DrainRate
from hookline.engine._engine import Engine, open_engine
from hookline.engine._job import RunningJob
from hookline.engine._loader import load_workflow_text
from hookline.engine._node_actor import NodeActor, Outcome
from hookline.errors import QueueFull, RestartIntensityExceeded
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


NARROW = workflow(
    """
    key: narrow
    concurrency: {max: 1, queue: 2}
    nodes:
      - {key: nap, type: sleep, duration: 10s}
    """
)

QUICK = workflow(
    """
    key: quick
    nodes:
      - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
    """
)


async def test_a_full_queue_is_refused_and_nothing_is_stored(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([NARROW], store=store) as engine:
        running = await engine.submit("narrow")
        await trio.sleep(0.1)
        await engine.submit("narrow")
        await engine.submit("narrow")
        await trio.sleep(0.1)  # the runner's turn: it took what it could
        stats = engine.statistics().workflows[0]
        assert (stats.running, stats.queue.depth) == (1, 2)
        with pytest.raises(QueueFull) as refused:
            await engine.submit("narrow", data={"fourth": True})
        executions = await store.list_executions(workflow="narrow")
        rejected = await store.list_deliveries(verdict="rejected")
        assert refused.value.status == 429
        assert refused.value.retry_after is not None
        assert refused.value.retry_after >= 1
        assert len(executions.items) == 3
        assert [(d.status, d.body) for d in rejected.items] == [(429, b'{"fourth":true}')]
        # Once the first one is done, there is room again.
        assert running.handle is not None
        await running.handle.wait_finished()
        await trio.sleep(0.1)
        await engine.submit("narrow")


async def test_executions_run_at_most_max_at_once(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = workflow(
        """
        key: pair
        concurrency: {max: 2, queue: 10}
        nodes:
          - {key: nap, type: sleep, duration: 10s}
        """
    )
    async with open_engine([wf], store=make_store()) as engine:
        start = trio.current_time()
        admissions = [await engine.submit("pair") for _ in range(5)]
        await trio.sleep(1)
        stats = engine.statistics().workflows[0]
        assert (stats.running, stats.queue.depth) == (2, 3)
        ends = []
        for admission in admissions:
            assert admission.handle is not None
            await admission.handle.wait_finished()
            ends.append(trio.current_time() - start)
    assert [round(end) for end in ends] == [10, 10, 20, 20, 30]


def test_drain_rate_estimates_the_wait_for_a_backlog() -> None:
    now = [0.0]
    rate = DrainRate(clock=lambda: now[0])
    assert rate.retry_after(10) == 5.0  # nothing finished yet: a fixed guess
    for _ in range(200):
        now[0] += 0.5
        rate.tick()
    assert rate.rate == pytest.approx(2.0, rel=0.01)
    assert rate.retry_after(9) == 5
    assert rate.retry_after(0) == 1
    assert rate.retry_after(10_000) == 60


def crash_dispatch(monkeypatch: pytest.MonkeyPatch, times: int | None) -> Callable[[], int]:
    """Make running a job of node ``step`` raise in its actor's own code (a bug in the
    actor, not the node) ``times`` times (None: always)."""
    original = NodeActor.run_inline
    crashed = [0]

    def run_inline(self: NodeActor, job: RunningJob, *, count: bool = True) -> Outcome:
        if self.node.key == "step" and (times is None or crashed[0] < times):
            crashed[0] += 1
            raise RuntimeError("bug in dispatch")
        return original(self, job, count=count)

    monkeypatch.setattr(NodeActor, "run_inline", run_inline)
    return lambda: crashed[0]


async def test_a_crashing_node_actor_is_restarted_and_its_execution_fails(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    make_store: StoreFactory,
) -> None:
    crashes = crash_dispatch(monkeypatch, 1)
    store = make_store()
    async with open_engine([QUICK], store=store) as engine:
        failed = await engine.run("quick", data={"n": 1})
        jobs = await store.list_jobs(failed.execution_id)
        after = await engine.run("quick", data={"n": 2})
        stats = engine.statistics()
    assert crashes() == 1
    assert failed.status == "failed"
    assert [(j.node, j.status) for j in jobs] == [("step", "failed")]
    assert jobs[0].error == "the node actor crashed: RuntimeError: bug in dispatch"
    assert (after.status, after.output) == ("succeeded", {"n": 2})
    workflow_stats = stats.workflows[0]
    assert workflow_stats.supervisor.restarts == 1
    assert workflow_stats.nodes[0].restarts == 1
    assert stats.supervisor.restarts == 0  # the workflow supervisor itself held


async def test_a_failing_node_is_not_an_actor_crash(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = workflow(
        """
        key: buggy
        nodes:
          - {key: bug, type: fail, exception: RuntimeError, message: "oops"}
        """
    )
    async with open_engine([wf], store=make_store()) as engine:
        outcomes = [await engine.run("buggy") for _ in range(5)]
        stats = engine.statistics()
    assert {o.status for o in outcomes} == {"failed"}
    assert outcomes[0].error == "node 'bug' failed: RuntimeError: oops"
    node = stats.workflows[0].nodes[0]
    assert (node.completed, node.failed, node.restarts) == (0, 5, 0)
    assert stats.workflows[0].supervisor.restarts == 0


async def test_past_its_intensity_the_workflow_supervisor_is_restarted_by_the_root(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    make_store: StoreFactory,
) -> None:
    crash_dispatch(monkeypatch, 4)  # intensity 3: the 4th crash escalates
    store = make_store()
    async with open_engine([QUICK, NARROW], store=store) as engine:
        bystander = await engine.submit("narrow")  # another workflow: untouched
        outcomes = [await engine.run("quick", data={"n": n}) for n in range(4)]
        after = await engine.run("quick", data={"n": 9})
        stats = engine.statistics()
        assert bystander.handle is not None
        assert (await bystander.handle.wait_finished()).status == "succeeded"
        records = [await store.get_execution(o.execution_id) for o in outcomes]
    assert [o.status for o in outcomes] == ["failed"] * 4
    assert [r.status for r in records if r is not None] == ["failed"] * 4
    assert (after.status, after.output) == ("succeeded", {"n": 9})
    assert stats.supervisor.restarts == 1
    [child] = [c for c in stats.supervisor.children if c.name.startswith("workflow:quick")]
    assert child.restarts == 1
    assert child.running
    assert child.last_error is not None
    assert "RestartIntensityExceeded" in child.last_error


async def test_past_the_roots_intensity_the_engine_crashes_out(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    make_store: StoreFactory,
) -> None:
    # Every dispatch crashes: 4 node crashes escalate to the root, 4 root restarts of
    # the workflow supervisor exceed the root's intensity, and open_engine raises it
    # (as itself, not in an ExceptionGroup).
    crash_dispatch(monkeypatch, None)
    seen: list[Engine] = []
    with pytest.raises(  # noqa: PT012
        RestartIntensityExceeded, match="supervisor 'engine': more than 3"
    ):
        async with open_engine([QUICK], store=make_store()) as engine:
            seen.append(engine)
            while True:
                await engine.run("quick", data={"n": 1})
    assert not seen[0].statistics().accepting
