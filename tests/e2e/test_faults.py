"""Fault injection with a real server process, a real SQLite file or PostgreSQL
schema, and SIGKILL.

Senders behave like real webhook senders: each delivery keeps its id
(``X-GitHub-Delivery``) and is sent again on a connection error or a 429/503 until it
is answered 2xx. Meanwhile the server is killed at random moments and restarted.
"""

from __future__ import annotations

import itertools
import random
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, Server, read_db, store_for, wait_all_finished, write_setup

pytestmark = pytest.mark.slow

FAULTY = """
    key: faulty
    concurrency: {max: 16, queue: 5000}
    nodes:
      - {key: stamp, type: set, values: {at: "{{$system.now}}", n: "{{$context.data.n}}"}}
      - {key: nap, type: sleep, duration: 30ms}
      - {key: echo, type: set, values: {seen: "{{$nodes.stamp.at}}"}}
"""

ORDERED = """
    key: ordered
    concurrency: {max: 8, queue: 5000, order_by: "{{$context.data.device}}"}
    nodes:
      - {key: nap, type: sleep, duration: 40ms}
"""

SYNC = """
    key: sync
    trigger: {type: webhook, mode: sync, sync_timeout: 10s}
    nodes:
      - {key: nap, type: sleep, duration: 700ms}
      - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
"""

QUICK = """
    key: quick
    nodes:
      - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
"""

SENDERS = 8
PER_SENDER = 300
KILLS = 4


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(
        tmp_path,
        {"faulty": FAULTY, "ordered": ORDERED, "sync": SYNC, "quick": QUICK},
        "server: {shutdown_timeout: 5s}\n",
    )
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


async def send_until_accepted(
    server: Server, client: httpx.AsyncClient, path: str, delivery: str, data: object
) -> httpx.Response:
    """Send one delivery until it is answered 2xx, as a webhook sender retries."""
    while True:
        try:
            answer = await client.post(
                f"{server.url}{path}", json=data, headers={"X-GitHub-Delivery": delivery}
            )
        except httpx.TransportError:
            await trio.sleep(0.05)
            continue
        if answer.is_success:
            return answer
        assert answer.status_code in (429, 503), answer.text
        assert "retry-after" in answer.headers
        await trio.sleep(0.1)


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    server: Server, rng: random.Random
) -> None:
    await server.start()
    answered: dict[str, set[str]] = defaultdict(set)
    kills = 0

    async def sender(number: int, client: httpx.AsyncClient) -> None:
        for n in range(PER_SENDER):
            delivery = f"s{number}-{n}"
            answer = await send_until_accepted(
                server, client, "/api/webhooks/faulty", delivery, {"n": n}
            )
            answered[delivery].add(answer.json()["execution_id"])

    async def killer(done: trio.Event) -> None:
        nonlocal kills
        while kills < KILLS and not done.is_set():
            await trio.sleep(rng.uniform(0.5, 1.5))
            server.kill()
            kills += 1
            await server.start()

    limits = httpx.Limits(max_connections=SENDERS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer, done)
            async with trio.open_nursery() as senders:
                for number in range(SENDERS):
                    senders.start_soon(sender, number, client)
            done.set()
    await wait_all_finished(server.store, timeout=30)
    server.send(signal.SIGTERM)
    assert await server.wait(10) == 0
    stored = read_db(server.store)

    assert kills >= 2
    # The restarts found work to resume: the kills did land mid-flight. On PostgreSQL
    # a restart is a new worker, taking the dead one's executions over once its lease ends.
    resumed = "took over" if isinstance(server.store, str) else "resuming"
    assert any(resumed in log for log in server.logs()[1:])
    assert not any("Traceback" in log for log in server.logs())
    assert len(answered) == SENDERS * PER_SENDER
    # Every delivery answered 2xx has exactly one execution, the one it was told.
    by_delivery: dict[str, list[str]] = defaultdict(list)
    for execution in stored.executions.values():
        by_delivery[execution.context["headers"]["x-github-delivery"]].append(execution.id)
    for delivery, ids in answered.items():
        assert len(ids) == 1, f"{delivery} was answered with two executions"
        assert by_delivery[delivery] == list(ids), delivery
    assert len(stored.executions) == len(answered)
    # Every execution completed.
    assert {e.status for e in stored.executions.values()} == {"succeeded"}
    # No node with a succeeded job ran twice: one succeeded job per node, and `echo`
    # saw the very output `stamp` recorded (a second run of `stamp` would differ).
    for execution_id in stored.executions:
        jobs = stored.jobs[execution_id]
        succeeded = [job for job in jobs if job.status == "succeeded"]
        assert sorted(job.node for job in succeeded) == ["echo", "nap", "stamp"], jobs
        assert [job.node for job in jobs].count("stamp") == 1, jobs
        stamp = next(job for job in succeeded if job.node == "stamp")
        echo = next(job for job in succeeded if job.node == "echo")
        assert echo.output == {"seen": stamp.output["at"]}


async def test_order_per_key_holds_across_a_sigkill(server: Server) -> None:
    await server.start()
    devices = [f"d{n}" for n in range(20)]
    sent: list[tuple[str, str]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for round_ in range(6):
            if round_ == 3:
                server.kill()
                await server.start()
            for device in devices:
                delivery = f"{device}-{round_}"
                answer = await send_until_accepted(
                    server, client, "/api/webhooks/ordered", delivery, {"device": device}
                )
                sent.append((device, answer.json()["execution_id"]))
    await wait_all_finished(server.store, timeout=30)
    server.send(signal.SIGTERM)
    assert await server.wait(10) == 0
    stored = read_db(server.store)
    for device in devices:
        runs = [stored.executions[id] for d, id in sent if d == device]
        assert all(run.status == "succeeded" for run in runs)
        assert all(run.order_key == device for run in runs)
        # The successful run of each one's node, in arrival order, never overlapping.
        naps = [
            next(job for job in stored.jobs[run.id] if job.status == "succeeded") for run in runs
        ]
        for earlier, later in itertools.pairwise(naps):
            assert earlier.finished_at is not None
            assert later.started_at >= earlier.finished_at, f"{device} ran out of order"


async def test_idempotency_answers_over_http(server: Server) -> None:
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        key = {"Idempotency-Key": "order-42"}
        first = await client.post("/api/webhooks/quick", json={"n": 1}, headers=key)
        again = await client.post("/api/webhooks/quick", json={"n": 1}, headers=key)
        other = await client.post("/api/webhooks/quick", json={"n": 2}, headers=key)
        assert first.status_code == 202
        assert "idempotent-replayed" not in first.headers
        assert again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert other.status_code == 422
        assert other.headers["content-type"] == "application/problem+json"

        # A sync delivery still running: 409; once finished, its answer again.
        sync_key = {"Idempotency-Key": "sync-1"}
        async with trio.open_nursery() as nursery:
            results: dict[str, httpx.Response] = {}

            async def send_first() -> None:
                results["first"] = await client.post(
                    "/api/webhooks/sync", json={"n": 7}, headers=sync_key
                )

            nursery.start_soon(send_first)
            await trio.sleep(0.3)
            busy = await client.post("/api/webhooks/sync", json={"n": 7}, headers=sync_key)
        later = await client.post("/api/webhooks/sync", json={"n": 7}, headers=sync_key)
    assert busy.status_code == 409
    assert "retry-after" in busy.headers
    assert results["first"].status_code == 200
    assert later.status_code == 200
    assert later.headers["idempotent-replayed"] == "true"
    assert later.json() == results["first"].json()


async def test_simultaneous_identical_deliveries_start_one_execution(server: Server) -> None:
    await server.start()
    answers: dict[str, list[httpx.Response]] = defaultdict(list)

    async def send(client: httpx.AsyncClient, delivery: str) -> None:
        answers[delivery].append(
            await client.post(
                "/api/webhooks/quick", json={"n": delivery}, headers={"webhook-id": delivery}
            )
        )

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with trio.open_nursery() as nursery:
            for n in range(20):
                for _ in range(3):
                    nursery.start_soon(send, client, f"same-{n}")
    server.send(signal.SIGTERM)
    assert await server.wait(10) == 0
    stored = read_db(server.store)
    for delivery, replies in answers.items():
        assert [r.status_code for r in replies] == [202, 202, 202]
        assert len({r.json()["execution_id"] for r in replies}) == 1
        assert sum("idempotent-replayed" in r.headers for r in replies) == 2
        started = [
            e for e in stored.executions.values() if e.context["headers"]["webhook-id"] == delivery
        ]
        assert len(started) == 1
