"""Bulk replay and retry through the admin API: a dry run counts, a run shows its
progress, waits while the engine is busy instead of pushing it into 503, and cancels."""

from __future__ import annotations

from typing import Any

import trio

from hookline.engine._bulk import BulkFilter, room_to_start
from hookline.testing import register_test_nodes
from tests.conftest import FLAKY_WORKFLOW, StoreFactory
from tests.http.conftest import GATE_TYPE, Server, assert_problem, gate, running_server

register_test_nodes()

FLAKY = FLAKY_WORKFLOW
HELD = f"""
key: held
nodes:
  - {{key: wait, type: {GATE_TYPE}, name: held}}
"""


async def deliver(server: Server, path: str, **data: Any) -> str:
    answer = await server.client.post(f"/api/webhooks/{path}", json=data)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["execution_id"])


async def finished(server: Server, ids: list[str]) -> None:
    async def all_done() -> bool:
        for execution_id in ids:
            record = (await server.client.get(f"/api/executions/{execution_id}")).json()
            if record["status"] in ("queued", "running"):
                return False
        return True

    for _ in range(200):
        if await all_done():
            return
        await trio.sleep(0.02)
    raise AssertionError("executions did not finish")


async def bulk_ended(server: Server, run_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal shown
        shown = (await server.client.get(f"/api/bulk/{run_id}")).json()
        return shown["state"] != "running"

    for _ in range(300):
        if await ended():
            return shown
        await trio.sleep(0.02)
    raise AssertionError(f"bulk run did not end: {shown}")


def test_pacing_keeps_half_the_room_free() -> None:
    assert room_to_start(pending=4, pending_limit=10, queued=0, queue_capacity=10)
    assert not room_to_start(pending=5, pending_limit=10, queued=0, queue_capacity=10)
    assert not room_to_start(pending=0, pending_limit=10, queued=5, queue_capacity=10)
    assert BulkFilter(error="POSITIVE").accepts("flaky", "failed", 5.0, "n must be positive")
    assert not BulkFilter(since=6.0).accepts("flaky", "failed", 5.0, None)


async def test_dry_run_counts_then_replay_and_retry_every_match(make_store: StoreFactory) -> None:
    async with running_server([FLAKY], store=make_store()) as server:
        client = server.client
        failed = [await deliver(server, "flaky", n=-i) for i in range(1, 5)]
        fine = [await deliver(server, "flaky", n=1)]
        await finished(server, failed + fine)
        dry = await client.post(
            "/api/bulk", json={"action": "retry", "status": "failed", "dry_run": True}
        )
        assert dry.json() == {"action": "retry", "matched": 4, "dry_run": True}
        none = await client.post(
            "/api/bulk", json={"action": "retry", "error": "no such text", "dry_run": True}
        )
        assert none.json()["matched"] == 0

        started = await client.post(
            "/api/bulk", json={"action": "replay", "workflow": "flaky", "error": "positive"}
        )
        assert started.status_code == 202
        assert started.headers["location"] == f"/api/bulk/{started.json()['id']}"
        replayed = await bulk_ended(server, started.json()["id"])
        assert (replayed["state"], replayed["total"], replayed["done"]) == ("finished", 4, 4)
        assert replayed["failed"] == 0
        assert not set(replayed["started"]) & set(failed)  # new executions
        await finished(server, replayed["started"])

        retried = await client.post("/api/bulk", json={"action": "retry", "status": "failed"})
        run = await bulk_ended(server, retried.json()["id"])
        assert (run["total"], run["done"], run["failed"]) == (8, 8, 0)
        assert set(failed) <= set(run["started"])  # a retry keeps the execution's id
        listed = (await client.get("/api/bulk")).json()["runs"]
        assert [r["id"] for r in listed] == [retried.json()["id"], started.json()["id"]]


async def test_a_busy_engine_holds_the_run_back_and_it_can_be_cancelled(
    make_store: StoreFactory,
) -> None:
    async with running_server([FLAKY, HELD], store=make_store(), pending_limit=8) as server:
        client = server.client
        failed = [await deliver(server, "flaky", n=-1) for _ in range(3)]
        await finished(server, failed)
        for _ in range(4):  # half the pending limit, held running
            await deliver(server, "held")
        started = await client.post("/api/bulk", json={"action": "replay", "status": "failed"})
        run_id = started.json()["id"]
        for _ in range(20):
            await trio.sleep(0.02)
        shown = (await client.get(f"/api/bulk/{run_id}")).json()
        assert (shown["state"], shown["done"]) == ("running", 0)  # waiting for room
        assert server.engine.pending() == 4
        await deliver(server, "flaky", n=1)  # the engine still takes deliveries
        cancelled = await client.post(f"/api/bulk/{run_id}/cancel")
        assert cancelled.json()["state"] == "cancelled"
        ended = await bulk_ended(server, run_id)
        assert (ended["state"], ended["done"], ended["total"]) == ("cancelled", 0, 3)
        gate("held").open()


async def test_bad_bulk_requests_are_refused(make_store: StoreFactory) -> None:
    async with running_server([FLAKY], store=make_store()) as server:
        client = server.client
        assert_problem(await client.post("/api/bulk", json={"action": "delete"}), 422)
        assert_problem(await client.post("/api/bulk", json={"action": "retry", "colour": 1}), 400)
        assert_problem(await client.post("/api/bulk", json={"action": "retry", "status": "x"}), 400)
        assert_problem(await client.post("/api/bulk", json={"action": "retry", "since": []}), 400)
        assert_problem(await client.get("/api/bulk/nope"), 404)
        assert_problem(await client.post("/api/bulk/nope/cancel"), 404)
