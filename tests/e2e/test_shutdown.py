"""Graceful shutdown of a real ``hookline serve`` on SIGTERM and SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, Server, read_db, store_for, wait_all_finished, write_setup

SHUTDOWN_TIMEOUT = 2.0

WORKFLOWS = {
    "quick_sync": """
        key: quick_sync
        trigger: {type: webhook, mode: sync}
        nodes:
          - {key: nap, type: sleep, duration: 1s}
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
    """,
    "long_sync": """
        key: long_sync
        trigger: {type: webhook, mode: sync, sync_timeout: 30s}
        nodes:
          - {key: nap, type: sleep, duration: 4s}
    """,
    "long_async": """
        key: long_async
        concurrency: {max: 2}
        nodes:
          - {key: first, type: set, values: {n: "{{$context.data.n}}"}}
          - {key: nap, type: sleep, duration: 3s}
    """,
}


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(
        tmp_path, WORKFLOWS, f"server: {{shutdown_timeout: {SHUTDOWN_TIMEOUT}s}}\n"
    )
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


@pytest.mark.slow
async def test_sigterm_answers_in_flight_requests_exits_0_and_resumes_the_rest(
    server: Server,
) -> None:
    await server.start()
    answers: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        accepted = []
        for n in range(4):  # 2 run, 2 wait: none can finish before the deadline
            answer = await client.post("/api/webhooks/long_async", json={"n": n})
            assert answer.status_code == 202
            accepted.append(answer.json()["execution_id"])

        async def send(name: str, path: str) -> None:
            answers[name] = await client.post(f"/api/webhooks/{path}", json={"n": name})

        async with trio.open_nursery() as nursery:
            for n in range(3):
                nursery.start_soon(send, f"quick{n}", "quick_sync")
            nursery.start_soon(send, "long", "long_sync")
            await trio.sleep(0.3)
            signalled = time.monotonic()
            server.send(signal.SIGTERM)
            await trio.sleep(0.3)
            refused = await client.post("/api/webhooks/long_async", json={"n": 99})
            status = await server.wait(SHUTDOWN_TIMEOUT + 2)
            stopped = time.monotonic() - signalled

    assert status == 0
    assert stopped < SHUTDOWN_TIMEOUT + 1
    # Intake stopped at once; the HTTP front stayed up to say so.
    assert refused.status_code == 503
    assert "retry-after" in refused.headers
    # In-flight sync requests got their answers: finished ones their result, the one
    # cut off by the deadline a 202 pointing at its execution.
    for n in range(3):
        assert answers[f"quick{n}"].status_code == 200
        assert answers[f"quick{n}"].json()["output"] == {"n": f"quick{n}"}
    assert answers["long"].status_code == 202
    long_id = answers["long"].json()["execution_id"]
    assert answers["long"].headers["location"] == f"/api/executions/{long_id}"
    assert "Traceback" not in server.log()

    stored = read_db(server.store)
    left = {id for id, e in stored.executions.items() if e.status in ("queued", "running")}
    assert left == {*accepted, long_id}

    await server.start()
    await wait_all_finished(server.store, timeout=15)
    server.send(signal.SIGTERM)
    assert await server.wait(SHUTDOWN_TIMEOUT + 1) == 0
    stored = read_db(server.store)
    for id in left:
        assert stored.executions[id].status == "succeeded"
    for id in accepted:
        # `first` succeeded before the stop (for the two that ran) and was not run again.
        assert [j.node for j in stored.jobs[id]].count("first") == 1


async def test_ctrl_c_stops_cleanly_and_a_second_one_stops_waiting(server: Server) -> None:
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        answer = await client.post("/api/webhooks/long_async", json={"n": 1})
        assert answer.status_code == 202
        await trio.sleep(0.2)
        signalled = time.monotonic()
        server.send(signal.SIGINT)
        await trio.sleep(0.2)
        server.send(signal.SIGINT)  # impatient: do not wait for the running one
        status = await server.wait(SHUTDOWN_TIMEOUT + 2)
        stopped = time.monotonic() - signalled
    assert status == 0
    assert stopped < 1.5
    log = server.log()
    assert "SIGINT: shutting down" in log
    assert "Traceback" not in log
    assert "KeyboardInterrupt" not in log
    stored = read_db(server.store)
    assert stored.executions[answer.json()["execution_id"]].status == "running"
