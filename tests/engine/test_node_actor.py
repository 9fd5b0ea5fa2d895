"""The NodeActor: each job under its timeout, cancellable, its failure never a crash."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from hookline.definition import Fields
from hookline.engine._job import JobTicket, RunningJob
from hookline.engine._node_actor import NodeActor
from hookline.nodes._base import NodeSpec
from hookline.nodes._registry import parse_node
from hookline.testing import register_test_nodes

register_test_nodes()


def node(**fields: Any) -> NodeSpec:
    return parse_node(Fields({"key": "n", **fields}, source="test.yaml", path="nodes[0]"))


def ticket(spec: NodeSpec, data: Any = None) -> JobTicket:
    return JobTicket(RunningJob("ex-1", spec, {"context": {"data": data}}))


async def run_one(actor: NodeActor, job: JobTicket) -> JobTicket:
    await actor.mailbox.send(job)
    await job.wait()
    return job


async def test_a_job_succeeds_with_its_result(autojump_clock: trio.testing.MockClock) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="2s", output="{{$context.data}}"))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        job = await run_one(actor, ticket(actor.node, {"a": 1}))
        nursery.cancel_scope.cancel()
    assert job.status == "succeeded"
    assert job.result is not None
    assert job.result.output == {"a": 1}
    record = job.record()
    assert (record.node, record.type, record.status, record.output) == (
        "n",
        "sleep",
        "succeeded",
        {"a": 1},
    )
    assert record.finished_at is not None
    assert record.finished_at >= record.started_at


async def test_a_job_past_its_timeout_is_timed_out(autojump_clock: trio.testing.MockClock) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="10s", timeout="1s"))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        start = trio.current_time()
        job = await run_one(actor, ticket(actor.node))
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert (job.status, job.error) == ("timed_out", "timed out after 1s")
    assert elapsed == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("deadline", "status", "error", "ends_at"),
    [
        (3.0, "cancelled", "cancelled", 3.0),  # the caller's deadline comes first
        (20.0, "timed_out", "timed out after 5s", 5.0),  # the node's timeout does
    ],
)
async def test_run_job_ends_at_the_earlier_of_its_timeout_and_the_callers_deadline(
    autojump_clock: trio.testing.MockClock,
    deadline: float,
    status: str,
    error: str,
    ends_at: float,
) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="1h", timeout="5s"))
    start = trio.current_time()
    job = RunningJob("ex-1", actor.node, {"context": {"data": None}})
    outcome = await actor.run_job(job, deadline=start + deadline)
    assert (outcome[0], outcome[2]) == (status, error)
    assert trio.current_time() - start == pytest.approx(ends_at)
    assert actor.statistics().failed == 1


@pytest.mark.parametrize(
    ("exception", "error"),
    [("NodeError", "no such customer"), ("RuntimeError", "RuntimeError: no such customer")],
)
async def test_a_failing_node_is_a_failed_job_not_a_crash(
    autojump_clock: trio.testing.MockClock, exception: str, error: str
) -> None:
    actor = NodeActor("wf", node(type="fail", message="no such customer", exception=exception))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        first = await run_one(actor, ticket(actor.node))
        second = await run_one(actor, ticket(actor.node))  # still serving
        nursery.cancel_scope.cancel()
    assert (first.status, first.error) == ("failed", error)
    assert second.status == "failed"
    stats = actor.statistics()
    assert (stats.completed, stats.failed, stats.in_flight, stats.restarts) == (0, 2, 0, 0)


async def test_cancel_reaches_a_running_job_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="1h", timeout="2h"))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        job = ticket(actor.node)
        await actor.mailbox.send(job)
        await trio.sleep(10)
        assert job.started
        assert not job.done
        cancelled_at = trio.current_time()
        job.cancel()
        await job.wait()
        assert trio.current_time() - cancelled_at < 0.1
        assert actor.statistics().in_flight == 0
        nursery.cancel_scope.cancel()
    assert job.status == "cancelled"


async def test_node_concurrency_bounds_jobs_and_a_cancelled_waiting_job_never_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="5s", concurrency=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        jobs = [ticket(actor.node) for _ in range(3)]
        for job in jobs:
            await actor.mailbox.send(job)
        await trio.sleep(1)
        assert [j.started for j in jobs] == [True, False, False]
        assert actor.statistics().in_flight == 1
        jobs[1].cancel()
        for job in jobs:
            await job.wait()
        finished = trio.current_time()
        nursery.cancel_scope.cancel()
    assert [j.status for j in jobs] == ["succeeded", "cancelled", "succeeded"]
    assert not jobs[1].started
    assert finished == pytest.approx(10.0)


async def test_a_crash_raises_the_error_and_settles_its_jobs(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = NodeActor("wf", node(type="sleep", duration="1h", timeout="2h"))
    running, crashing, queued = (ticket(actor.node) for _ in range(3))

    async def dispatch(self: NodeActor, job: JobTicket) -> None:
        if job is crashing:
            raise RuntimeError("bug in dispatch")
        await original(self, job)

    original = NodeActor.dispatch
    monkeypatch.setattr(NodeActor, "dispatch", dispatch)
    # Our nursery wraps it once; the actor itself raised it bare, not in a group.
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="bug in dispatch")):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await actor.mailbox.send(running)
            await trio.sleep(1)
            await actor.mailbox.send(crashing)
            await actor.mailbox.send(queued)
            await trio.sleep_forever()
    assert (running.status, running.error) == ("cancelled", "node actor stopped")
    assert (crashing.status, crashing.error) == (
        "failed",
        "the node actor crashed: RuntimeError: bug in dispatch",
    )
    assert not queued.done  # still in the mailbox, for the restarted actor
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(1)
        assert queued.started
        nursery.cancel_scope.cancel()
    assert actor.statistics().restarts == 1
