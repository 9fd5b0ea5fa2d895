"""Custom node types: async functions of a NodeCall, given to one engine (public API only)."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import hookline
from hookline.errors import NodeError

DOCS = Path(__file__).parent.parent.parent / "docs" / "custom-nodes.md"


async def double(call: hookline.NodeCall) -> object:
    call.log(f"doubling {call.params['value']}")
    return {"value": call.params["value"] * 2}


async def echo(call: hookline.NodeCall) -> object:
    return {
        "params": call.params,
        "execution_id": call.execution_id,
        "node_key": call.node_key,
        "attempt": call.attempt,
    }


def workflow(text: str, nodes: Mapping[str, Any]) -> hookline.Workflow:
    return hookline.load_workflow_text(textwrap.dedent(text), source="test.yaml", nodes=nodes)


async def run_one(
    nodes: Mapping[str, Any], text: str, **request: Any
) -> tuple[hookline.ExecutionOutcome, list[Any]]:
    wf = workflow(text, nodes)
    async with hookline.open_engine([wf], nodes=nodes) as engine:
        outcome = await engine.run(wf.key, **request)
        jobs = await engine.store.list_jobs(outcome.execution_id)
    return outcome, jobs


async def test_the_output_is_nodes_key_for_the_next_node_and_the_log_is_on_the_job() -> None:
    outcome, jobs = await run_one(
        {"double": double},
        """
        key: doubler
        nodes:
          - {key: twice, type: double, value: "{{$context.data.n}}"}
          - {key: answer, type: set, values: {result: "{{$nodes.twice.value}}"}}
        """,
        data={"n": 21},
    )

    assert (outcome.status, outcome.output) == ("succeeded", {"result": 42})
    twice = next(job for job in jobs if job.node == "twice")
    assert (twice.type, twice.status, twice.output) == ("double", "succeeded", {"value": 42})
    assert list(twice.log) == ["doubling 21"]


async def test_params_are_the_fields_rendered_without_the_ones_every_node_has() -> None:
    outcome, _ = await run_one(
        {"echo": echo},
        """
        key: echoing
        nodes:
          - key: e
            type: echo
            title: Echo
            timeout: 5s
            concurrency: 2
            retry: {attempts: 2, backoff: 0s}
            to: "{{$context.data.who}}"
            greeting: "hello {{$context.data.who}}"
            nested: {list: [1, "{{$context.data.n}}"], plain: text}
            nothing: null
        """,
        data={"who": "ada", "n": 3},
    )

    assert outcome.status == "succeeded", outcome.error
    assert outcome.output == {
        "params": {
            "to": "ada",
            "greeting": "hello ada",
            "nested": {"list": [1, 3], "plain": "text"},
            "nothing": None,
        },
        "execution_id": outcome.execution_id,
        "node_key": "e",
        "attempt": 1,
    }


async def test_params_are_a_fresh_copy_for_each_call() -> None:
    async def spoil(call: hookline.NodeCall) -> object:
        seen = [list(item) for item in call.params["items"]]
        for item in call.params["items"]:
            item.append("spoiled")
        return seen

    nodes = {"spoil": spoil}
    wf = workflow(
        """
        key: spoiling
        nodes:
          - {key: s, type: spoil, items: [[1], ["{{$context.data.x}}"]]}
        """,
        nodes,
    )
    async with hookline.open_engine([wf], nodes=nodes) as engine:
        first = await engine.run("spoiling", data={"x": 2})
        second = await engine.run("spoiling", data={"x": 2})

    assert first.output == second.output == [[1], [2]]


async def test_a_retried_node_sees_its_attempt() -> None:
    async def flaky(call: hookline.NodeCall) -> object:
        if call.attempt < 3:
            raise NodeError(f"attempt {call.attempt} failed")
        return call.attempt

    outcome, jobs = await run_one(
        {"shaky": flaky},
        """
        key: flaking
        nodes:
          - {key: f, type: shaky, retry: {attempts: 3, backoff: 0s}}
        """,
    )

    assert (outcome.status, outcome.output) == ("succeeded", 3)
    assert [(job.attempt, job.status, job.error) for job in jobs] == [
        (1, "failed", "attempt 1 failed"),
        (2, "failed", "attempt 2 failed"),
        (3, "succeeded", None),
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param({"a": {1, 2}}, "a set at $.a", id="set"),
        pytest.param({"a": [1, (2, 3)]}, "a tuple at $.a[1]", id="tuple"),
        pytest.param([{"ok": 1}, {"bad": math.nan}], "nan at $[1].bad", id="nan"),
        pytest.param({"x": -math.inf}, "-inf at $.x", id="inf"),
        pytest.param({1: "one"}, "a key that is not a string (1) at $", id="int-key"),
        pytest.param({"odd key": object()}, 'an object at $["odd key"]', id="object"),
        pytest.param(2**64, "an integer wider than 64 bits at $", id="big-int"),
        pytest.param(b"bytes", "a bytes at $", id="bytes"),
    ],
)
async def test_a_value_json_cannot_hold_fails_the_job_saying_where(
    value: object, problem: str
) -> None:
    async def odd(call: hookline.NodeCall) -> object:
        return value

    outcome, jobs = await run_one(
        {"odd": odd},
        """
        key: odd
        nodes:
          - {key: o, type: odd}
          - {key: after, type: set, values: {ran: true}}
        """,
    )

    message = f"odd() returned a value that cannot be stored as JSON: {problem}"
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.endswith(message)
    assert "node 'o'" in outcome.error
    assert [(job.node, job.status, job.error) for job in jobs] == [("o", "failed", message)]


async def test_a_value_that_contains_itself_fails_the_job() -> None:
    async def cyclic(call: hookline.NodeCall) -> object:
        looped: dict[str, Any] = {"fine": [1, 2]}
        looped["me"] = [looped]
        return looped

    outcome, _ = await run_one({"cyclic": cyclic}, "key: w\nnodes: [{key: c, type: cyclic}]\n")

    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.endswith("a reference to a containing value (a cycle) at $.me[0]")


async def test_every_json_value_is_stored_and_read_back() -> None:
    value = {"s": "x", "i": -(2**63), "f": 1.5, "b": False, "n": None, "l": [[], {}]}

    async def plain(call: hookline.NodeCall) -> object:
        return value

    outcome, jobs = await run_one({"plain": plain}, "key: w\nnodes: [{key: p, type: plain}]\n")

    assert (outcome.status, outcome.output, jobs[0].output) == ("succeeded", value, value)


async def test_an_exception_fails_the_job_with_its_type_and_message_and_the_log_stays() -> None:
    async def broken(call: hookline.NodeCall) -> object:
        call.log("about to break")
        raise ValueError(f"no customer {call.params['id']}")

    outcome, jobs = await run_one(
        {"broken": broken},
        """
        key: breaking
        nodes:
          - {key: b, type: broken, id: "{{$context.data.id}}"}
          - {key: after, type: set, values: {ran: true}}
        """,
        data={"id": 7},
    )

    assert outcome.status == "failed"
    assert outcome.error == "node 'b' failed: ValueError: no customer 7"
    [job] = jobs
    assert (job.node, job.status) == ("b", "failed")
    # The node's own lines, then the traceback of what it raised.
    assert job.log[0] == "about to break"
    assert job.log[1].startswith("Traceback (most recent call last):")
    assert job.log[1].endswith("ValueError: no customer 7")


async def test_a_node_error_fails_the_job_with_its_message_alone() -> None:
    async def refuse(call: hookline.NodeCall) -> object:
        raise NodeError("value: expected a number")

    outcome, _ = await run_one({"refuse": refuse}, "key: w\nnodes: [{key: r, type: refuse}]\n")

    assert (outcome.status, outcome.error) == (
        "failed",
        "node 'r' failed: value: expected a number",
    )


async def test_a_node_past_its_timeout_is_timed_out(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(call: hookline.NodeCall) -> object:
        await trio.sleep(60)
        return "late"

    outcome, jobs = await run_one(
        {"slow": slow}, "key: w\nnodes: [{key: s, type: slow, timeout: 2s}]\n"
    )

    assert outcome.status == "failed"
    assert [(job.status, job.error) for job in jobs] == [("timed_out", "timed out after 2s")]


async def test_an_object_with_an_async_call_method_is_a_node_type() -> None:
    class Adder:
        def __init__(self, amount: int) -> None:
            self.amount = amount

        async def __call__(self, call: hookline.NodeCall) -> object:
            return call.params["to"] + self.amount

    outcome, _ = await run_one({"add": Adder(10)}, "key: w\nnodes: [{key: a, type: add, to: 5}]\n")

    assert (outcome.status, outcome.output) == ("succeeded", 15)


# -- one engine's types -------------------------------------------------------------------


async def test_two_engines_in_one_process_see_only_their_own_types(tmp_path: Path) -> None:
    async def triple(call: hookline.NodeCall) -> object:
        return {"value": call.params["value"] * 3}

    definition = "key: calc\nnodes: [{key: c, type: double, value: 5}]\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "calc.yaml").write_text(definition)
    (tmp_path / "b" / "calc.yaml").write_text(definition)

    async with (
        hookline.open_engine(tmp_path / "a", nodes={"double": double}) as first,
        hookline.open_engine(tmp_path / "b", nodes={"triple": triple}) as second,
    ):
        assert (await first.run("calc")).output == {"value": 10}
        assert first.load_errors == ()
        assert "calc" not in second.workflows
        (error,) = second.load_errors
        assert error.path == "nodes[0].type"
        assert "triple" in error.expected
        assert "double" not in error.expected

    with pytest.raises(hookline.errors.DefinitionError):
        hookline.load_workflow_text(definition, source="calc.yaml")


async def test_a_folder_is_loaded_and_reloaded_with_the_engine_types(tmp_path: Path) -> None:
    (tmp_path / "calc.yaml").write_text("key: calc\nnodes: [{key: c, type: double, value: 1}]\n")

    async with hookline.open_engine(tmp_path, nodes={"double": double}) as engine:
        assert (await engine.run("calc")).output == {"value": 2}
        (tmp_path / "calc.yaml").write_text(
            "key: calc\nnodes: [{key: c, type: double, value: 50}]\n"
        )
        assert await engine.reload() == ()
        assert (await engine.run("calc")).output == {"value": 100}


async def test_a_built_in_type_name_is_refused_at_open_engine() -> None:
    with pytest.raises(ValueError, match="node type 'set' is built in"):
        async with hookline.open_engine(nodes={"set": double}):
            pass


@pytest.mark.parametrize(
    ("nodes", "error", "message"),
    [
        pytest.param({"bad name": double}, ValueError, "node type name 'bad name'", id="name"),
        pytest.param({"sync": lambda call: 1}, TypeError, "expected an async function", id="sync"),
        pytest.param({"none": None}, TypeError, "expected an async function", id="none"),
    ],
)
async def test_a_bad_entry_is_refused_at_open_engine(
    nodes: Mapping[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        async with hookline.open_engine(nodes=nodes):
            pass


async def test_the_admin_api_accepts_a_definition_using_the_engine_types() -> None:
    async with hookline.open_engine(nodes={"double": double}) as engine:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(partial(hookline.serve, engine, bind="127.0.0.1:0"))
            async with httpx.AsyncClient(base_url=urls[0], timeout=10.0) as client:
                put = await client.put(
                    "/api/workflows/calc",
                    content="key: calc\nnodes: [{key: c, type: double, value: 4}]\n",
                    headers={"content-type": "application/yaml"},
                )
                unknown = await client.put(
                    "/api/workflows/other",
                    content="key: other\nnodes: [{key: c, type: triple, value: 4}]\n",
                    headers={"content-type": "application/yaml"},
                )
            nursery.cancel_scope.cancel()
        outcome = await engine.run("calc")

    assert put.status_code == 201, put.text
    assert unknown.status_code == 422
    assert "nodes[0].type" in unknown.text
    assert (outcome.status, outcome.output) == ("succeeded", {"value": 8})


# -- testing a node, and the docs ---------------------------------------------------------


async def test_a_node_call_made_by_hand_tests_a_node_function() -> None:
    call = hookline.NodeCall(params={"value": 4})

    assert await double(call) == {"value": 8}
    assert call.lines == ["doubling 4"]
    assert (call.execution_id, call.node_key, call.attempt) == ("", "", 1)


async def test_the_docs_example_runs_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3, "write, register and test"
    namespace: dict[str, Any] = {"__name__": "custom_nodes_example"}
    exec(compile("\n".join(blocks), str(DOCS), "exec"), namespace)

    await namespace["main"]()
    await namespace["test_double_doubles_and_says_so"]()
    refused = hookline.NodeCall(params={"value": "two"})
    with pytest.raises(NodeError, match="value: expected a number, got 'two'"):
        await namespace["double"](refused)
