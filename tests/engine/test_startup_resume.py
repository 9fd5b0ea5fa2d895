"""What a restart, a retry and a replay do with stored executions: resumed executions
skip the nodes that succeeded, retries go on from the failed node, replays start anew."""

from __future__ import annotations

import logging
import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import ExecutionConflict, NotFound, QueueFull
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


STEPS = workflow(
    """
    key: steps
    nodes:
      - {key: first, type: set, values: {at: "{{$system.now}}", n: "{{$context.data.n}}"}}
      - {key: nap, type: sleep, duration: 10s}
      - {key: after, type: set, values: {seen: "{{$nodes.first.at}}"}}
    """
)


def napping(queue: int, *, enabled: bool = True, mode: str = "async") -> Workflow:
    return workflow(
        f"""
        key: nap
        enabled: {str(enabled).lower()}
        trigger: {{type: webhook, mode: {mode}}}
        concurrency: {{max: 1, queue: {queue}}}
        nodes:
          - {{key: nap, type: sleep, duration: 1s}}
        """
    )


FAILING = workflow(
    """
    key: failing
    nodes:
      - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
      - {key: boom, type: fail, message: "boom {{$nodes.step.n}}"}
    """
)


# -- start-up resume -------------------------------------------------------------------


async def test_an_interrupted_execution_resumes_without_running_succeeded_nodes_again(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([STEPS], store=store, shutdown_timeout=1) as engine:
        admission = await engine.submit("steps", data={"n": 7})
        await trio.sleep(2)  # `first` done, `nap` mid-run: then the process stops
    again = make_store()
    async with open_engine([STEPS], store=again) as engine:
        handle = engine.handle(admission.execution_id)
        assert handle is not None
        outcome = await handle.wait_finished()
        jobs = await again.list_jobs(admission.execution_id)
    assert outcome.status == "succeeded"
    runs = [(j.node, j.attempt, j.status) for j in jobs]
    assert runs == [
        ("first", 1, "succeeded"),
        ("nap", 1, "cancelled"),
        ("nap", 2, "succeeded"),
        ("after", 1, "succeeded"),
    ]
    first, after = jobs[0], jobs[-1]
    # `after` read the output `first` recorded before the restart: it was reused.
    assert after.output == {"seen": first.output["at"]}
    assert outcome.output == after.output


async def test_resumed_executions_are_not_refused_by_the_queue_and_go_first(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([napping(queue=5)], store=store, shutdown_timeout=0) as engine:
        ids = [(await engine.submit("nap")).execution_id for _ in range(4)]
    # Restarted with a smaller queue than what it left behind.
    again = make_store()
    async with open_engine([napping(queue=2)], store=again) as engine:
        assert engine.statistics().resumed == 4
        with pytest.raises(QueueFull):
            await engine.submit("nap")
        handles = [engine.handle(id) for id in ids]
        ends = []
        for handle in handles:
            assert handle is not None
            assert (await handle.wait_finished()).status == "succeeded"
            ends.append(trio.current_time())
        late = await engine.submit("nap")  # room again
    assert ends == sorted(ends)
    assert late.handle is not None


async def test_executions_of_a_disabled_workflow_stay_as_they_are(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([napping(queue=5)], store=store, shutdown_timeout=0) as engine:
        left = await engine.submit("nap")
    async with make_store.running() as reopened:
        before = await reopened.get_execution(left.execution_id)
    assert before is not None
    assert before.status in ("queued", "running")
    again = make_store()
    with caplog.at_level(logging.WARNING, logger="hookline.engine"):
        async with open_engine([napping(queue=5, enabled=False)], store=again) as engine:
            assert engine.statistics().resumed == 0
            await trio.sleep(5)
            record = await again.get_execution(left.execution_id)
    assert record is not None
    assert record.status == before.status
    assert left.execution_id in caplog.text
    assert "disabled" in caplog.text


async def test_a_resumed_sync_execution_answers_later_duplicates(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    headers = {"Idempotency-Key": "order-1"}
    sync = napping(queue=5, mode="sync")
    async with open_engine([sync], store=store, shutdown_timeout=0.5) as engine:
        first = await engine.submit("nap", data={"n": 1}, headers=headers)
        await trio.sleep(0.1)
    again = make_store()
    async with open_engine([sync], store=again) as engine:
        handle = engine.handle(first.execution_id)
        assert handle is not None
        await handle.wait_finished()
        duplicate = await engine.submit("nap", data={"n": 1}, headers=headers)
    # Not 409 "still processing": the resumed run recorded its answer for the key.
    assert duplicate.replayed
    assert duplicate.execution_id == first.execution_id
    assert duplicate.answer is not None
    assert duplicate.answer.status == 200


async def test_a_resumed_execution_that_never_started_records_its_start(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([napping(queue=5)], store=store, shutdown_timeout=0) as engine:
        await engine.submit("nap")  # running when the engine stops
        waiting = await engine.submit("nap")  # still queued: it never started
    again = make_store()
    async with open_engine([napping(queue=5)], store=again) as engine:
        handle = engine.handle(waiting.execution_id)
        assert handle is not None
        assert (await handle.wait_finished()).status == "succeeded"
        record = await again.get_execution(waiting.execution_id)
    assert record is not None
    assert record.started_at is not None


async def test_a_resumed_execution_records_the_version_it_runs_with(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([STEPS], store=store, shutdown_timeout=1) as engine:
        admission = await engine.submit("steps", data={"n": 1})
        await trio.sleep(2)  # `nap` mid-run: then the process stops
    changed = workflow(STEPS.text.replace("seen:", "saw:"))
    again = make_store()
    async with open_engine([changed], store=again) as engine:
        handle = engine.handle(admission.execution_id)
        assert handle is not None
        outcome = await handle.wait_finished()
        record = await again.get_execution(admission.execution_id)
    assert list(outcome.output) == ["saw"]  # the changed definition ran
    assert record is not None
    assert record.workflow_version == 2


# -- retry -----------------------------------------------------------------------------


async def test_retry_goes_on_from_the_failed_node(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([FAILING], store=make_store()) as engine:
        failed = await engine.run("failing", data={"n": 3})
        assert failed.status == "failed"
        retried = await engine.retry(failed.execution_id)
        assert retried.execution_id == failed.execution_id
        assert retried.handle is not None
        outcome = await retried.handle.wait_finished()
        jobs = await engine.store.list_jobs(failed.execution_id)
    assert outcome.status == "failed"
    assert [(j.node, j.attempt, j.status) for j in jobs] == [
        ("step", 1, "succeeded"),
        ("boom", 1, "failed"),
        ("boom", 2, "failed"),
    ]


async def test_a_retried_cancelled_execution_can_succeed_and_loses_its_old_error(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([STEPS], store=make_store()) as engine:
        admission = await engine.submit("steps", data={"n": 1})
        await trio.sleep(1)
        await engine.cancel(admission.execution_id)
        assert admission.handle is not None
        assert (await admission.handle.wait_finished()).status == "cancelled"
        retried = await engine.retry(admission.execution_id)
        queued = await engine.store.get_execution(admission.execution_id)
        assert retried.handle is not None
        outcome = await retried.handle.wait_finished()
        record = await engine.store.get_execution(admission.execution_id)
    assert queued is not None
    assert (queued.status, queued.finished_at, queued.error) == ("queued", None, None)
    assert outcome.status == "succeeded"
    assert record is not None
    assert (record.status, record.error) == ("succeeded", None)


async def test_a_retried_execution_records_the_version_it_runs_with(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([FAILING], store=store) as engine:
        failed = await engine.run("failing", data={"n": 3})
        first = await engine.store.get_execution(failed.execution_id)
    fixed = workflow(
        FAILING.text.replace(
            'type: fail, message: "boom {{$nodes.step.n}}"', "type: set, values: {}"
        )
    )
    async with open_engine([fixed], store=make_store()) as engine:
        retried = await engine.retry(failed.execution_id)
        assert retried.handle is not None
        outcome = await retried.handle.wait_finished()
        record = await engine.store.get_execution(failed.execution_id)
    assert first is not None
    assert first.workflow_version == 1
    assert outcome.status == "succeeded"
    assert record is not None
    assert record.workflow_version == 2


async def test_retry_refuses_what_cannot_be_retried(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([FAILING, STEPS], store=make_store()) as engine:
        with pytest.raises(NotFound):
            await engine.retry("01NOSUCHEXECUTION000000000")
        running = await engine.submit("steps", data={"n": 1})
        with pytest.raises(ExecutionConflict) as conflict:
            await engine.retry(running.execution_id)
        failed = await engine.run("failing", data={"n": 1})
        results: list[object] = []

        async def retry() -> None:
            try:
                results.append(await engine.retry(failed.execution_id))
            except ExecutionConflict as exc:
                results.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(retry)
            nursery.start_soon(retry)
    assert conflict.value.status == 409
    assert sorted(type(r).__name__ for r in results) == ["Admission", "ExecutionConflict"]


# -- replay ----------------------------------------------------------------------------


async def test_replay_starts_a_new_execution_from_the_same_delivery(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    async with open_engine([FAILING], store=make_store()) as engine:
        first = await engine.run("failing", data={"n": 5}, headers=headers)
        replayed = await engine.replay(first.execution_id)
        assert replayed.handle is not None
        again = await replayed.handle.wait_finished()
        original = await engine.store.get_execution(first.execution_id)
        copy = await engine.store.get_execution(replayed.execution_id)
        assert original is not None
        assert copy is not None
        assert copy.delivery_id is not None
        delivery = await engine.store.get_delivery(copy.delivery_id)
        with pytest.raises(NotFound):
            await engine.replay("01NOSUCHEXECUTION000000000")
    assert replayed.execution_id != first.execution_id
    assert not replayed.replayed  # a new execution, not the idempotent answer
    assert again.error == "node 'boom' failed: boom 5"
    assert copy.context["data"] == original.context["data"] == {"n": 5}
    assert copy.delivery_id != original.delivery_id
    assert delivery is not None
    assert delivery.reason == f"replay of {first.execution_id}"
    assert delivery.body == b'{"n":5}'
