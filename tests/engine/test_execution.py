"""Executions: the node walk, outputs, job records, variables, timeouts and cancellation."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.store._ops import UpdateExecution, WriteOp
from hookline.store._store import Store
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


BRANCHING = workflow(
    """
    key: branching
    nodes:
      - key: first
        type: set
        values: {n: "{{$context.data.n}}", id: "{{$execution.id}}", wf: "{{$workflow.key}}"}
      - key: big
        type: condition
        if: {gt: ["{{$nodes.first.n}}", 5]}
        then:
          - key: large
            type: set
            values: {said: "big {{$nodes.first.n}}", region: "{{$env.REGION}}"}
        else:
          - key: little
            type: set
            values: {said: "small"}
    """
)


async def test_output_is_the_last_nodes_output_and_the_branch_taken_is_recorded(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([BRANCHING], store=store, env={"REGION": "eu"}) as engine:
        big = await engine.run("branching", data={"n": 7})
        small = await engine.run("branching", data={"n": 2})
        big_jobs = await store.list_jobs(big.execution_id)
        small_jobs = await store.list_jobs(small.execution_id)
        record = await store.get_execution(big.execution_id)

    assert big.status == "succeeded"
    assert big.output == {"said": "big 7", "region": "eu"}
    assert small.output == {"said": "small"}
    assert [(j.node, j.status, j.output) for j in big_jobs[1:]] == [
        ("big", "succeeded", "then"),
        ("large", "succeeded", {"said": "big 7", "region": "eu"}),
    ]
    assert [(j.node, j.output) for j in small_jobs[1:]] == [
        ("big", "else"),
        ("little", small.output),
    ]
    # $execution.id and $workflow.key are this execution's.
    assert big_jobs[0].output == {"n": 7, "id": big.execution_id, "wf": "branching"}
    assert record is not None
    assert (record.status, record.output) == ("succeeded", big.output)
    assert record.started_at is not None
    assert record.finished_at is not None


async def test_env_holds_only_the_engines_configured_names(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([BRANCHING], store=make_store(), env={}) as engine:
        out = await engine.run("branching", data={"n": 9})
    assert out.output == {"said": "big 9", "region": None}


async def test_job_records_carry_timings(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = workflow(
        """
        key: timed
        nodes:
          - {key: nap, type: sleep, duration: 3s, output: "{{$context.data.x}}"}
          - {key: after, type: set, values: {got: "{{$nodes.nap}}"}}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        out = await engine.run("timed", data={"x": "hi"})
        jobs = await store.list_jobs(out.execution_id)
    assert out.output == {"got": "hi"}
    assert [(j.node, j.type, j.status, j.attempt) for j in jobs] == [
        ("nap", "sleep", "succeeded", 1),
        ("after", "set", "succeeded", 1),
    ]
    for job in jobs:
        assert job.finished_at is not None
        assert job.finished_at >= job.started_at


async def test_end_node_output_is_the_execution_output_and_stops_the_walk(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    wf = workflow(
        """
        key: ending
        nodes:
          - {key: done, type: end, output: {total: "{{$context.data.n}}"}}
          - {key: never, type: set, values: {x: 1}}
        """
    )
    failing = workflow(
        """
        key: ending-badly
        nodes:
          - {key: stop, type: end, status: failed, output: {why: bad}}
        """
    )
    store = make_store()
    async with open_engine([wf, failing], store=store) as engine:
        out = await engine.run("ending", data={"n": 3})
        bad = await engine.run("ending-badly")
        jobs = await store.list_jobs(out.execution_id)
    assert (out.status, out.output) == ("succeeded", {"total": 3})
    assert [j.node for j in jobs] == ["done"]
    assert (bad.status, bad.output) == ("failed", {"why": "bad"})
    assert bad.error is not None


async def test_a_failing_node_fails_the_job_and_the_execution(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    wf = workflow(
        """
        key: failing
        nodes:
          - {key: ok, type: set, values: {a: 1}}
          - {key: boom, type: fail, message: "no customer {{$context.data.id}}"}
          - {key: never, type: set, values: {b: 2}}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        out = await engine.run("failing", data={"id": 42})
        jobs = await store.list_jobs(out.execution_id)
        record = await store.get_execution(out.execution_id)
    assert out.status == "failed"
    assert out.error is not None
    assert "no customer 42" in out.error
    assert [(j.node, j.status, j.error) for j in jobs] == [
        ("ok", "succeeded", None),
        ("boom", "failed", "no customer 42"),
    ]
    assert record is not None
    assert (record.status, record.error) == ("failed", out.error)


async def test_job_timeout_fails_the_execution(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = workflow(
        """
        key: slow-node
        nodes:
          - {key: nap, type: sleep, duration: 10s, timeout: 1s}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        start = trio.current_time()
        out = await engine.run("slow-node")
        elapsed = trio.current_time() - start
        jobs = await store.list_jobs(out.execution_id)
        record = await store.get_execution(out.execution_id)
    assert 1 <= elapsed < 1.1
    assert out.status == "failed"
    assert [(j.node, j.status, j.error) for j in jobs] == [
        ("nap", "timed_out", "timed out after 1s")
    ]
    assert record is not None
    assert record.status == "failed"
    assert record.error is not None
    assert "timed out after 1s" in record.error


async def test_execution_timeout_cancels_the_running_job(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    wf = workflow(
        """
        key: slow-workflow
        timeout: 2s
        nodes:
          - {key: first, type: sleep, duration: 1500ms}
          - {key: second, type: sleep, duration: 10s, timeout: 2s}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        start = trio.current_time()
        out = await engine.run("slow-workflow")
        elapsed = trio.current_time() - start
        jobs = await store.list_jobs(out.execution_id)
        record = await store.get_execution(out.execution_id)
    assert 2 <= elapsed < 2.1
    assert out.status == "timed_out"
    assert [(j.node, j.status) for j in jobs] == [("first", "succeeded"), ("second", "cancelled")]
    assert record is not None
    assert record.status == "timed_out"
    assert record.error is not None
    assert "timeout" in record.error


async def test_cancel_ends_the_running_job_at_once(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = workflow(
        """
        key: long
        timeout: 3h
        nodes:
          - {key: nap, type: sleep, duration: 1h, timeout: 2h}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        admission = await engine.submit("long")
        assert admission.handle is not None
        await trio.sleep(5)
        assert engine.statistics().workflows[0].nodes[0].in_flight == 1
        cancelled_at = trio.current_time()
        assert await engine.cancel(admission.execution_id)
        out = await admission.handle.wait_finished()
        took = trio.current_time() - cancelled_at
        jobs = await store.list_jobs(out.execution_id)
        record = await store.get_execution(out.execution_id)
        node = engine.statistics().workflows[0].nodes[0]
    assert took < 0.1
    assert out.status == "cancelled"
    assert [(j.node, j.status) for j in jobs] == [("nap", "cancelled")]
    assert record is not None
    assert record.status == "cancelled"
    assert node.in_flight == 0


async def test_cancel_of_a_queued_execution_never_runs_a_job(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    wf = workflow(
        """
        key: one-at-a-time
        concurrency: {max: 1}
        nodes:
          - {key: nap, type: sleep, duration: 10s}
        """
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        first = await engine.submit("one-at-a-time")
        second = await engine.submit("one-at-a-time")
        assert second.handle is not None
        assert first.handle is not None
        await trio.sleep(1)
        assert await engine.cancel(second.execution_id)
        out = await second.handle.wait_finished()
        assert (await first.handle.wait_finished()).status == "succeeded"
        jobs = await store.list_jobs(second.execution_id)
        record = await store.get_execution(second.execution_id)
        assert not await engine.cancel(second.execution_id)  # no longer live
    assert out.status == "cancelled"
    assert jobs == []
    assert record is not None
    assert record.status == "cancelled"
    assert record.started_at is None


SYNC = workflow(
    """
    key: sync
    trigger: {type: webhook, mode: sync}
    nodes:
      - {key: out, type: set, values: {n: "{{$context.data.n}}"}}
    """
)


class DiesBeforeTheEnd(Store):
    """Commits everything up to an execution's end, then nothing more: as if the
    process died just before that commit."""

    dead = False

    async def write(self, op: WriteOp) -> Any:
        if isinstance(op, UpdateExecution) and op.status != "running" and not self.dead:
            await self.flush()
            self.dead = True
        return None if self.dead else await super().write(op)

    async def post(self, op: WriteOp) -> None:
        if not self.dead:
            await super().post(op)


async def test_a_sync_answer_is_stored_before_the_end_so_retries_never_get_stuck(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    headers = {"Idempotency-Key": "order-7"}
    async with open_engine([SYNC], store=DiesBeforeTheEnd(make_store.backend())) as engine:
        first = await engine.run("sync", data={"n": 7}, headers=headers)
    # The next start finds the execution unfinished and runs it again; meanwhile, and
    # after, the sender's retry gets the answer its first try got (not 409 forever).
    async with open_engine([SYNC], store=make_store()) as engine:
        retry = await engine.submit("sync", data={"n": 7}, headers=headers)
        assert retry.replayed
        assert retry.answer is not None
        answer = json.loads(retry.answer.body)
        assert (retry.answer.status, answer["status"], answer["output"]) == (
            200,
            "succeeded",
            {"n": 7},
        )
        await trio.sleep(1)
        record = await engine.store.get_execution(first.execution_id)
    assert record is not None
    assert (record.status, record.output) == ("succeeded", {"n": 7})
