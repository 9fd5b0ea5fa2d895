"""The delay node: waits its duration on trio's clock, durably; timeout and cancel."""

from __future__ import annotations

import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


WAITING = workflow(
    """
    key: waiting
    timeout: 2h
    nodes:
      - key: pause
        type: delay
        duration: "{{$context.data.wait}}"
      - {key: after, type: set, values: {done: true}}
    """
)


async def test_the_next_node_runs_once_the_duration_has_passed(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([WAITING], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run("waiting", data={"wait": "1h"})
        took = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.output == {"done": True}
    assert 3599 < took < 3601
    # The default node timeout (30 s) does not cut a delay short.
    assert jobs[0].status == "succeeded"
    assert jobs[0].finished_at is not None


async def test_the_due_time_is_committed_before_the_wait(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([WAITING], store=store) as engine:
        admission = await engine.submit("waiting", data={"wait": 600})
        assert admission.handle is not None
        await trio.sleep(60)
        # Read from the backend: what a crash now would leave behind.
        during = store.backend.list_jobs(admission.execution_id)
        outcome = await admission.handle.wait_finished()
        after = await store.list_jobs(admission.execution_id)
    assert [(j.node, j.status) for j in during] == [("pause", "running")]
    until = during[0].output["until"]
    assert until == pytest.approx(during[0].started_at + 600, abs=5)
    assert outcome.status == "succeeded"
    assert (after[0].status, after[0].output) == ("succeeded", {"until": until})


async def test_a_bad_duration_template_fails_the_job(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([WAITING], store=make_store()) as engine:
        outcome = await engine.run("waiting", data={"wait": "soon"})
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'pause' failed: duration: expected a duration such as '5s', got 'soon'"
    )


async def test_a_delay_past_its_own_timeout_is_timed_out(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    capped = workflow(
        """
        key: capped
        timeout: 15m
        nodes:
          - {key: pause, type: delay, duration: 10m, timeout: 1m}
        """
    )
    store = make_store()
    async with open_engine([capped], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run("capped")
        took = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "failed"
    assert 60 <= took < 61
    assert [(j.status, j.error) for j in jobs] == [("timed_out", "timed out after 1m")]


async def test_cancelling_ends_the_wait_at_once(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    store = make_store()
    async with open_engine([WAITING], store=store) as engine:
        admission = await engine.submit("waiting", data={"wait": "1h"})
        assert admission.handle is not None
        await trio.sleep(10)
        cancelled_at = trio.current_time()
        await engine.cancel(admission.execution_id)
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
        jobs = await store.list_jobs(admission.execution_id)
    assert outcome.status == "cancelled"
    assert waited < 0.1
    # The cancelled job keeps its due time: a retry from here would wait what is left.
    assert jobs[0].status == "cancelled"
    assert set(jobs[0].output) == {"until"}


def test_a_bad_duration_is_refused_at_load() -> None:
    with pytest.raises(DefinitionError) as caught:
        workflow("key: bad\nnodes: [{key: d, type: delay, duration: soon}]\n")
    assert caught.value.path == "nodes[0].duration"
    with pytest.raises(DefinitionError) as missing:
        workflow("key: bad\nnodes: [{key: d, type: delay}]\n")
    assert missing.value.path == "nodes[0].duration"
