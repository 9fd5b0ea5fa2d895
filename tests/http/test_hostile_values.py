"""Values a webhook sender chose, against a real server: what the sender gets back.

Issue 13, finding 9: NaN and Infinity were echoed as invalid JSON, and a failed sync
answer told the sender what an internal name resolves to.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Server, assert_problem, running_server

ECHO = """
key: echo
trigger: {type: webhook, path: echo, mode: sync}
nodes:
  - {key: answer, type: response, body: {pong: "{{$context.data.ping}}"}}
"""
PROBE = """
key: probe
trigger: {type: webhook, path: probe, mode: sync}
nodes:
  - {key: call, type: http, url: "http://localhost:9/{{$context.data.path}}"}
"""


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_nan_and_infinity_in_a_json_body_are_400_not_echoed(number: bytes) -> None:
    async with running_server([ECHO]) as server:
        response = await server.client.post(
            "/api/webhooks/echo",
            content=b'{"ping": ' + number + b"}",
            headers={"content-type": "application/json"},
        )
        problem = assert_problem(response, 400)
        assert "not valid JSON" in problem["detail"]
        assert "pong" not in response.text
        fine = await server.client.post("/api/webhooks/echo", json={"ping": 1.5})
        assert fine.json() == {"pong": 1.5}


async def test_a_refused_internal_target_is_not_described_to_the_sender() -> None:
    async with running_server([PROBE]) as server:
        response = await server.client.post("/api/webhooks/probe", json={"path": "x"})
        problem = assert_problem(response, 500)
        assert "resolves to" not in response.text
        assert "127.0.0.1" not in response.text
        assert "localhost" not in response.text
        assert "not a public address" in problem["detail"]
        # The operator still finds the host and its address in the job record.
        record = await fetch(server, f"/api/executions/{problem['execution_id']}")
        [job] = record["jobs"]
        assert job["status"] == "failed"
        assert any("localhost (resolves to " in line for line in job["log"])


async def fetch(server: Server, path: str) -> dict[str, Any]:
    response = await server.client.get(path)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document
