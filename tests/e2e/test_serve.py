"""The README's promise, with a real server process, a real SQLite file or PostgreSQL
schema, and signals."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, read_db, store_for
from ._server import ROOT, ServerProcess


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the server stores: a SQLite file, or a PostgreSQL schema."""
    return store_for(request, tmp_path)


@pytest.fixture
def server(tmp_path: Path, store: Path | str) -> Iterator[ServerProcess]:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    process = ServerProcess(tmp_path / "examples" / "hookline.yaml", store)
    yield process
    if process.process.poll() is None:
        process.process.kill()


async def wait_finished(client: httpx.AsyncClient, execution_id: str) -> dict[str, object]:
    with trio.fail_after(10):
        while True:
            answer = await client.get(f"/api/executions/{execution_id}")
            assert answer.status_code == 200
            record: dict[str, object] = answer.json()
            if record["status"] not in ("queued", "running"):
                return record
            await trio.sleep(0.05)


async def test_async_example_is_accepted_then_succeeds(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post(
            "/api/webhooks/hello", json={"event": "test", "data": {"message": "Hello"}}
        )
        assert answer.status_code == 202
        execution_id = answer.json()["execution_id"]
        assert answer.headers["location"] == f"/api/executions/{execution_id}"
        record = await wait_finished(client, execution_id)
    assert record["status"] == "succeeded"
    jobs = record["jobs"]
    assert isinstance(jobs, list)
    assert [job["node"] for job in jobs] == ["greeting", "is_test", "mark_test"]
    assert all(job["status"] == "succeeded" for job in jobs)
    assert record["output"] == {"test": True, "delivery": record["delivery_id"]}


async def test_sync_example_answers_from_its_response_node(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post("/api/webhooks/echo/greet?lang=en", json={"name": "Ada"})
        refused = await client.put("/api/webhooks/echo/greet", json={})
    assert answer.status_code == 200
    assert answer.headers["x-echo-action"] == "greet"
    assert answer.json() == {"greeting": "Hello, Ada", "action": "greet", "lang": "en"}
    assert refused.status_code == 422
    assert refused.json() == {"error": "name is required"}


async def test_sigterm_exits_cleanly_and_keeps_every_acknowledged_delivery(
    server: ServerProcess, store: Path | str
) -> None:
    acknowledged = []
    async with httpx.AsyncClient(base_url=server.url) as client:
        for n in range(20):
            answer = await client.post("/api/webhooks/hello", json={"event": "e", "n": n})
            assert answer.status_code == 202
            acknowledged.append(answer.json()["execution_id"])
    assert server.stop(signal.SIGTERM) == 0
    stored = read_db(store)
    assert set(acknowledged) <= set(stored.executions)
    assert len(stored.deliveries) >= 20


async def test_sigkill_after_202_loses_no_acknowledged_delivery(
    server: ServerProcess, store: Path | str
) -> None:
    acknowledged: list[str] = []

    async def send(client: httpx.AsyncClient, n: int) -> None:
        answer = await client.post("/api/webhooks/hello", json={"event": "e", "n": n})
        if answer.status_code == 202:
            acknowledged.append(answer.json()["execution_id"])

    async with httpx.AsyncClient(base_url=server.url) as client:
        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(send, client, n)
    server.stop(signal.SIGKILL)
    assert len(acknowledged) == 50
    stored = read_db(store)
    accepted = {d.execution_id for d in stored.deliveries if d.verdict == "accepted"}
    assert set(acknowledged) <= set(stored.executions)
    assert set(acknowledged) <= accepted
