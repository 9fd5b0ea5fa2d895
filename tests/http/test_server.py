"""The server as a whole: serving, health, generic errors, and stopping."""

from __future__ import annotations

from typing import NoReturn

import pytest
import trio

from hookline.store._records import Page
from tests.conftest import StoreFactory
from tests.http.conftest import (
    HELD,
    ORDERS,
    STANDARD,
    Server,
    assert_problem,
    gate,
    running_server,
)


async def test_serve_reports_the_bound_url(server: Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert not server.url.endswith(":0")


async def test_healthz_and_readyz(server: Server) -> None:
    health = await server.client.get("/healthz")
    ready = await server.client.get("/readyz")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "workflows": len(STANDARD)}


async def test_unknown_path_is_a_404_problem(server: Server) -> None:
    assert_problem(await server.client.get("/nothing/here"), 404)
    assert_problem(await server.client.get("/api/nothing"), 404)


async def test_wrong_method_on_an_admin_route_is_405_with_allow(server: Server) -> None:
    response = await server.client.delete("/api/executions")

    assert_problem(response, 405)
    assert "GET" in {method.strip() for method in response.headers["allow"].split(",")}


async def test_unexpected_error_in_the_webhook_route_leaks_nothing(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(delivery: object) -> NoReturn:
        raise RuntimeError("internal detail /srv/hookline/secret.key")

    monkeypatch.setattr(server.engine, "accept", broken)
    response = await server.client.post("/api/webhooks/orders/1", json={"n": 1})

    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text
    assert problem["detail"] == "an unexpected error occurred"
    monkeypatch.undo()
    await server.engine.store.flush()
    page = (await server.client.get("/api/deliveries?verdict=rejected")).json()
    assert [(d["status"], d["workflow"]) for d in page["deliveries"]] == [(500, "orders")]


async def test_unexpected_error_in_an_admin_route_leaks_nothing(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(**filters: object) -> Page[object]:
        raise KeyError("column secret_token")

    monkeypatch.setattr(server.engine.store, "list_executions", broken)
    response = await server.client.get("/api/executions")

    assert_problem(response, 500)
    assert "secret_token" not in response.text
    assert "KeyError" not in response.text


async def test_sync_request_is_answered_202_when_the_engine_stops_under_it(
    make_store: StoreFactory,
) -> None:
    async with running_server([HELD, ORDERS], shutdown_timeout=0.05, store=make_store()) as server:
        answers = []

        async def ask() -> None:
            answers.append(await server.client.post("/api/webhooks/held", json={}))

        # Past the shutdown deadline the execution is cancelled (it resumes on the
        # next start): the sender hears 202 then, not after the 10 s sync_timeout.
        with trio.fail_after(3):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await gate("held").entered.wait()
                await server.engine.aclose()

    (answer,) = answers
    assert answer.status_code == 202
    assert answer.headers["location"] == f"/api/executions/{answer.json()['execution_id']}"
