"""The workflows admin API: list, show, put (YAML or JSON), delete, enable/disable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from hookline.engine._engine import open_engine
from hookline.http._serve import serve
from hookline.http._workflows_api import with_enabled
from hookline.store._store import Store
from tests.conftest import StoreFactory
from tests.http.conftest import ORDERS, Server, assert_problem, running_server

GREET = """\
# Says hello.
key: greet
title: Greeter
trigger: {type: webhook, path: greet, mode: sync}
nodes:
  - {key: out, type: end, output: {hello: "{{$context.data.name}}"}}
"""


async def test_list_shows_every_workflow_with_its_state_and_route(server: Server) -> None:
    answer = (await server.client.get("/api/workflows")).json()

    by_key = {item["key"]: item for item in answer["workflows"]}
    assert sorted(by_key) == sorted(server.engine.workflows)
    assert answer["cursor"] is None
    assert by_key["paused"]["enabled"] is False
    assert by_key["orders"]["trigger"] == {
        "path": "orders/{id}",
        "methods": ["POST", "PUT"],
        "mode": "async",
    }
    assert by_key["orders"]["statistics"]["completed"] == 0
    assert by_key["paused"]["statistics"] is None  # disabled: no supervisor runs it


async def test_show_gives_the_definition_text(server: Server) -> None:
    item = (await server.client.get("/api/workflows/orders")).json()

    assert item["format"] == "yaml"
    assert yaml.safe_load(item["definition"])["key"] == "orders"
    assert_problem(await server.client.get("/api/workflows/nope"), 404)


async def test_put_yaml_creates_a_workflow_that_serves_at_once(server: Server) -> None:
    created = await server.client.put(
        "/api/workflows/greet", content=GREET, headers={"content-type": "application/yaml"}
    )

    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/workflows/greet"
    answer = await server.client.post("/api/webhooks/greet", json={"name": "Ada"})
    assert answer.json()["output"] == {"hello": "Ada"}

    changed = GREET.replace("hello:", "hi:")
    replaced = await server.client.put("/api/workflows/greet", content=changed)
    assert replaced.status_code == 200
    answer = await server.client.post("/api/webhooks/greet", json={"name": "Bo"})
    assert answer.json()["output"] == {"hi": "Bo"}


async def test_put_json_is_accepted_too(server: Server) -> None:
    definition = yaml.safe_load(GREET)
    response = await server.client.put("/api/workflows/greet", json=definition)

    assert response.status_code == 201, response.text
    assert response.json()["format"] == "json"
    assert json.loads(response.json()["definition"]) == definition


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        (GREET.replace("output: {", "timeout: soon, output: {"), "nodes[0].timeout", "duration"),
        (GREET.replace("key: greet", "key: other"), "key", "the key in the URL"),
        (GREET.replace("path: greet", 'path: "orders/{x}"'), "trigger.path", "a route not served"),
        (GREET.replace("type: end", "type: teleport"), "nodes[0].type", "node type"),
        ("key: greet\nnodes: [\n", "", "YAML"),
    ],
)
async def test_an_invalid_definition_is_a_422_naming_the_field(
    server: Server, text: str, field: str, expected: str
) -> None:
    response = await server.client.put("/api/workflows/greet", content=text)

    problem = assert_problem(response, 422)
    assert problem["field"] == field
    assert expected.lower() in problem["expected"].lower() + problem["detail"].lower()
    # Nothing was applied.
    assert "greet" not in server.engine.workflows


async def test_dry_run_only_validates(server: Server) -> None:
    response = await server.client.put("/api/workflows/greet?dry_run=true", content=GREET)

    assert response.status_code == 200
    assert response.json()["valid"] is True
    assert "greet" not in server.engine.workflows


async def test_delete_removes_the_route(server: Server) -> None:
    response = await server.client.delete("/api/workflows/orders")

    assert response.status_code == 204
    assert_problem(await server.client.post("/api/webhooks/orders/1", json={}), 404)
    assert_problem(await server.client.get("/api/workflows/orders"), 404)
    assert_problem(await server.client.delete("/api/workflows/orders"), 404)


async def test_patch_disables_and_enables(server: Server) -> None:
    off = await server.client.patch("/api/workflows/orders", json={"enabled": False})

    assert off.status_code == 200
    assert off.json()["enabled"] is False
    refused = await server.client.post("/api/webhooks/orders/1", json={"n": 1})
    assert_problem(refused, 503)
    assert "retry-after" in refused.headers

    on = await server.client.patch("/api/workflows/orders", json={"enabled": True})
    assert on.json()["enabled"] is True
    assert (await server.client.post("/api/webhooks/orders/1", json={"n": 1})).status_code == 202


@pytest.mark.parametrize("body", [{"enabled": "no"}, {"title": "x"}, {}, [1]])
async def test_patch_takes_only_enabled(server: Server, body: object) -> None:
    problem = assert_problem(await server.client.patch("/api/workflows/orders", json=body), 422)
    assert "enabled" in problem["detail"]
    assert_problem(await server.client.patch("/api/workflows/nope", json={"enabled": True}), 404)


async def test_changes_need_an_admin_key_when_keys_are_set(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], admin_keys=["k1"], store=make_store()) as server:
        put = await server.client.put("/api/workflows/greet", content=GREET)
        patch = await server.client.patch("/api/workflows/orders", json={"enabled": False})
        delete = await server.client.delete(
            "/api/workflows/orders", headers={"authorization": "Bearer wrong"}
        )
        assert server.engine.workflows["orders"].enabled
    assert_problem(put, 401)
    assert_problem(patch, 401)
    assert_problem(delete, 403)


# -- a workflows folder is kept in step ----------------------------------------------------


@asynccontextmanager
async def folder_server(folder: Path, store: Store) -> AsyncIterator[Server]:
    async with open_engine(folder, store=store) as engine, trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve, engine, bind="127.0.0.1:0"))
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            yield Server(engine, urls[0], client)
        nursery.cancel_scope.cancel()


async def test_changes_are_written_to_the_workflows_folder(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    (tmp_path / "orders.yaml").write_text(ORDERS.replace("key: orders", "# mine\nkey: orders"))
    async with folder_server(tmp_path, make_store()) as server:
        await server.client.put("/api/workflows/greet", content=GREET)
        await server.client.patch("/api/workflows/orders", json={"enabled": False})
        await server.client.delete("/api/workflows/greet")
        await server.client.put("/api/workflows/greet", json=yaml.safe_load(GREET))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["greet.json", "orders.yaml"]
    orders = (tmp_path / "orders.yaml").read_text()
    assert "# mine" in orders  # the comment survived the edit
    assert yaml.safe_load(orders)["enabled"] is False
    # A restart loads what the API left.
    async with folder_server(tmp_path, make_store()) as server:
        assert sorted(server.engine.workflows) == ["greet", "orders"]
        assert not server.engine.workflows["orders"].enabled


@pytest.mark.parametrize(
    "text",
    [
        "key: a  # the key\nnodes: []\n",
        "key: a\nenabled: true\nnodes: []\n",
        "{key: a, enabled: true, nodes: []}\n",
    ],
)
def test_with_enabled_sets_the_top_level_field_only(text: str) -> None:
    changed = with_enabled(text, enabled=False, json_text=False)
    assert yaml.safe_load(changed) == {**yaml.safe_load(text), "enabled": False}
    assert (
        with_enabled('{"key": "a"}', enabled=True, json_text=True)
        == '{\n  "key": "a",\n  "enabled": true\n}\n'
    )
