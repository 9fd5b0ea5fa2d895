"""Test runs from the editor page: a test delivery to a draft, outside nodes live or
answered from a recorded execution, verify checked unless skipped, and nothing of it in
the server's own records."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.http.conftest import Server, gate, running_server

SIGNUP = """\
key: signup
trigger:
  type: webhook
  path: signup
  mode: sync
  verify:
    - bearer: {secret: "s3cret-token-for-tests"}
nodes:
  - key: saved
    type: create
    collection: people
    values: {name: "{{$context.data.name}}"}
  - key: reply
    type: response
    status: 201
    body: {id: "{{$nodes.saved.id}}", name: "{{$nodes.saved.name}}"}
"""
AUTH = {"authorization": "Bearer s3cret-token-for-tests"}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server([SIGNUP]) as running:
        yield running


async def csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/ui/workflows/signup/edit")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def run_test(client: httpx.AsyncClient, **form: str) -> str:
    """Start a test run through the UI's form; returns its page once it has ended."""
    fields = {"csrf": await csrf(client), "text": SIGNUP, "source": "written", **form}
    started = await client.post("/ui/test-runs", data=fields)
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    pages: list[str] = []

    async def ended() -> bool:
        pages.append((await client.get(location)).text)
        return 'data-status="running"' not in pages[-1].split("<h2>", 1)[0]

    for _ in range(250):  # polled as the page's own refresh does, for up to ~5 s
        if await ended():
            return pages[-1]
        await trio.sleep(0.02)
    raise AssertionError("the test run did not end")


def status_of(page: str) -> str:
    found = re.search(r'id="test-run-status">([a-z_]+)<', page)
    assert found is not None
    return found.group(1)


async def test_verify_is_checked_unless_skipped(server: Server) -> None:
    body = {"body": '{"name": "Ada"}', "headers": "content-type: application/json"}
    refused = await run_test(server.client, **body)
    assert status_of(refused) == "refused"
    assert 'id="test-run-error"' in refused

    signed = await run_test(
        server.client,
        **{**body, "headers": body["headers"] + "\nauthorization: " + AUTH["authorization"]},
    )
    assert status_of(signed) == "succeeded"
    assert "Ada" in signed

    skipped = await run_test(server.client, **body, skip_verify="on")
    assert status_of(skipped) == "succeeded"
    assert "skipped" in skipped
    # Live collection writes of a test go to its own store: none reached the server's.
    assert (await server.engine.store.list_executions(workflow="signup")).items == ()


async def test_outside_nodes_answered_from_a_recorded_execution(server: Server) -> None:
    answer = await server.client.post("/api/webhooks/signup", json={"name": "Ada"}, headers=AUTH)
    assert answer.status_code == 201
    recorded_id = answer.json()["id"]
    [execution] = (await server.engine.store.list_executions(workflow="signup")).items
    [delivery] = (await server.engine.store.list_deliveries(workflow="signup")).items

    page = await run_test(
        server.client,
        source="recorded",
        delivery_id=delivery.id,
        outside="recorded",
        execution_id=execution.id,
        skip_verify="on",
    )
    assert status_of(page) == "succeeded"
    assert "answered from execution" in page
    assert recorded_id in page  # the create node yielded the recorded record, unmade
    assert len((await server.engine.store.list_executions(workflow="signup")).items) == 1


async def test_a_draft_that_does_not_load_is_refused(server: Server) -> None:
    fields = {
        "csrf": await csrf(server.client),
        "text": SIGNUP.replace("type: create", "type: creat"),
        "source": "written",
    }
    answer = await server.client.post("/ui/test-runs", data=fields)
    assert answer.status_code == 422
    assert "nodes[0].type" in answer.text
    forged = await server.client.post("/ui/test-runs", data={**fields, "csrf": "no"})
    assert forged.status_code == 403


async def test_test_runs_through_the_admin_api(server: Server) -> None:
    started = await server.client.post(
        "/api/test-runs",
        json={
            "definition": SIGNUP,
            "delivery": {
                "headers": {"content-type": "application/json", **AUTH},
                "body": {"name": "Bo"},
            },
        },
    )
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    for _ in range(250):
        run = (await server.client.get(location)).json()
        if run["status"] != "running":
            break
        await trio.sleep(0.02)
    assert run["status"] == "succeeded"
    assert run["test"] is True
    assert run["answer"]["status"] == 201
    assert '"name":"Bo"' in run["answer"]["body"]
    assert [(row["key"], row["status"]) for row in run["tree"]] == [
        ("saved", "succeeded"),
        ("reply", "succeeded"),
    ]
    assert (await server.engine.store.list_executions(workflow="signup")).items == ()
    metrics = (await server.client.get("/metrics")).text
    finished = [line for line in metrics.splitlines() if "executions_finished" in line]
    assert not [line for line in finished if "signup" in line and not line.startswith("#")]

    bad = await server.client.post("/api/test-runs", json={"definition": "key: [", "delivery": {}})
    assert bad.status_code == 422
    assert (await server.client.get("/api/test-runs/nope")).status_code == 404


GATED = """\
key: gated
trigger: {type: webhook, path: gated}
nodes:
  - {key: first, type: set, values: {a: 1}}
  - {key: wait, type: http_test_gate, name: test-run}
  - {key: last, type: set, values: {b: 2}}
"""


async def test_the_tree_fills_in_while_the_run_runs(server: Server) -> None:
    started = await server.client.post(
        "/api/test-runs", json={"definition": GATED, "delivery": {"body": "{}"}}
    )
    location = started.headers["location"]
    held = gate("test-run")
    await held.entered.wait()
    run = (await server.client.get(location)).json()
    assert run["status"] == "running"
    statuses = {row["key"]: row["status"] for row in run["tree"]}
    # A job shows once the store has it: at its end, or at a checkpoint (delay nodes).
    assert statuses["first"] == "succeeded"
    assert statuses["wait"] in ("running", "not_run")
    assert statuses["last"] == "not_run"
    page = (await server.client.get(f"/ui/test-runs/{run['id']}")).text
    assert 'data-refresh-ms="700"' in page  # the page refreshes itself while it runs

    held.open()
    for _ in range(250):
        run = (await server.client.get(location)).json()
        if run["status"] != "running":
            break
        await trio.sleep(0.02)
    assert [row["status"] for row in run["tree"]] == ["succeeded"] * 3
    page = (await server.client.get(f"/ui/test-runs/{run['id']}")).text
    assert 'data-refresh-ms="0"' in page
