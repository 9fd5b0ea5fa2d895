"""The json_query node: JMESPath compiled at load, run over a rendered source."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.definition import Fields
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeSpec
from hookline.nodes._registry import parse_node
from hookline.testing import FakeJob

ORDER = {"id": 7, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 0}, {"sku": "c", "qty": 5}]}


def parse(data: dict[str, Any]) -> NodeSpec:
    return parse_node(
        Fields({"key": "q", "type": "json_query", **data}, source="w.yaml", path="nodes[0]")
    )


async def run(spec: NodeSpec, variables: dict[str, Any]) -> Any:
    return (await spec.config.run(FakeJob(variables, spec=spec))).output


async def test_the_query_runs_over_the_request_data_by_default() -> None:
    spec = parse({"query": "items[?qty > `0`].sku"})
    assert await run(spec, {"context": {"data": ORDER}}) == ["a", "c"]


async def test_the_source_is_a_template() -> None:
    spec = parse({"source": "{{$nodes.fetch.data}}", "query": "sum(items[*].qty)"})
    assert await run(spec, {"nodes": {"fetch": {"data": ORDER}}}) == 7
    literal = parse({"source": {"a": ["{{$context.data.id}}", 2]}, "query": "a[0]"})
    assert await run(literal, {"context": {"data": ORDER}}) == 7


async def test_a_path_that_finds_nothing_gives_null() -> None:
    spec = parse({"query": "customer.email"})
    assert await run(spec, {"context": {"data": ORDER}}) is None
    assert await run(spec, {}) is None


async def test_a_query_failing_on_the_data_fails_the_job() -> None:
    spec = parse({"query": "length(id)"})
    with pytest.raises(NodeError, match="length"):
        await run(spec, {"context": {"data": ORDER}})


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"query": "items[?qty >"}, "nodes[0].query", "valid JMESPath"),
        ({"query": ""}, "nodes[0].query", "valid JMESPath"),
        ({}, "nodes[0].query", "JMESPath expression"),
        ({"query": 5}, "nodes[0].query", "JMESPath expression"),
        ({"query": "a", "source": "{{$context"}, "nodes[0].source", "template"),
    ],
)
def test_bad_definitions_are_refused_at_load(
    fields: dict[str, Any], path: str, expected: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(fields)
    assert caught.value.path == path
    assert expected in caught.value.expected
