"""The editor pages without a browser: the live check, saving (also without
JavaScript), a taken key refused for a new workflow, the diff page and rollback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.http.conftest import Server, running_server

GREET = """\
key: greet
trigger: {type: webhook, path: greet, mode: sync}
nodes:
  - {key: out, type: end, output: {hello: "{{$context.data.name}}"}}
"""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server([GREET]) as running:
        yield running


async def csrf(client: httpx.AsyncClient, page: str = "/ui/workflows/new") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get(page)).text)
    assert found is not None
    return found.group(1)


async def test_the_live_check_needs_the_session_token(server: Server) -> None:
    token = await csrf(server.client)
    headers = {"x-csrf-token": token}
    other = GREET.replace("greet", "hi")
    answer = await server.client.post(
        "/ui/workflows/draft", json={"text": other, "key": ""}, headers=headers
    )
    assert answer.status_code == 200
    document = answer.json()
    assert document["valid"] is True
    assert 'data-node="out"' in document["tree_html"]

    # A new workflow may not take an existing key: saving it would replace that one.
    taken = (
        await server.client.post("/ui/workflows/draft", json={"text": GREET}, headers=headers)
    ).json()
    assert taken["valid"] is False
    assert taken["errors"][0]["line"] == 1
    assert "a key no workflow has" in taken["errors"][0]["message"]

    forged = await server.client.post("/ui/workflows/draft", json={"text": GREET})
    assert forged.status_code == 403


async def test_saving_a_form_makes_versions_to_compare_and_roll_back(server: Server) -> None:
    token = await csrf(server.client, "/ui/workflows/greet/edit")
    changed = GREET.replace("hello", "hi")
    saved = await server.client.post(
        "/ui/workflows/save", data={"csrf": token, "key": "greet", "text": changed}
    )
    assert saved.status_code == 303
    assert saved.headers["location"].endswith("/ui/workflows/greet/edit")
    assert server.engine.workflows["greet"].text == changed
    page = (await server.client.get("/ui/workflows/greet/edit")).text
    assert "saved greet as version 2" in page
    assert 'data-version="1"' in page

    diff = (await server.client.get("/ui/workflows/greet/diff?from=1&to=2")).text
    assert '<span class="del">-  - {key: out, type: end, output: {hello:' in diff
    assert '<span class="add">+  - {key: out, type: end, output: {hi:' in diff

    refused = await server.client.post(
        "/ui/workflows/save", data={"csrf": token, "key": "greet", "text": "key: greet\n"}
    )
    assert refused.status_code == 422
    assert "not saved: " in refused.text
    assert server.engine.workflows["greet"].text == changed

    back = await server.client.post(
        "/ui/workflows/greet/rollback", data={"csrf": token, "version": "1"}
    )
    assert back.status_code == 303
    assert server.engine.workflows["greet"].text == GREET
    forged = await server.client.post(
        "/ui/workflows/greet/rollback", data={"csrf": "x", "version": "2"}
    )
    assert forged.status_code == 403
    assert (await server.client.get("/ui/workflows/greet/diff?from=1&to=9")).status_code == 404
