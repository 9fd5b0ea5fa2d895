"""The set node: renders its values against the variables; its result is that object."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.definition import Fields
from hookline.errors import DefinitionError
from hookline.nodes._base import NodeSpec
from hookline.nodes._registry import parse_node
from hookline.testing import FakeJob


def parse(data: dict[str, Any]) -> NodeSpec:
    return parse_node(Fields(data, source="w.yaml", path="nodes[0]"))


async def test_values_render_typed_and_interpolated() -> None:
    node = parse(
        {
            "key": "s",
            "type": "set",
            "values": {
                "n": "{{$context.data.n}}",
                "greeting": "hi {{$context.data.name}}",
                "fixed": [1, "two"],
                "missing": "{{$nodes.nope.x}}",
            },
        }
    )
    result = await node.config.run(FakeJob({"context": {"data": {"n": 5, "name": "Ann"}}}))
    assert result.output == {"n": 5, "greeting": "hi Ann", "fixed": [1, "two"], "missing": None}
    assert (result.branch, result.end, result.answer) == ((), None, None)


async def test_values_see_earlier_node_results() -> None:
    node = parse({"key": "s", "type": "set", "values": {"branch": "{{$nodes.branch.name}}"}})
    result = await node.config.run(FakeJob({"nodes": {"branch": {"name": "main"}}}))
    assert result.output == {"branch": "main"}


@pytest.mark.parametrize(
    ("values", "path"),
    [
        (None, "nodes[0].values"),
        (["a"], "nodes[0].values"),
        ({"greeting": "hi {{$context.data"}, "nodes[0].values.greeting"),
    ],
)
def test_bad_values_are_refused_at_load(values: object, path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse({"key": "s", "type": "set", "values": values})
    assert caught.value.path == path
