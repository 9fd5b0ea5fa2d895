"""Workflow definition versions over HTTP: the versions API, ``workflow_version`` on
executions, and the execution page drawn from the definition the execution ran with."""

from __future__ import annotations

import re

import pytest

from tests.conftest import StoreFactory
from tests.http.conftest import Server, assert_problem, running_server

V1 = """\
key: flow
trigger: {type: webhook, path: flow, mode: sync}
nodes:
  - {key: first, type: set, values: {n: "{{$context.data.n}}"}}
  - key: big
    type: condition
    if: {gt: ["{{$nodes.first.n}}", 10]}
    then:
      - {key: large, type: set, values: {size: large}}
    else:
      - {key: small, type: set, values: {size: small}}
"""
V2 = """\
key: flow
title: Rewritten
trigger: {type: webhook, path: flow, mode: sync}
nodes:
  - {key: only, type: set, values: {n: "{{$context.data.n}}"}}
"""
YAML = {"content-type": "application/yaml"}


def node_classes(page: str) -> dict[str, str]:
    """node key -> status, as the SVG draws them."""
    return dict(re.findall(r'data-node="([^"]+)" data-status="([^"]+)"', page))


async def run(server: Server, n: int) -> str:
    answer = await server.client.post("/api/webhooks/flow", json={"n": n})
    assert answer.status_code == 200, answer.text
    execution_id: str = answer.json()["execution_id"]
    return execution_id


async def versions(server: Server, query: str = "") -> dict[str, object]:
    answer = await server.client.get(f"/api/workflows/flow/versions{query}")
    assert answer.status_code == 200, answer.text
    document: dict[str, object] = answer.json()
    return document


async def test_changing_a_workflow_keeps_its_earlier_definition(make_store: StoreFactory) -> None:
    async with running_server([V1], store=make_store()) as server:
        before = await run(server, 3)
        changed = await server.client.put("/api/workflows/flow", content=V2, headers=YAML)
        assert changed.status_code == 200, changed.text
        after = await run(server, 3)

        listed = await versions(server)
        assert [(v["version"], v["current"]) for v in listed["versions"]] == [  # type: ignore[attr-defined]
            (2, True),
            (1, False),
        ]
        assert listed["cursor"] is None
        old = (await server.client.get("/api/workflows/flow/versions/1")).json()
        assert old["definition"] == V1
        assert old["format"] == "yaml"
        assert old["current"] is False
        new = (await server.client.get("/api/workflows/flow/versions/2")).json()
        assert new["definition"] == V2

        first = (await server.client.get(f"/api/executions/{before}")).json()
        second = (await server.client.get(f"/api/executions/{after}")).json()
        assert first["workflow_version"] == 1
        assert second["workflow_version"] == 2
        # The API's tree is drawn from the version each ran with, too.
        assert [row["key"] for row in first["tree"] if row["label"] is None] == [
            "first",
            "big",
            "large",
            "small",
        ]
        assert [row["key"] for row in second["tree"] if row["label"] is None] == ["only"]


async def test_applying_the_same_text_again_adds_no_version(make_store: StoreFactory) -> None:
    async with running_server([V1], store=make_store()) as server:
        await server.client.put("/api/workflows/flow", content=V2, headers=YAML)
        await server.client.put("/api/workflows/flow", content=V2, headers=YAML)
        # Disabling rewrites the text (enabled: false): that is a definition of its own.
        await server.client.patch("/api/workflows/flow", json={"enabled": False})
        await server.client.patch("/api/workflows/flow", json={"enabled": True})
        # Back to the first text: version 1 is in force again.
        await server.client.put("/api/workflows/flow", content=V1, headers=YAML)

        listed = await versions(server)
        numbers = [(v["version"], v["current"]) for v in listed["versions"]]  # type: ignore[attr-defined]
        assert numbers == [(4, False), (3, False), (2, False), (1, True)]
        executed = await run(server, 50)
        record = (await server.client.get(f"/api/executions/{executed}")).json()
        assert record["workflow_version"] == 1


async def test_versions_are_pages_newest_first(make_store: StoreFactory) -> None:
    async with running_server([V1], store=make_store()) as server:
        for n in range(2, 5):
            text = V2.replace("Rewritten", f"Rewritten {n}")
            await server.client.put("/api/workflows/flow", content=text, headers=YAML)

        seen = []
        query = "?limit=3"
        while True:
            page = await versions(server, query)
            seen += [v["version"] for v in page["versions"]]  # type: ignore[attr-defined]
            if page["cursor"] is None:
                break
            query = f"?limit=3&cursor={page['cursor']}"
        assert seen == [4, 3, 2, 1]


async def test_unknown_versions_and_bad_queries_are_problems(server: Server) -> None:
    assert_problem(await server.client.get("/api/workflows/orders/versions/9"), 404)
    assert_problem(await server.client.get("/api/workflows/nope/versions"), 404)
    assert_problem(await server.client.get("/api/workflows/nope/versions/1"), 404)
    huge = "9" * 30
    assert_problem(await server.client.get(f"/api/workflows/orders/versions/{huge}"), 404)
    for query in ("limit=0", "limit=x", "cursor=-1", f"cursor={huge}", "limit=501"):
        answer = await server.client.get(f"/api/workflows/orders/versions?{query}")
        assert "must be a whole number" in assert_problem(answer, 400)["detail"]


async def test_execution_page_draws_the_definition_it_ran_with(
    make_durable_store: StoreFactory,
) -> None:
    async with running_server([V1], store=make_durable_store()) as server:
        old = await run(server, 3)
        await server.client.put("/api/workflows/flow", content=V2, headers=YAML)
        new = await run(server, 3)

        page = (await server.client.get(f"/ui/executions/{old}")).text
        assert node_classes(page) == {
            "first": "succeeded",
            "big": "succeeded",
            "large": "not_run",
            "small": "succeeded",
        }
        assert ">then</text>" in page
        assert "version 1" in page
        assert "changed since" in page
        assert "/api/workflows/flow/versions/1" in page
        # The node panels show the definition as it was then.
        assert "size: small" in page

        page = (await server.client.get(f"/ui/executions/{new}")).text
        assert node_classes(page) == {"only": "succeeded"}
        assert "version 2" in page
        assert "(current)" in page


async def test_an_old_version_that_no_longer_loads_falls_back_to_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
    make_store: StoreFactory,
) -> None:
    # Version 1 reads a secret from the environment; once it is gone, version 1 no
    # longer loads, and the page is drawn with the current definition instead.
    monkeypatch.setenv("HOOKLINE_VERSIONS_TEST_TOKEN", "t0ken")
    guarded = V1.replace(
        "mode: sync}",
        "mode: sync, verify: [{bearer: {secret: env:HOOKLINE_VERSIONS_TEST_TOKEN}}]}",
    )
    async with running_server([guarded], store=make_store()) as server:
        answer = await server.client.post(
            "/api/webhooks/flow", json={"n": 3}, headers={"authorization": "Bearer t0ken"}
        )
        assert answer.status_code == 200, answer.text
        old = answer.json()["execution_id"]
        await server.client.put("/api/workflows/flow", content=V2, headers=YAML)
        monkeypatch.delenv("HOOKLINE_VERSIONS_TEST_TOKEN")

        page = await server.client.get(f"/ui/executions/{old}")
        assert page.status_code == 200
        # The jobs of the old nodes still show, after the current tree.
        assert node_classes(page.text) == {
            "only": "not_run",
            "first": "succeeded",
            "big": "succeeded",
            "small": "succeeded",
        }
        assert "not available" in page.text
        record = (await server.client.get(f"/api/executions/{old}")).json()
        assert record["workflow_version"] == 1


async def test_an_old_version_using_the_engines_own_node_types_still_loads(
    make_store: StoreFactory,
) -> None:
    import hookline
    from hookline.http._definition_versions import ran_with

    async def echo(call: hookline.NodeCall) -> object:
        return dict(call.params)

    nodes = {"echo_custom": echo}
    v1 = "key: custom\nnodes: [{key: e, type: echo_custom, say: one}]\n"
    v2 = "key: custom\nnodes: [{key: e, type: echo_custom, say: two}]\n"
    load = hookline.load_workflow_text
    store = make_store()
    async with hookline.open_engine(
        [load(v1, source="v1.yaml", nodes=nodes)], store=store, nodes=nodes
    ) as engine:
        old = await engine.run("custom")
        await engine.apply([load(v2, source="v2.yaml", nodes=nodes)])
        record = await store.get_execution(old.execution_id)
        assert record is not None
        drawn = await ran_with(engine, record)
    assert old.output == {"say": "one"}
    assert (drawn.version, drawn.changed, drawn.fallback) == (1, True, False)
    assert drawn.workflow is not None
    assert "say: one" in drawn.workflow.text
