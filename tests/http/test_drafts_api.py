"""Authoring through the admin API and the CLI: a draft checked with its errors at their
lines, versions compared, a workflow rolled back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hookline.cli import main
from hookline.http._draft import field_position
from tests.http.conftest import Server, running_server

GREET = """\
key: greet
trigger: {type: webhook, path: greet, mode: sync}
nodes:
  - key: hello
    type: set
    values: {text: "Hello, {{$context.data.name}}"}
  - {key: out, type: end, output: "{{$nodes.hello}}"}
"""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server([GREET]) as running:
        yield running


def test_field_paths_map_to_their_lines() -> None:
    assert field_position(GREET, "nodes[0].type") == (5, 5)
    assert field_position(GREET, "nodes[1]") == (7, 5)
    assert field_position(GREET, "trigger.mode") == (2, 39)
    # A missing field points at its nearest written parent.
    assert field_position(GREET, "nodes[0].retry.attempts") == (4, 5)
    assert field_position("{not yaml", "nodes") == (1, 1)


async def test_a_draft_is_checked_with_errors_at_their_lines(server: Server) -> None:
    answer = await server.client.post("/api/workflows/validate", content=GREET)
    assert answer.status_code == 200
    document = answer.json()
    assert document["valid"] is True
    assert document["key"] == "greet"
    assert [row["key"] for row in document["tree"]] == ["hello", "out"]

    broken = GREET.replace("type: set", "type: sett")
    document = (await server.client.post("/api/workflows/validate", content=broken)).json()
    assert document["valid"] is False
    [error] = document["errors"]
    assert error["field"] == "nodes[0].type"
    assert error["line"] == 5
    assert "a node type" in error["message"]

    syntax = (await server.client.post("/api/workflows/validate", content="key: [a\n")).json()
    assert syntax["errors"][0]["line"] == 2

    # An edit keeps its key; the route of another workflow is taken.
    other = GREET.replace("key: greet", "key: other")
    document = (
        await server.client.post("/api/workflows/validate", params={"key": "greet"}, content=other)
    ).json()
    assert document["errors"][0]["field"] == "key"
    assert document["errors"][0]["line"] == 1
    assert server.engine.workflows["greet"].text == GREET  # nothing saved


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    status = await trio.to_thread.run_sync(main, list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


async def test_versions_diff_and_rollback_by_api_and_cli(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = GREET.replace("Hello, ", "Hi, ")
    assert (await server.client.put("/api/workflows/greet", content=changed)).status_code == 200

    answer = await server.client.get("/api/workflows/greet/diff", params={"from": 1, "to": 2})
    assert answer.status_code == 200
    diff = answer.json()["diff"]
    assert '-    values: {text: "Hello, {{$context.data.name}}"}' in diff
    assert '+    values: {text: "Hi, {{$context.data.name}}"}' in diff

    status, out = await run(capsys, "workflows", "diff", "greet", "1", "2", "--url", server.url)
    assert status == 0
    assert "+++ greet version 2" in out
    assert '+    values: {text: "Hi, {{$context.data.name}}"}' in out

    status, out = await run(capsys, "workflows", "rollback", "greet", "1", "--url", server.url)
    assert status == 0, out
    assert "greet rolled back to version 1" in out
    assert server.engine.workflows["greet"].text == GREET
    reply = await server.client.post("/api/webhooks/greet", json={"name": "Ada"})
    assert reply.json()["output"] == {"text": "Hello, Ada"}

    missing = await server.client.post("/api/workflows/greet/rollback", json={"version": 9})
    assert missing.status_code == 404
    bad = await server.client.post("/api/workflows/greet/rollback", json={"version": "1"})
    assert bad.status_code == 422
    query = await server.client.get("/api/workflows/greet/diff", params={"from": "x", "to": 1})
    assert query.status_code == 400
