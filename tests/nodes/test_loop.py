"""The loop node: items (list, number, object), $scopes, concurrency, job scopes,
failure, timeout and cancellation."""

from __future__ import annotations

import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError
from hookline.testing import register_test_nodes, trio_wall_clock
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


EACH = workflow(
    """
    key: each
    nodes:
      - key: each
        type: loop
        items: "{{$context.data.items}}"
        body:
          - key: pause
            type: sleep
            duration: 0s
          - key: label
            type: set
            values:
              text: "{{$scopes.each.index}}/{{$scopes.each.length}}"
              item: "{{$scopes.each.item}}"
              paused: "{{$nodes.pause.slept}}"
    """
)


async def test_the_body_runs_per_item_and_the_result_lists_each_last_result(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([EACH], store=store) as engine:
        listed = await engine.run("each", data={"items": ["a", "b"]})
        counted = await engine.run("each", data={"items": 3})
        entries = await engine.run("each", data={"items": {"x": 1}})
        empty = await engine.run("each", data={"items": []})
        jobs = await store.list_jobs(listed.execution_id)

    assert listed.output == [
        {"text": "0/2", "item": "a", "paused": 0.0},
        {"text": "1/2", "item": "b", "paused": 0.0},
    ]
    assert [r["item"] for r in counted.output] == [0, 1, 2]
    assert entries.output == [{"text": "0/1", "item": {"key": "x", "value": 1}, "paused": 0.0}]
    assert empty.output == []
    # Each iteration's jobs are told apart by their scope.
    assert [(j.node, j.scope, j.attempt) for j in jobs] == [
        ("pause", "each[0]", 1),
        ("label", "each[0]", 1),
        ("pause", "each[1]", 1),
        ("label", "each[1]", 1),
        ("each", "", 1),
    ]


def timed_loop(concurrency: int) -> Workflow:
    return workflow(
        f"""
        key: timed
        nodes:
          - key: each
            type: loop
            items: [3, 1, 2]
            concurrency: {concurrency}
            body:
              - key: nap
                type: delay
                duration: "{{{{$scopes.each.item}}}}"
              - key: value
                type: set
                values: {{v: "{{{{$scopes.each.item}}}}"}}
        """
    )


@pytest.mark.parametrize(("concurrency", "took"), [(1, 6.0), (2, 3.0), (3, 3.0)])
async def test_concurrency_bounds_the_iterations_at_once(
    autojump_clock: trio.testing.MockClock,
    concurrency: int,
    took: float,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine(
        [timed_loop(concurrency)], store=store, clock=trio_wall_clock()
    ) as engine:
        started = trio.current_time()
        outcome = await engine.run("timed")
        elapsed = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    # Results keep item order whatever order iterations finished in.
    assert outcome.output == [{"v": 3}, {"v": 1}, {"v": 2}]
    assert elapsed == pytest.approx(took, abs=0.01)
    if concurrency == 1:
        assert [j.scope for j in jobs[:6:2]] == ["each[0]", "each[1]", "each[2]"]


async def test_a_nested_loop_sees_both_scopes(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    nested = workflow(
        """
        key: nested
        nodes:
          - key: rows
            type: loop
            items: 2
            body:
              - key: cols
                type: loop
                items: ["a", "b"]
                concurrency: 2
                body:
                  - key: cell
                    type: set
                    values: {at: "{{$scopes.rows.item}}{{$scopes.cols.item}}"}
        """
    )
    store = make_store()
    async with open_engine([nested], store=store) as engine:
        outcome = await engine.run("nested")
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.output == [[{"at": "0a"}, {"at": "0b"}], [{"at": "1a"}, {"at": "1b"}]]
    assert sorted(j.scope for j in jobs if j.node == "cell") == [
        "rows[0]/cols[0]",
        "rows[0]/cols[1]",
        "rows[1]/cols[0]",
        "rows[1]/cols[1]",
    ]


async def test_a_collection_write_in_the_body_happens_once_per_iteration(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    writing = workflow(
        """
        key: writing
        nodes:
          - key: each
            type: loop
            items: ["ann", "bob", "cy"]
            body:
              - key: add
                type: create
                collection: people
                values: {name: "{{$scopes.each.item}}"}
          - {key: everyone, type: query, collection: people, order_by: [name]}
        """
    )
    async with open_engine([writing], store=make_store()) as engine:
        outcome = await engine.run("writing")
    assert outcome.status == "succeeded", outcome.error
    assert [record["name"] for record in outcome.output] == ["ann", "bob", "cy"]


FAILING = workflow(
    """
    key: failing
    nodes:
      - key: each
        type: loop
        items: [5, 1, 5]
        concurrency: 3
        body:
          - key: nap
            type: delay
            duration: "{{$scopes.each.item}}"
          - key: check
            type: fail
            message: "item {{$scopes.each.index}} is bad"
    """
)


async def test_a_failing_iteration_fails_the_loop_and_cancels_the_others(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([FAILING], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run("failing")
        elapsed = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "failed"
    assert outcome.error == "node 'each' failed: node 'check' failed: item 1 is bad"
    assert elapsed < 1.1
    statuses = {(j.node, j.scope): j.status for j in jobs}
    assert statuses[("nap", "each[0]")] == "cancelled"
    assert statuses[("nap", "each[2]")] == "cancelled"
    assert statuses[("check", "each[1]")] == "failed"
    assert ("check", "each[0]") not in statuses


async def test_items_that_are_no_list_number_or_object_fail_the_job(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([EACH], store=make_store()) as engine:
        text = await engine.run("each", data={"items": "abc"})
        negative = await engine.run("each", data={"items": -1})
    assert text.status == negative.status == "failed"
    assert text.error == (
        "node 'each' failed: items: expected a list, a number or an object, got 'abc'"
    )
    assert negative.error == "node 'each' failed: items: expected a count of 0 or more, got -1"


async def test_a_loop_past_its_timeout_is_timed_out_with_its_body_cancelled(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    slow = workflow(
        """
        key: slow
        nodes:
          - key: each
            type: loop
            items: 10
            timeout: 25s
            body:
              - {key: nap, type: sleep, duration: 10s}
        """
    )
    store = make_store()
    async with open_engine([slow], store=store) as engine:
        outcome = await engine.run("slow")
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "failed"
    assert [(j.node, j.scope, j.status) for j in jobs] == [
        ("nap", "each[0]", "succeeded"),
        ("nap", "each[1]", "succeeded"),
        ("nap", "each[2]", "cancelled"),
        ("each", "", "timed_out"),
    ]


async def test_cancelling_the_execution_cancels_the_running_iterations(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([timed_loop(3)], store=store, clock=trio_wall_clock()) as engine:
        admission = await engine.submit("timed")
        assert admission.handle is not None
        await trio.sleep(1.5)
        cancelled_at = trio.current_time()
        await engine.cancel(admission.execution_id)
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
        jobs = await store.list_jobs(admission.execution_id)
    assert outcome.status == "cancelled"
    assert waited < 0.1
    assert sorted((j.scope, j.status) for j in jobs if j.node == "nap") == [
        ("each[0]", "cancelled"),
        ("each[1]", "succeeded"),
        ("each[2]", "cancelled"),
    ]
    assert [j.status for j in jobs if j.node == "each"] == ["cancelled"]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ("{items: 3}", "nodes[0].body"),
        ("{items: 3, body: []}", "nodes[0].body"),
        ("{body: [{key: x, type: set, values: {a: 1}}]}", "nodes[0].items"),
        (
            "{items: 3, concurrency: 0, body: [{key: x, type: set, values: {a: 1}}]}",
            "nodes[0].concurrency",
        ),
    ],
)
def test_a_bad_loop_is_refused_at_load(fields: str, where: str) -> None:
    node = "{key: l, type: loop, " + fields[1:]
    with pytest.raises(DefinitionError) as caught:
        workflow(f"key: bad\nnodes: [{node}]\n")
    assert caught.value.path == where
