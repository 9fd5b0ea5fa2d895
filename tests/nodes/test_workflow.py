"""The workflow node: runs another workflow, waits for its output or not; failure,
depth limit, timeout and cancellation."""

from __future__ import annotations

import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError
from hookline.nodes._workflow import MAX_DEPTH
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


CHILD = workflow(
    """
    key: child
    nodes:
      - key: check
        type: condition
        if: {equal: ["{{$context.data.fail}}", true]}
        then:
          - {key: broken, type: fail, message: "child broke"}
      - {key: nap, type: delay, duration: "{{$context.data.wait}}"}
      - {key: answer, type: set, values: {doubled: "{{$context.data.n}}{{$context.data.n}}"}}
    """
)


def parent(wait: bool = True, timeout: str = "30s") -> Workflow:
    return workflow(
        f"""
        key: parent
        nodes:
          - key: call
            type: workflow
            workflow: child
            wait: {str(wait).lower()}
            timeout: {timeout}
            input: {{n: "{{{{$context.data.n}}}}", fail: "{{{{$context.data.fail}}}}",
                     wait: "{{{{$context.data.wait}}}}"}}
          - {{key: after, type: set, values: {{got: "{{{{$nodes.call}}}}"}}}}
        """
    )


async def test_waiting_gives_the_childs_output(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    store = make_store()
    async with open_engine([parent(), CHILD], store=store) as engine:
        outcome = await engine.run("parent", data={"n": 4, "fail": False, "wait": 2})
        listed = await store.list_executions(workflow="child")
    assert outcome.status == "succeeded"
    assert outcome.output == {"got": {"doubled": "44"}}
    child = listed.items[0]
    assert (child.status, child.context["data"]["n"]) == ("succeeded", 4)
    assert child.context["headers"]["x-hookline-depth"] == "1"


async def test_not_waiting_gives_the_child_execution_id_at_once(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([parent(wait=False), CHILD], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run("parent", data={"n": 1, "fail": False, "wait": 60})
        took = trio.current_time() - started
        child_id = outcome.output["got"]["execution_id"]
        handle = engine.handle(child_id)
        assert handle is not None
        child = await handle.wait_finished()
    assert outcome.status == "succeeded"
    assert took < 1
    assert (child.status, child.output) == ("succeeded", {"doubled": "11"})


async def test_a_failing_child_fails_the_node(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([parent(), CHILD], store=make_store()) as engine:
        outcome = await engine.run("parent", data={"n": 1, "fail": True, "wait": 0})
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("node 'call' failed: workflow 'child' (execution ")
    assert outcome.error.endswith("failed: node 'broken' failed: child broke")


async def test_an_unknown_workflow_fails_the_node(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([parent()], store=make_store()) as engine:
        outcome = await engine.run("parent", data={"n": 1})
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'call' failed: could not start workflow 'child': there is no workflow 'child'"
    )


async def test_workflows_calling_each_other_stop_at_the_depth_limit(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    ping = workflow(
        """
        key: ping
        concurrency: {max: 20}
        nodes:
          - {key: call, type: workflow, workflow: pong, input: {}}
        """
    )
    pong = workflow(
        """
        key: pong
        concurrency: {max: 20}
        nodes:
          - {key: call, type: workflow, workflow: ping, input: {}}
        """
    )
    store = make_store()
    async with open_engine([ping, pong], store=store) as engine:
        outcome = await engine.run("ping")
        pings = (await store.list_executions(workflow="ping")).items
        pongs = (await store.list_executions(workflow="pong")).items
    assert outcome.status == "failed"
    # Depth 0 (the first ping) to MAX_DEPTH: the deepest refuses to go further.
    assert len(pings) + len(pongs) == MAX_DEPTH + 1
    assert all(e.status == "failed" for e in [*pings, *pongs])
    deepest = max(
        [*pings, *pongs], key=lambda e: int(e.context["headers"].get("x-hookline-depth", 0))
    )
    assert deepest.error == (
        f"node 'call' failed: workflow '{'pong' if deepest.workflow == 'ping' else 'ping'}' "
        f"would run {MAX_DEPTH + 1} workflows deep, past the limit of {MAX_DEPTH}: "
        "do workflows call each other in a loop?"
    )


async def test_the_node_timeout_stops_the_waiting_not_the_child(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([parent(timeout="5s"), CHILD], store=store) as engine:
        outcome = await engine.run("parent", data={"n": 2, "fail": False, "wait": 60})
        child_id = (await store.list_executions(workflow="child")).items[0].id
        handle = engine.handle(child_id)
        assert handle is not None
        child = await handle.wait_finished()
    assert outcome.status == "failed"
    assert outcome.error == "node 'call' timed_out: timed out after 5s"
    assert child.status == "succeeded"


async def test_cancelling_the_parent_stops_its_waiting_at_once(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([parent(), CHILD], store=make_store()) as engine:
        admission = await engine.submit("parent", data={"n": 2, "fail": False, "wait": 60})
        assert admission.handle is not None
        await trio.sleep(1)
        await engine.cancel(admission.execution_id)
        cancelled_at = trio.current_time()
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
    assert outcome.status == "cancelled"
    assert waited < 0.1


def test_a_bad_workflow_key_is_refused_at_load() -> None:
    with pytest.raises(DefinitionError) as caught:
        workflow("key: bad\nnodes: [{key: w, type: workflow, workflow: 'Not A Key'}]\n")
    assert caught.value.path == "nodes[0].workflow"
