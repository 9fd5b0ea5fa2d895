"""The parallel node: modes all, any and race; losers cancelled; failure, timeout,
cancellation and `end` inside a branch."""

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


def fan(mode: str, *, fast_fails: bool = False, slow_fails: bool = False) -> Workflow:
    """Branch 0 takes 1 s, branch 1 takes 3 s; either may end in a failing node."""
    fast_end = (
        "{key: fast_bad, type: fail, message: fast broke}"
        if fast_fails
        else ("{key: fast_done, type: set, values: {who: fast}}")
    )
    slow_end = (
        "{key: slow_bad, type: fail, message: slow broke}"
        if slow_fails
        else ("{key: slow_done, type: set, values: {who: slow}}")
    )
    return workflow(
        f"""
        key: fan
        nodes:
          - key: both
            type: parallel
            mode: {mode}
            branches:
              - - {{key: fast, type: sleep, duration: 1s}}
                - {fast_end}
              - - {{key: slow, type: sleep, duration: 3s}}
                - {slow_end}
          - {{key: after, type: set, values: {{got: "{{{{$nodes.both}}}}"}}}}
        """
    )


async def run(
    wf: Workflow, make_store: StoreFactory
) -> tuple[str, object, str | None, float, dict[str, str]]:
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run(wf.key)
        elapsed = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    return outcome.status, outcome.output, outcome.error, elapsed, {j.node: j.status for j in jobs}


async def test_all_waits_for_every_branch_and_lists_their_results(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    parallel = workflow(
        """
        key: fan
        nodes:
          - key: both
            type: parallel
            branches:
              - - {key: fast, type: sleep, duration: 1s}
                - {key: fast_done, type: set, values: {who: fast}}
              - - {key: slow, type: sleep, duration: 3s}
          - key: after
            type: set
            values: {fast: "{{$nodes.fast_done.who}}", all: "{{$nodes.both}}"}
        """
    )
    status, output, _, elapsed, _ = await run(parallel, make_store)
    assert status == "succeeded"
    # Branches ran at once (3 s, not 4 s); their nodes' results are visible after.
    assert elapsed == pytest.approx(3.0)
    assert output == {"fast": "fast", "all": [{"who": "fast"}, {"slept": 3.0}]}


async def test_all_fails_with_the_first_failure_and_cancels_the_rest(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, _, error, elapsed, jobs = await run(fan("all", fast_fails=True), make_store)
    assert status == "failed"
    assert error == "node 'both' failed: node 'fast_bad' failed: fast broke"
    assert elapsed == pytest.approx(1.0)
    assert jobs["slow"] == "cancelled"


async def test_any_takes_the_first_success_and_cancels_the_rest(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, output, _, elapsed, jobs = await run(fan("any"), make_store)
    assert (status, output) == ("succeeded", {"got": {"who": "fast"}})
    assert elapsed == pytest.approx(1.0)
    assert jobs["slow"] == "cancelled"
    assert "slow_done" not in jobs


async def test_any_waits_past_a_failure_for_a_success(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, output, _, elapsed, _ = await run(fan("any", fast_fails=True), make_store)
    assert (status, output) == ("succeeded", {"got": {"who": "slow"}})
    assert elapsed == pytest.approx(3.0)


async def test_any_fails_only_when_every_branch_failed(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, _, error, _, _ = await run(fan("any", fast_fails=True, slow_fails=True), make_store)
    assert status == "failed"
    assert error == (
        "node 'both' failed: every branch failed (branch 0: node 'fast_bad' failed: fast broke; "
        "branch 1: node 'slow_bad' failed: slow broke)"
    )


async def test_race_takes_the_first_to_finish_even_a_failure(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    won = await run(fan("race", slow_fails=True), make_store)
    lost = await run(fan("race", fast_fails=True), make_store)
    assert won[:2] == ("succeeded", {"got": {"who": "fast"}})
    assert lost[0] == "failed"
    assert lost[2] == (
        "node 'both' failed: branch 0 finished first, and failed: "
        "node 'fast_bad' failed: fast broke"
    )
    assert lost[3] == pytest.approx(1.0)
    assert lost[4]["slow"] == "cancelled"


async def test_an_end_in_a_branch_ends_the_execution(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    ending = workflow(
        """
        key: ending
        nodes:
          - key: both
            type: parallel
            mode: any
            branches:
              - - {key: stop, type: end, status: failed, output: {why: stopped}}
              - - {key: slow, type: sleep, duration: 3s}
          - {key: after, type: set, values: {ran: true}}
        """
    )
    status, output, error, elapsed, jobs = await run(ending, make_store)
    assert (status, output) == ("failed", {"why": "stopped"})
    assert error == "ended by an 'end' node with status failed"
    assert elapsed < 0.1
    assert jobs == {"stop": "succeeded", "slow": "cancelled", "both": "cancelled"}


async def test_a_parallel_node_past_its_timeout_is_timed_out(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    slow = workflow(
        """
        key: slow
        nodes:
          - key: both
            type: parallel
            timeout: 2s
            branches:
              - - {key: a, type: sleep, duration: 5s}
              - - {key: b, type: sleep, duration: 1s}
        """
    )
    status, _, _, elapsed, jobs = await run(slow, make_store)
    assert status == "failed"
    assert elapsed == pytest.approx(2.0)
    assert jobs == {"a": "cancelled", "b": "succeeded", "both": "timed_out"}


async def test_cancelling_the_execution_cancels_every_branch(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([fan("all")], store=store) as engine:
        admission = await engine.submit("fan")
        assert admission.handle is not None
        await trio.sleep(0.5)
        await engine.cancel(admission.execution_id)
        cancelled_at = trio.current_time()
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
        jobs = {j.node: j.status for j in await store.list_jobs(admission.execution_id)}
    assert outcome.status == "cancelled"
    assert waited < 0.1
    assert jobs == {"fast": "cancelled", "slow": "cancelled", "both": "cancelled"}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ("{}", "nodes[0].branches"),
        ("{branches: []}", "nodes[0].branches"),
        ("{branches: [3]}", "nodes[0].branches[0]"),
        ("{branches: [[{key: a, type: set}]]}", "nodes[0].branches[0][0].values"),
        ("{branches: [[]], mode: first}", "nodes[0].mode"),
    ],
)
def test_a_bad_parallel_is_refused_at_load(fields: str, where: str) -> None:
    node = "{key: p, type: parallel" + ("" if fields == "{}" else ", " + fields[1:-1]) + "}"
    with pytest.raises(DefinitionError) as caught:
        workflow(f"key: bad\nnodes: [{node}]\n")
    assert caught.value.path == where
