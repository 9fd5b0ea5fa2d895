"""The response node: builds the answer a sync webhook gets now."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookline.definition import Fields
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeSpec
from hookline.nodes._registry import parse_node
from hookline.store._records import Answer
from hookline.testing import FakeJob


def parse(data: dict[str, Any]) -> NodeSpec:
    return parse_node(Fields(data, source="w.yaml", path="nodes[0]"))


def response(**fields: Any) -> NodeSpec:
    return parse({"key": "r", "type": "response", **fields})


VARIABLES = {"context": {"data": {"code": 201, "name": "Ann", "evil": "a\r\nSet-Cookie: x=1"}}}


async def test_string_body_is_plain_text_with_status_200() -> None:
    result = await response(body="hello {{$context.data.name}}").config.run(FakeJob(VARIABLES))
    assert result.answer == Answer(
        status=200,
        headers=(("content-type", "text/plain; charset=utf-8"),),
        body=b"hello Ann",
    )
    assert result.output == {"status": 200, "headers": {}, "body": "hello Ann"}


async def test_other_bodies_are_json_and_status_may_be_a_template() -> None:
    node = response(
        status="{{$context.data.code}}",
        headers={"X-Count": 5, "X-Name": "{{$context.data.name}}"},
        body={"ok": True, "name": "{{$context.data.name}}", "n": [1, 2]},
    )
    result = await node.config.run(FakeJob(VARIABLES))
    assert result.answer is not None
    assert result.answer.status == 201
    assert result.answer.headers == (
        ("X-Count", "5"),
        ("X-Name", "Ann"),
        ("content-type", "application/json"),
    )
    assert json.loads(result.answer.body) == {"ok": True, "name": "Ann", "n": [1, 2]}
    assert result.output["body"] == {"ok": True, "name": "Ann", "n": [1, 2]}


async def test_a_content_type_header_wins() -> None:
    node = response(headers={"Content-Type": "text/xml"}, body="<ok/>")
    result = await node.config.run(FakeJob({}))
    assert result.answer == Answer(200, (("Content-Type", "text/xml"),), b"<ok/>")


async def test_no_body_is_empty_without_content_type() -> None:
    result = await response(status=204).config.run(FakeJob({}))
    assert result.answer == Answer(204, (), b"")


async def test_a_line_break_from_data_cannot_forge_headers() -> None:
    node = response(headers={"X-Name": "{{$context.data.evil}}"})
    with pytest.raises(NodeError, match="line break"):
        await node.config.run(FakeJob(VARIABLES))


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_nan_or_infinity_in_a_json_body_fails_the_job(number: float) -> None:
    # Issue 13, finding 9: {"pong": NaN} was answered, which no JSON parser reads.
    node = response(body={"pong": "{{$context.data.ping}}"})
    with pytest.raises(NodeError, match="NaN and Infinity cannot be sent as JSON"):
        await node.config.run(FakeJob({"context": {"data": {"ping": number}}}))


async def test_a_status_template_that_is_no_status_fails_the_job() -> None:
    node = response(status="{{$context.data.name}}")
    with pytest.raises(NodeError, match="status"):
        await node.config.run(FakeJob(VARIABLES))


async def test_a_static_status_string_is_read_at_load() -> None:
    result = await response(status="202").config.run(FakeJob({}))
    assert result.answer is not None
    assert result.answer.status == 202


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"status": 99}, "nodes[0].status"),
        ({"status": "soon"}, "nodes[0].status"),
        ({"status": True}, "nodes[0].status"),
        ({"headers": {"Bad Name": "x"}}, "nodes[0].headers.Bad Name"),
        ({"headers": ["x"]}, "nodes[0].headers"),
        ({"body": "{{$context.data"}, "nodes[0].body"),
    ],
)
def test_bad_fields_are_refused_at_load(fields: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        response(**fields)
    assert caught.value.path == path
