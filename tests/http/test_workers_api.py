"""``GET /api/workers``: the processes sharing the store, and the cluster metrics."""

from __future__ import annotations

import psycopg
import pytest

from hookline.store._postgres import PostgresBackend
from hookline.store._store import Store
from tests.conftest import StoreFactory, postgres_schema_url
from tests.http.conftest import ORDERS, Server, assert_problem, running_server


async def test_a_store_of_its_own_has_no_workers(durable_server: Server) -> None:
    answer = await durable_server.client.get("/api/workers")
    assert answer.status_code == 200
    body = answer.json()
    if durable_server.engine.cluster is None:
        assert body == {"shared_store": False, "worker": None, "items": []}
    else:
        assert body["shared_store"] is True
        [me] = body["items"]
        assert me["this_process"] is True
        assert me["alive"] is True
        assert me["id"] == body["worker"]


async def test_every_process_sharing_postgresql_is_listed_with_its_silence(
    request: pytest.FixtureRequest,
) -> None:
    url = postgres_schema_url(request)
    other = PostgresBackend(url, worker_id="elsewhere/42/abcdef")
    other.open()  # another process, which then stops heartbeating
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            # Silent for 20 s: not yet dead under a 30 s lease.
            conn.execute("UPDATE workers SET heartbeat_at = heartbeat_at - 20")
        store = Store(PostgresBackend(url, lease=30))
        async with running_server([ORDERS], store=store) as server:
            body = (await server.client.get("/api/workers")).json()
            metrics = (await server.client.get("/metrics")).text
    finally:
        other.close()
    by_id = {item["id"]: item for item in body["items"]}
    assert set(by_id) == {body["worker"], "elsewhere/42/abcdef"}
    silent = by_id["elsewhere/42/abcdef"]
    assert silent["alive"] is True
    assert silent["this_process"] is False
    assert 20 <= silent["silent_seconds"] < 30
    assert by_id[body["worker"]]["alive"] is True
    assert "hookline_cluster_waiting 0.0" in metrics
    assert "hookline_cluster_adopted_total" in metrics


async def test_workers_need_an_admin_key(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], store=make_store(), admin_keys=["k"]) as server:
        assert_problem(await server.client.get("/api/workers"), 401)
        answer = await server.client.get("/api/workers", headers={"authorization": "Bearer k"})
        assert answer.status_code == 200
