"""The end node: stops the execution with a status and a rendered output."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.definition import Fields
from hookline.errors import DefinitionError
from hookline.nodes._base import End, NodeSpec
from hookline.nodes._registry import parse_node
from hookline.testing import FakeJob


def parse(data: dict[str, Any]) -> NodeSpec:
    return parse_node(Fields(data, source="w.yaml", path="nodes[0]"))


async def test_default_is_succeeded_without_output() -> None:
    result = await parse({"key": "e", "type": "end"}).config.run(FakeJob({}))
    assert result.end == End("succeeded", None)
    assert result.output is None


async def test_failed_with_rendered_output() -> None:
    node = parse(
        {
            "key": "e",
            "type": "end",
            "status": "failed",
            "output": {"reason": "unknown customer {{$context.data.id}}"},
        }
    )
    result = await node.config.run(FakeJob({"context": {"data": {"id": 42}}}))
    assert result.end == End("failed", {"reason": "unknown customer 42"})
    assert result.output == {"reason": "unknown customer 42"}


def test_unknown_status_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse({"key": "e", "type": "end", "status": "cancelled"})
    assert str(caught.value) == (
        "w.yaml: nodes[0].status: expected one of succeeded, failed, got 'cancelled'"
    )
