"""The switch node: the first case that holds runs, else default; failure, timeout, cancel."""

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


ROUTER = workflow(
    """
    key: router
    nodes:
      - key: route
        type: switch
        cases:
          - if: {equal: ["{{$context.data.kind}}", "push"]}
            nodes:
              - {key: on_push, type: set, values: {handled: push}}
          - if: {gt: ["{{$context.data.n}}", 10]}
            nodes:
              - {key: slow, type: delay, duration: "{{$context.data.wait}}", timeout: 5s}
              - {key: on_big, type: set, values: {handled: "big {{$context.data.n}}"}}
          - if: {equal: ["{{$context.data.kind}}", "bad"]}
            nodes:
              - {key: broken, type: fail, message: "bad kind"}
        default:
          - {key: on_other, type: set, values: {handled: other}}
    """
)


async def test_the_first_case_that_holds_runs_and_its_index_is_the_result(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([ROUTER], store=store) as engine:
        push = await engine.run("router", data={"kind": "push", "n": 50, "wait": 0})
        big = await engine.run("router", data={"kind": "tag", "n": 50, "wait": 0})
        other = await engine.run("router", data={"kind": "tag", "n": 1})
        jobs = await store.list_jobs(big.execution_id)
        other_jobs = await store.list_jobs(other.execution_id)

    # Case 0 holds for push although case 1 holds too: only the first runs.
    assert (push.status, push.output) == ("succeeded", {"handled": "push"})
    assert big.output == {"handled": "big 50"}
    assert [(j.node, j.output) for j in jobs[::2]] == [("route", 1), ("on_big", big.output)]
    assert (other.output, [(j.node, j.output) for j in other_jobs]) == (
        {"handled": "other"},
        [("route", "default"), ("on_other", {"handled": "other"})],
    )


async def test_a_failing_node_in_a_case_fails_the_execution(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([ROUTER], store=make_store()) as engine:
        outcome = await engine.run("router", data={"kind": "bad", "n": 0})
    assert outcome.status == "failed"
    assert outcome.error == "node 'broken' failed: bad kind"


async def test_a_node_in_a_case_past_its_timeout_is_timed_out(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([ROUTER], store=store) as engine:
        outcome = await engine.run("router", data={"kind": "tag", "n": 50, "wait": 60})
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "failed"
    assert [(j.node, j.status) for j in jobs] == [
        ("route", "succeeded"),
        ("slow", "timed_out"),
    ]


async def test_cancelling_stops_the_case_being_run(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([ROUTER], store=store) as engine:
        admission = await engine.submit("router", data={"kind": "tag", "n": 50, "wait": 4})
        assert admission.handle is not None
        await trio.sleep(1)
        cancelled_at = trio.current_time()
        assert await engine.cancel(admission.execution_id)
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "cancelled"
    assert waited < 0.1
    assert jobs[-1].node == "slow"
    assert jobs[-1].status == "cancelled"


@pytest.mark.parametrize(
    ("nodes", "where"),
    [
        ("[{key: s, type: switch}]", "nodes[0].cases"),
        ("[{key: s, type: switch, cases: [{nodes: []}]}]", "nodes[0].cases[0].if"),
        (
            "[{key: s, type: switch, cases: [{if: {exists: [1]}, node: []}]}]",
            "nodes[0].cases[0].node",
        ),
        ("[{key: s, type: switch, cases: [{if: {exists: [1]}}], default: 3}]", "nodes[0].default"),
    ],
)
def test_a_bad_switch_is_refused_at_load(nodes: str, where: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        workflow(f"key: bad\nnodes: {nodes}\n")
    assert caught.value.path == where
