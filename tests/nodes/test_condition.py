"""The condition node: picks then or else from a comparison over the variables."""

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


NODE = {
    "key": "big",
    "type": "condition",
    "if": {"all": [{"gt": ["{{$context.data.n}}", 10]}, {"exists": ["{{$context.data.id}}"]}]},
    "then": [{"key": "yes", "type": "end"}],
    "else": [{"key": "no", "type": "end", "status": "failed"}, {"key": "after", "type": "end"}],
}


async def test_true_runs_then() -> None:
    node = parse(NODE)
    result = await node.config.run(FakeJob({"context": {"data": {"n": 11, "id": "a"}}}))
    assert result.output == "then"
    assert [n.key for n in result.branch] == ["yes"]


async def test_false_runs_else() -> None:
    node = parse(NODE)
    result = await node.config.run(FakeJob({"context": {"data": {"n": 11}}}))
    assert result.output == "else"
    assert [n.key for n in result.branch] == ["no", "after"]


async def test_missing_else_is_an_empty_branch() -> None:
    node = parse({"key": "c", "type": "condition", "if": {"equal": ["{{$context.data.x}}", 1]}})
    result = await node.config.run(FakeJob({"context": {"data": {"x": 2}}}))
    assert (result.output, result.branch) == ("else", ())


def test_nested_nodes_are_part_of_the_tree() -> None:
    assert [n.key for n in parse(NODE).walk()] == ["big", "yes", "no", "after"]


def test_if_is_required() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse({"key": "c", "type": "condition", "then": []})
    assert str(caught.value) == (
        "w.yaml: nodes[0].if: expected a comparison such as {equal: [a, b]}; the field is missing"
    )


def test_nested_node_errors_name_their_place() -> None:
    bad = {**NODE, "then": [{"key": "yes", "type": "end", "timeout": "soon"}]}
    with pytest.raises(DefinitionError) as caught:
        parse(bad)
    assert caught.value.path == "nodes[0].then[0].timeout"
