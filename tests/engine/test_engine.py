"""The engine: readiness, intake limits, graceful shutdown, statistics, answers and
idempotency, as an embedding program sees them."""

from __future__ import annotations

import json
import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import IdempotencyConflict, IdempotencyMismatch, Unavailable
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


QUICK = workflow(
    """
    key: quick
    nodes:
      - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
      - key: check
        type: condition
        if: {gt: ["{{$nodes.step.n}}", 0]}
        else:
          - {key: boom, type: fail, message: "n must be positive"}
    """
)


def napping(key: str, duration: str, **extra: str) -> Workflow:
    lines = "".join(f"{name}: {value}\n" for name, value in extra.items())
    return workflow(
        f"key: {key}\n{lines}nodes:\n  - {{key: nap, type: sleep, duration: {duration}}}\n"
    )


def header(answer_headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    return dict(answer_headers).get(name)


# -- readiness and structured concurrency ----------------------------------------------


async def test_main_is_ready_only_once_every_actor_runs(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    engine = Engine(make_store(), [QUICK, napping("slow", "1s")])
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.main)
        stats = engine.statistics()
        assert stats.accepting
        assert [c.running for c in stats.supervisor.children] == [True, True]
        for wf in stats.workflows:
            children = {c.name: c.running for c in wf.supervisor.children}
            nodes = {f"node:{n.name.split('/')[1]}": True for n in wf.nodes}
            assert children == {**nodes, "executions": True}
        # Ready means usable at once: no sleep, no retry.
        assert (await engine.run("quick", data={"n": 1})).status == "succeeded"
        await engine.aclose()
        assert not engine.statistics().accepting


async def test_no_task_outlives_the_engine_block(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    me = trio.lowlevel.current_task()
    before = list(me.child_nurseries)
    async with open_engine([QUICK, napping("slow", "1h")], store=make_store()) as engine:
        await engine.submit("slow")
        await trio.sleep(1)
        # The engine's tasks live in a nursery of ours, and it is gone afterwards.
        assert len(me.child_nurseries) == len(before) + 1
    assert me.child_nurseries == before
    stats = engine.statistics()
    assert not any(c.running for c in stats.supervisor.children)
    for wf in stats.workflows:
        assert not any(c.running for c in wf.supervisor.children)


# -- intake limits ---------------------------------------------------------------------


async def test_the_engine_wide_pending_limit_answers_unavailable(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([napping("slow", "10s")], store=store, pending_limit=2) as engine:
        await engine.submit("slow")
        await engine.submit("slow")
        assert engine.statistics().pending == 2
        with pytest.raises(Unavailable) as refused:
            await engine.submit("slow")
        executions = await store.list_executions()
    assert refused.value.status == 503
    assert refused.value.retry_after is not None
    assert refused.value.retry_after >= 1
    assert len(executions.items) == 2


async def test_a_disabled_workflow_answers_unavailable(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    off = napping("paused", "1s", enabled="false")
    async with open_engine([off], store=make_store()) as engine:
        with pytest.raises(Unavailable) as refused:
            await engine.submit("paused")
    assert refused.value.status == 503
    assert "disabled" in refused.value.detail


# -- graceful shutdown -----------------------------------------------------------------


async def test_shutdown_refuses_intake_and_lets_running_executions_finish(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    late: list[BaseException] = []

    async def submit_late(engine: Engine) -> None:
        await trio.sleep(1)
        try:
            await engine.submit("slow")
        except Unavailable as exc:
            late.append(exc)

    async with trio.open_nursery() as outside:
        async with open_engine([napping("slow", "5s")], store=store, shutdown_timeout=10) as engine:
            admission = await engine.submit("slow")
            outside.start_soon(submit_late, engine)
            await trio.sleep(0.1)  # started: a queued one would stay queued
        stopped_at = trio.current_time()
    assert 5 <= stopped_at < 5.1  # waited for the running one, not the whole deadline
    assert [type(e) for e in late] == [Unavailable]
    assert admission.handle is not None
    assert admission.handle.outcome is not None
    assert admission.handle.outcome.status == "succeeded"
    async with make_store.running() as reopened:
        record = await reopened.get_execution(admission.execution_id)
        refused = await reopened.list_deliveries(workflow="slow", verdict="rejected", limit=5)
    assert record is not None
    assert record.status == "succeeded"
    assert [d.status for d in refused.items] == [503]


async def test_shutdown_cancels_what_runs_past_the_deadline_leaving_it_resumable(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    wf = napping("long", "1m", concurrency="{max: 1}")
    async with open_engine([wf], store=store, shutdown_timeout=2) as engine:
        running = await engine.submit("long")
        queued = await engine.submit("long")
        await trio.sleep(1)
    stopped_at = trio.current_time()
    assert 3 <= stopped_at < 3.1  # 1s of work, then the 2s deadline
    for admission in (running, queued):
        assert admission.handle is not None
        assert admission.handle.outcome is not None
        assert admission.handle.outcome.status == "cancelled"
    # The store was flushed as the engine stopped: read it as the next start would.
    async with make_store.running() as reopened:
        first = await reopened.get_execution(running.execution_id)
        second = await reopened.get_execution(queued.execution_id)
        jobs = await reopened.list_jobs(running.execution_id)
        unfinished = await reopened.unfinished_executions()
    assert first is not None
    assert first.status == "running"
    assert second is not None
    assert second.status == "queued"
    assert [(j.node, j.status) for j in jobs] == [("nap", "cancelled")]
    assert [e.id for e in unfinished] == sorted([running.execution_id, queued.execution_id])


# -- statistics ------------------------------------------------------------------------


async def test_statistics_follow_what_happened(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    slow = napping("slow", "10s", concurrency="{max: 1, queue: 5}")
    async with open_engine([QUICK, slow], store=make_store()) as engine:
        for n in (1, 2, -1, 3, -2):
            await engine.run("quick", data={"n": n})
        for _ in range(3):
            await engine.submit("slow")
        await trio.sleep(1)
        stats = engine.statistics()
        quick, busy = stats.workflows
        assert (quick.completed, quick.failed, quick.running, quick.queue.depth) == (5, 2, 0, 0)
        nodes = {n.name: (n.completed, n.failed, n.in_flight) for n in quick.nodes}
        assert nodes == {"quick/step": (5, 0, 0), "quick/check": (5, 0, 0), "quick/boom": (0, 2, 0)}
        assert (busy.completed, busy.running, busy.queue.depth) == (0, 1, 2)
        assert busy.nodes[0].in_flight == 1
        assert stats.pending == 3
        assert stats.store.ops > 0
        assert stats.store.failed_batches == 0
        assert stats.supervisor.restarts == 0
        await trio.sleep(30)
        busy = engine.statistics().workflows[1]
        assert (busy.completed, busy.failed, busy.running, busy.queue.depth) == (3, 0, 0, 0)


# -- answers ---------------------------------------------------------------------------


async def test_async_answer_is_202_or_the_configured_response(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    custom = workflow(
        """
        key: custom
        trigger:
          response:
            status: 200
            headers: {X-Accepted-By: hookline}
            body: {received: true, execution: "{{$execution.id}}", who: "{{$context.data.name}}"}
        nodes:
          - {key: step, type: set, values: {a: 1}}
        """
    )
    async with open_engine([QUICK, custom], store=make_store()) as engine:
        plain = await engine.submit("quick", data={"n": 1})
        configured = await engine.submit("custom", data={"name": "Ada"})
    assert plain.answer is not None
    assert plain.answer.status == 202
    assert json.loads(plain.answer.body) == {"execution_id": plain.execution_id, "status": "queued"}
    assert header(plain.answer.headers, "location") == f"/api/executions/{plain.execution_id}"
    assert configured.answer is not None
    assert configured.answer.status == 200
    assert header(configured.answer.headers, "x-accepted-by") == "hookline"
    assert json.loads(configured.answer.body) == {
        "received": True,
        "execution": configured.execution_id,
        "who": "Ada",
    }


async def test_sync_answer_is_200_with_output_or_a_500_problem(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    sync = workflow(
        """
        key: sync
        trigger: {mode: sync}
        nodes:
          - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
          - key: check
            type: condition
            if: {gt: ["{{$nodes.step.n}}", 0]}
            else:
              - {key: boom, type: fail, message: "n must be positive"}
        """
    )
    async with open_engine([sync], store=make_store()) as engine:
        good = await engine.submit("sync", data={"n": 1})
        bad = await engine.submit("sync", data={"n": -1})
        assert good.answer is None
        assert good.handle is not None
        assert bad.handle is not None
        ok = await good.handle.wait_answer()
        failed = await bad.handle.wait_answer()
    assert ok.status == 200
    assert json.loads(ok.body) == {
        "execution_id": good.execution_id,
        "status": "succeeded",
        "output": "then",
    }
    assert failed.status == 500
    assert header(failed.headers, "content-type") == "application/problem+json"
    problem = json.loads(failed.body)
    assert problem["status"] == 500
    assert problem["execution_id"] == bad.execution_id
    assert "n must be positive" in problem["detail"]


# -- idempotency -----------------------------------------------------------------------


async def test_a_repeated_delivery_gets_the_first_answer_again(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    headers = {"X-GitHub-Delivery": "d-1"}
    async with open_engine([QUICK], store=store) as engine:
        first = await engine.submit("quick", data={"n": 1}, headers=headers)
        assert first.handle is not None
        await first.handle.wait_finished()
        again = await engine.submit("quick", data={"n": 1}, headers=headers)
        with pytest.raises(IdempotencyMismatch) as mismatch:
            await engine.submit("quick", data={"n": 2}, headers=headers)
        executions = await store.list_executions()
        duplicates = await store.list_deliveries(verdict="duplicate")
    assert again.replayed
    assert again.handle is None
    assert again.execution_id == first.execution_id
    assert first.answer is not None
    assert again.answer is not None
    assert (again.answer.status, again.answer.body) == (first.answer.status, first.answer.body)
    assert header(again.answer.headers, "idempotent-replayed") == "true"
    assert mismatch.value.status == 422
    assert len(executions.items) == 1
    # Every request is recorded: the replay as a duplicate of the first execution.
    (duplicate,) = duplicates.items
    assert duplicate.execution_id == first.execution_id
    assert duplicate.status == first.answer.status


async def test_a_repeat_while_the_first_runs_is_a_conflict(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    sync = napping("sync-slow", "10s", trigger="{mode: sync}")
    headers = {"Idempotency-Key": '"k-1"'}
    async with open_engine([sync], store=make_store()) as engine:
        first = await engine.submit("sync-slow", headers=headers)
        with pytest.raises(IdempotencyConflict) as conflict:
            await engine.submit("sync-slow", headers={"idempotency-key": "k-1"})
        assert first.handle is not None
        answer = await first.handle.wait_answer()
        again = await engine.submit("sync-slow", headers=headers)
    assert conflict.value.status == 409
    assert again.replayed
    assert again.answer is not None
    assert (again.answer.status, again.answer.body) == (answer.status, answer.body)


async def test_concurrent_identical_deliveries_start_exactly_one_execution(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    admissions = []

    async def submit(engine: Engine) -> None:
        admissions.append(
            await engine.submit("quick", data={"n": 1}, headers={"webhook-id": "same"})
        )

    async with open_engine([QUICK], store=store) as engine:
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(submit, engine)
        executions = await store.list_executions()
    assert len(executions.items) == 1
    assert {a.execution_id for a in admissions} == {executions.items[0].id}
    assert sorted(a.replayed for a in admissions) == [False, True, True, True, True]


# -- definitions -----------------------------------------------------------------------


async def test_a_replaced_workflow_finishes_what_it_holds(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    old = workflow(
        """
        key: versioned
        nodes:
          - {key: nap, type: sleep, duration: 10s, output: old}
        """
    )
    new = workflow(
        """
        key: versioned
        nodes:
          - {key: nap, type: sleep, duration: 1s, output: new}
        """
    )
    async with open_engine([old], store=make_store()) as engine:
        running = await engine.submit("versioned")
        await trio.sleep(1)
        await engine.apply([new])
        assert engine.statistics().pending == 1  # the old one still counts
        replacement = await engine.run("versioned")
        assert running.handle is not None
        finished = await running.handle.wait_finished()
        assert engine.statistics().pending == 0
    assert (finished.status, finished.output) == ("succeeded", "old")
    assert (replacement.status, replacement.output) == ("succeeded", "new")
