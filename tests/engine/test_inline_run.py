"""A sync workflow of quick nodes runs whole at admission and is stored in one
transaction: delivery, finished execution, jobs, idempotency claim and answer."""

from __future__ import annotations

import textwrap

import trio
import trio.testing

from hookline import load_workflow_text, open_engine
from hookline.engine._inline_run import runs_inline
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()

QUICK = load_workflow_text(
    textwrap.dedent(
        """
        key: quick-sync
        trigger: {type: webhook, mode: sync}
        nodes:
          - {key: a, type: set, values: {n: "{{$context.data.n}}"}}
          - key: big
            type: condition
            if: {gt: ["{{$nodes.a.n}}", 10]}
            then: [{key: say, type: response, status: 201, body: "big {{$nodes.a.n}}"}]
          - key: each
            type: loop
            items: 3
            body: [{key: sq, type: set, values: {i: "{{$scopes.each.index}}"}}]
        """
    ),
    source="quick.yaml",
)


def test_only_sync_workflows_of_quick_nodes_run_whole() -> None:
    assert runs_inline(QUICK)
    slow = load_workflow_text(
        "key: s\ntrigger: {type: webhook, mode: sync}\n"
        "nodes: [{key: n, type: sleep, duration: 1s}]",
        source="s.yaml",
    )
    asynchronous = load_workflow_text(
        "key: a\nnodes: [{key: n, type: set, values: {x: 1}}]", source="a.yaml"
    )
    assert not runs_inline(slow)
    assert not runs_inline(asynchronous)


async def test_it_is_answered_after_one_write_that_stores_everything(
    autojump_clock: trio.testing.MockClock, make_any_store: StoreFactory
) -> None:
    store = make_any_store()
    headers = {"Idempotency-Key": "k-1"}
    async with open_engine([QUICK], store=store) as engine:
        await engine.run("quick-sync", data={"n": 1})  # warm up
        await store.flush()
        before = store.statistics().ops
        admission = await engine.submit("quick-sync", data={"n": 12}, headers=headers)
        ops = store.statistics().ops - before
        assert admission.handle is not None
        outcome = await admission.handle.wait_finished()
        again = await engine.submit("quick-sync", data={"n": 12}, headers=headers)
        record = await store.get_execution(admission.execution_id)
        jobs = await store.list_jobs(admission.execution_id)
        delivery = await store.get_delivery(record.delivery_id) if record else None
        stats = engine.statistics().workflows[0]
    if store.backend.coordinator is None:
        assert ops == 1  # the accepting transaction, with everything in it
    answer = admission.handle.answer
    assert answer is not None
    assert (answer.status, answer.body) == (201, b"big 12")
    assert (outcome.status, outcome.output) == ("succeeded", [{"i": 0}, {"i": 1}, {"i": 2}])
    assert record is not None
    assert (record.status, record.output) == ("succeeded", outcome.output)
    assert record.started_at is not None
    assert record.finished_at is not None
    assert [(j.node, j.scope, j.status) for j in jobs] == [
        ("a", "", "succeeded"),
        ("big", "", "succeeded"),
        ("say", "", "succeeded"),
        ("sq", "each[0]", "succeeded"),
        ("sq", "each[1]", "succeeded"),
        ("sq", "each[2]", "succeeded"),
        ("each", "", "succeeded"),
    ]
    assert delivery is not None
    assert (delivery.verdict, delivery.status) == ("accepted", 201)
    assert again.replayed
    assert again.answer is not None
    assert (again.answer.status, again.answer.body) == (201, b"big 12")
    assert (stats.completed, stats.failed, stats.running) == (2, 0, 0)
    node_counts = {n.name.split("/")[-1]: n.completed for n in stats.nodes}
    assert node_counts["sq"] == 6


async def test_a_failure_is_answered_500_and_stored_failed(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = load_workflow_text(
        textwrap.dedent(
            """
            key: ends-badly
            trigger: {type: webhook, mode: sync}
            nodes:
              - {key: stop, type: end, status: failed, output: nope}
            """
        ),
        source="e.yaml",
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        admission = await engine.submit("ends-badly")
        assert admission.handle is not None
        answer = await admission.handle.wait_answer()
        await admission.handle.wait_finished()
        await store.flush()
        record = await store.get_execution(admission.execution_id)
    assert answer.status == 500
    assert record is not None
    assert (record.status, record.error) == (
        "failed",
        "ended by an 'end' node with status failed",
    )


async def test_one_too_long_to_run_at_admission_is_queued_as_usual(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    wf = load_workflow_text(
        textwrap.dedent(
            """
            key: long-sync
            trigger: {type: webhook, mode: sync}
            nodes:
              - key: each
                type: loop
                items: 300
                body: [{key: step, type: set, values: {i: "{{$scopes.each.index}}"}}]
            """
        ),
        source="l.yaml",
    )
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        await store.flush()
        before = store.statistics().ops
        outcome = await engine.run("long-sync")
        await store.flush()
        ops = store.statistics().ops - before
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "succeeded"
    assert len(outcome.output) == 300
    assert len(jobs) == 301  # each node once: nothing of the abandoned in-memory run kept
    assert ops > 1  # accepted queued, then run by the workflow's runner


SCRIPTED = """
key: scripted
trigger: {type: webhook, mode: sync}
concurrency: {max: 2, queue: 10}
nodes:
  - key: script
    type: code
    code: |
      const started = Date.now();
      while (Date.now() - started < context.data.ms) {}
      return {n: context.data.n * 2};
  - {key: out, type: set, values: {n: "{{$nodes.script.n}}"}}
"""


def test_a_sync_workflow_with_code_runs_whole_unless_code_is_in_a_parallel_node() -> None:
    scripted = load_workflow_text(textwrap.dedent(SCRIPTED), source="scripted.yaml")
    assert runs_inline(scripted)
    parallel = load_workflow_text(
        textwrap.dedent(
            """
            key: par
            trigger: {type: webhook, mode: sync}
            nodes:
              - key: both
                type: parallel
                branches:
                  - [{key: one, type: code, code: "return 1;"}]
                  - [{key: two, type: set, values: {x: 2}}]
            """
        ),
        source="par.yaml",
    )
    assert not runs_inline(parallel)


async def test_code_runs_at_admission_within_concurrency_max(make_store: StoreFactory) -> None:
    scripted = load_workflow_text(textwrap.dedent(SCRIPTED), source="scripted.yaml")
    store = make_store()
    async with open_engine([scripted], store=store) as engine:
        first = await engine.submit("scripted", data={"n": 1, "ms": 0})
        if store.backend.coordinator is None:  # (a cluster shares the limits: it queues)
            # Run whole at admission: stored finished before submit returned.
            record = await store.get_execution(first.execution_id)
            assert record is not None
            assert (record.status, record.output) == ("succeeded", {"n": 2})
        # max 2: runs at admission and queued ones share the two slots.
        outcomes = []

        async def send(n: int) -> None:
            admission = await engine.submit("scripted", data={"n": n, "ms": 200})
            assert admission.handle is not None
            outcomes.append(await admission.handle.wait_finished())

        async with trio.open_nursery() as nursery:
            for n in (2, 3, 4, 5):
                nursery.start_soon(send, n)
        assert sorted(o.output["n"] for o in outcomes) == [4, 6, 8, 10]  # type: ignore[index]
        edges = []
        for outcome in outcomes:
            [job] = [j for j in await store.list_jobs(outcome.execution_id) if j.node == "script"]
            assert job.finished_at is not None
            edges += [(job.started_at, 1), (job.finished_at, -1)]
        running = most = 0
        for _, step in sorted(edges):
            running += step
            most = max(most, running)
        assert most <= 2


SPIN = """
key: spin
trigger: {{type: webhook, mode: sync}}
timeout: {workflow}
nodes:
  - key: script
    type: code{node}
    code: "for (;;) {{}}"
"""


async def test_code_at_admission_ends_at_the_earlier_of_its_timeout_and_the_workflows() -> None:
    """One cancel scope carries both deadlines: whichever comes first says how it ends."""
    workflow_first = load_workflow_text(SPIN.format(workflow="300ms", node=""), source="a")
    node_first = load_workflow_text(
        SPIN.format(workflow="20s", node="\n    timeout: 300ms").replace("key: spin", "key: spin2"),
        source="b",
    )
    assert runs_inline(workflow_first)
    async with open_engine([workflow_first, node_first]) as engine:
        ended = await engine.run("spin")
        assert (ended.status, ended.error) == (
            "timed_out",
            "the workflow timeout (300ms) passed",
        )
        [job] = await engine.store.list_jobs(ended.execution_id)
        assert job.status == "cancelled"
        ended = await engine.run("spin2")
        assert ended.status == "failed"
        [job] = await engine.store.list_jobs(ended.execution_id)
        assert (job.status, job.error) == ("timed_out", "timed out after 300ms")
