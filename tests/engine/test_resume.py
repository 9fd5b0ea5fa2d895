"""Resuming an execution: jobs that succeeded are not run again (their outputs and
branches are reused), a job cut off mid-run runs again as its next attempt, loop
iterations that completed are skipped, and a durable delay fires on time across a
restart. Each "process" is a store and node actors over storage shared by both
(:class:`tests.conftest.StoreFactory`)."""

from __future__ import annotations

import collections
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hookline._ids import new_id
from hookline.definition import Fields
from hookline.engine._answers import ExecutionOutcome
from hookline.engine._core import INTERRUPTED
from hookline.engine._definition import Workflow
from hookline.engine._delivery import Delivery
from hookline.engine._engine import open_engine
from hookline.engine._execution import Execution, ExecutionHandle
from hookline.engine._loader import load_workflow_text
from hookline.engine._node_actor import NodeActor
from hookline.nodes._base import Job, NodeResult, NodeServices, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from hookline.store._ops import AcceptDelivery, SaveJob, UpdateExecution
from hookline.store._records import ExecutionRecord, JobRecord
from hookline.store._store import Store
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()

# How many times each (node, scope) really ran, across both "processes".
RUNS: collections.Counter[tuple[str, str]] = collections.Counter()


@attrs.frozen
class CountNode:
    """Counts its runs, waits ``pause`` seconds, yields its attempt and scope."""

    pause: float

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        RUNS[(job.node.key, job.scope)] += 1
        await trio.sleep(self.pause)
        return NodeResult(output={"attempt": job.attempt, "scope": job.scope})


@register("count")
def _parse_count(fields: Fields, nodes: NodeListParser) -> CountNode:
    return CountNode(pause=fields.duration("pause", 0.0, positive=False))


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    RUNS.clear()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


def mock_wall_clock() -> float:
    """Unix time that moves with trio's MockClock."""
    return 1_700_000_000.0 + trio.current_time()


@attrs.define
class Process:
    """One run of the engine's execution layer over storage that outlives it."""

    workflow: Workflow
    store: Store
    actors: dict[str, NodeActor]
    services: NodeServices

    async def start(self, data: Any = None) -> ExecutionHandle:
        """Store a delivery and its queued execution, as the workflow supervisor does."""
        now = time.time()
        delivery = Delivery(id=new_id(), workflow=self.workflow.key, received_at=now, data=data)
        record = ExecutionRecord(
            id=new_id(),
            workflow=self.workflow.key,
            delivery_id=delivery.id,
            status="queued",
            created_at=now,
            context=delivery.stored_context(),
        )
        accepted = delivery.record("accepted", execution_id=record.id)
        await self.store.write(AcceptDelivery(accepted, record))
        return ExecutionHandle(record.id, self.workflow, delivery)

    def execution(self, handle: ExecutionHandle) -> Execution:
        return Execution(handle, self.actors, self.store, services=self.services)

    async def run_until_stopped(self, handle: ExecutionHandle, seconds: float) -> None:
        """Run ``handle`` and stop the process ``seconds`` later, mid-execution."""
        with trio.move_on_after(seconds) as stopped:
            await self.execution(handle).run()
        assert stopped.cancelled_caught, "the execution finished before the stop"

    async def resume(self, handle: ExecutionHandle) -> ExecutionOutcome:
        again = ExecutionHandle(handle.id, handle.workflow, handle.delivery, resumed=True)
        return await self.execution(again).run()

    async def jobs(self, handle: ExecutionHandle) -> list[JobRecord]:
        await self.store.flush()
        return await self.store.list_jobs(handle.id)


@asynccontextmanager
async def process(
    wf: Workflow, make_store: StoreFactory, clock: Callable[[], float] = mock_wall_clock
) -> AsyncIterator[Process]:
    store = make_store()
    actors = {node.key: NodeActor(wf.key, node) for node in wf.walk()}
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        coordinator = store.backend.coordinator
        if coordinator is not None:
            # A store shared by processes (PostgreSQL): an execution is its owner's to
            # write, so take over what the previous run left, as an engine does at start.
            coordinator.adopt([wf.key], coordinator.lease, 100)
        for actor in actors.values():
            await nursery.start(actor.run)
        yield Process(wf, store, actors, NodeServices(clock=clock))
        nursery.cancel_scope.cancel()


BRANCHY = workflow(
    """
    key: branchy
    nodes:
      - {key: first, type: count}
      - key: route
        type: switch
        cases:
          - if: {equal: ["{{$context.data.kind}}", "a"]}
            nodes:
              - key: check
                type: condition
                if: {exists: ["{{$context.data.kind}}"]}
                then: [{key: second, type: count}]
        default: [{key: never, type: count}]
      - {key: slow, type: count, pause: 100s, timeout: 5m}
      - key: last
        type: set
        values: {first: "{{$nodes.first}}", second: "{{$nodes.second}}", slow: "{{$nodes.slow}}"}
    """
)


async def test_succeeded_jobs_are_reused_and_the_interrupted_one_runs_again(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with process(BRANCHY, make_store) as before:
        handle = await before.start({"kind": "a"})
        await before.run_until_stopped(handle, 50)
        stored = await before.store.get_execution(handle.id)
    assert stored is not None
    assert stored.status == "running"  # left for the next start to resume
    async with process(BRANCHY, make_store) as after:
        outcome = await after.resume(handle)
        jobs = await after.jobs(handle)
        record = await after.store.get_execution(handle.id)

    assert outcome.status == "succeeded"
    assert outcome.output == {
        "first": {"attempt": 1, "scope": ""},
        "second": {"attempt": 1, "scope": ""},
        "slow": {"attempt": 2, "scope": ""},
    }
    # Ran once each, in all: the switch and the condition took their recorded branch.
    assert RUNS == {("first", ""): 1, ("second", ""): 1, ("slow", ""): 2}
    assert [(j.node, j.attempt, j.status) for j in jobs] == [
        ("first", 1, "succeeded"),
        ("route", 1, "succeeded"),
        ("check", 1, "succeeded"),
        ("second", 1, "succeeded"),
        ("slow", 1, "cancelled"),
        ("slow", 2, "succeeded"),
        ("last", 1, "succeeded"),
    ]
    assert record is not None
    assert (record.status, record.output) == ("succeeded", outcome.output)


async def test_an_attempt_a_crash_left_running_is_recorded_interrupted(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with process(BRANCHY, make_store) as before:
        handle = await before.start({"kind": "b"})
        # What a SIGKILL in the middle of `first` leaves: both records `running`.
        now = time.time()
        await before.store.write(UpdateExecution(handle.id, "running", started_at=now))
        await before.store.write(
            SaveJob(JobRecord(handle.id, "first", "count", "running", 1, started_at=now))
        )
    async with process(BRANCHY, make_store) as after:
        outcome = await after.resume(handle)
        jobs = await after.jobs(handle)
    assert outcome.status == "succeeded"
    firsts = [(j.attempt, j.status, j.error, j.finished_at is not None) for j in jobs[:2]]
    assert firsts == [(1, "cancelled", INTERRUPTED, True), (2, "succeeded", None, True)]
    assert all(j.status != "running" for j in jobs)


async def test_a_failed_execution_retried_continues_from_the_failed_node(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    failing = workflow(
        """
        key: failing
        nodes:
          - {key: first, type: count}
          - key: check
            type: condition
            if: {exists: ["{{$nodes.first.attempt}}"]}
            then: [{key: broken, type: fail, message: "attempt {{$nodes.first.attempt}}"}]
        """
    )
    async with process(failing, make_store) as proc:
        handle = await proc.start()
        first = await proc.execution(handle).run()
        again = await proc.resume(handle)
        jobs = await proc.jobs(handle)
    assert (first.status, again.status) == ("failed", "failed")
    assert RUNS == {("first", ""): 1}
    # The failed node ran again as attempt 2, seeing the reused output of `first`.
    assert [(j.node, j.attempt, j.error) for j in jobs if j.node == "broken"] == [
        ("broken", 1, "attempt 1"),
        ("broken", 2, "attempt 1"),
    ]


async def test_completed_loop_iterations_are_not_run_again(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    looping = workflow(
        """
        key: looping
        nodes:
          - key: each
            type: loop
            items: 4
            body:
              - {key: step, type: count, pause: 10s}
        """
    )
    async with process(looping, make_store) as before:
        handle = await before.start()
        await before.run_until_stopped(handle, 25)
    async with process(looping, make_store) as after:
        outcome = await after.resume(handle)
        jobs = await after.jobs(handle)
    assert outcome.status == "succeeded"
    assert outcome.output == [
        {"attempt": 1, "scope": "each[0]"},
        {"attempt": 1, "scope": "each[1]"},
        {"attempt": 2, "scope": "each[2]"},
        {"attempt": 1, "scope": "each[3]"},
    ]
    assert RUNS == {
        ("step", "each[0]"): 1,
        ("step", "each[1]"): 1,
        ("step", "each[2]"): 2,
        ("step", "each[3]"): 1,
    }
    assert [(j.attempt, j.status) for j in jobs if j.node == "each"] == [
        (1, "cancelled"),
        (2, "succeeded"),
    ]


async def test_results_of_completed_parallel_branches_stay_visible(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    fan = workflow(
        """
        key: fan
        nodes:
          - key: both
            type: parallel
            branches:
              - [{key: a, type: count}]
              - [{key: b, type: count, pause: 1s}]
          - {key: slow, type: count, pause: 100s, timeout: 5m}
          - {key: last, type: set, values: {a: "{{$nodes.a.attempt}}", b: "{{$nodes.b.attempt}}"}}
        """
    )
    async with process(fan, make_store) as before:
        handle = await before.start()
        await before.run_until_stopped(handle, 50)
    async with process(fan, make_store) as after:
        outcome = await after.resume(handle)
    assert outcome.output == {"a": 1, "b": 1}
    assert RUNS == {("a", ""): 1, ("b", ""): 1, ("slow", ""): 2}


DELAYED = workflow(
    """
    key: delayed
    timeout: 3h
    nodes:
      - {key: first, type: count}
      - {key: pause, type: delay, duration: 1h}
      - {key: after, type: count}
    """
)


async def test_a_one_hour_delay_survives_a_restart_and_fires_on_time(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with process(DELAYED, make_store) as before:
        handle = await before.start()
        started = trio.current_time()
        await before.run_until_stopped(handle, 600)
        during = await before.jobs(handle)
    # Down for 20 minutes, then started again.
    await trio.sleep(1200)
    async with process(DELAYED, make_store) as after:
        outcome = await after.resume(handle)
        fired = trio.current_time() - started
        jobs = await after.jobs(handle)

    assert outcome.status == "succeeded"
    assert fired == pytest.approx(3600, abs=0.01)
    until = during[-1].output["until"]
    assert until == pytest.approx(mock_wall_clock() - fired + 3600, abs=0.01)
    assert [(j.node, j.attempt, j.status, j.output) for j in jobs if j.node == "pause"] == [
        ("pause", 1, "cancelled", {"until": until}),
        ("pause", 2, "succeeded", {"until": until}),
    ]
    assert RUNS == {("first", ""): 1, ("after", ""): 1}


async def test_a_delay_already_due_at_restart_fires_at_once(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with process(DELAYED, make_store) as before:
        handle = await before.start()
        await before.run_until_stopped(handle, 60)
    await trio.sleep(7200)
    async with process(DELAYED, make_store) as after:
        resumed_at = trio.current_time()
        outcome = await after.resume(handle)
        took = trio.current_time() - resumed_at
    assert outcome.status == "succeeded"
    assert took < 0.01


async def test_a_fresh_execution_ignores_nothing_and_runs_everything(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    # Without `resumed`, the store is not consulted: a second execution of the same
    # workflow runs all of its nodes.
    async with process(BRANCHY, make_store) as proc:
        for _ in range(2):
            handle = await proc.start({"kind": "a"})
            outcome = await proc.execution(handle).run()
            assert outcome.status == "succeeded"
    assert RUNS == {("first", ""): 2, ("second", ""): 2, ("slow", ""): 2}


async def test_an_engine_restarted_over_the_same_store_fires_the_delay_on_time(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    make_store: StoreFactory,
) -> None:
    real_time = time.time

    def wall_clock() -> float:
        try:
            return mock_wall_clock()
        except RuntimeError:  # outside trio (a log record at teardown)
            return real_time()

    monkeypatch.setattr(time, "time", wall_clock)
    async with open_engine([DELAYED], store=make_store(), shutdown_timeout=1) as engine:
        admission = await engine.submit("delayed")
        started = trio.current_time()
        await trio.sleep(600)
    await trio.sleep(1200)
    async with open_engine([DELAYED], store=make_store()) as engine:
        handle = engine.handle(admission.execution_id)
        assert handle is not None, "the engine did not resume the execution"
        outcome = await handle.wait_finished()
        fired = trio.current_time() - started
    assert outcome.status == "succeeded"
    assert fired == pytest.approx(3600, abs=0.01)
    assert RUNS == {("first", ""): 1, ("after", ""): 1}
