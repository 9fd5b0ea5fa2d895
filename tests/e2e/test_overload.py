"""Offered load far above capacity: refusals with Retry-After, bounded memory, no
accepted work lost, and normal service again once the load drops."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, Server, read_db, store_for, wait_all_finished, write_setup

pytestmark = pytest.mark.slow

# Two workflows each draining 10 executions/s: `left` fills its small queue (429),
# `right` could hold more than the engine-wide pending limit allows (503).
WORKFLOWS = {
    name: f"""
        key: {name}
        concurrency: {{max: 1, queue: {queue}}}
        nodes:
          - {{key: nap, type: sleep, duration: 100ms}}
          - {{key: done, type: set, values: {{n: "{{{{$context.data.n}}}}"}}}}
    """
    for name, queue in (("left", 10), ("right", 50))
}
CLIENTS = 48
PAD = "x" * 64 * 1024
OVERLOAD_SECONDS = 5.0


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(tmp_path, WORKFLOWS, "engine: {pending: 40}\n")
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


async def test_overload_is_refused_with_retry_after_and_memory_stays_bounded(
    server: Server,
) -> None:
    await server.start()
    statuses: Counter[int] = Counter()
    accepted: list[str] = []
    missing_retry_after = 0
    dropped: list[int] = []
    rss: list[int] = []

    async def hammer(client: httpx.AsyncClient, number: int, stop_at: float) -> None:
        nonlocal missing_retry_after
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            path = "/api/webhooks/" + ("left" if (number + n) % 2 else "right")
            # Deliberately rude: no backoff, a body of some size.
            try:
                answer = await client.post(path, json={"n": n, "pad": PAD})
            except httpx.TransportError:
                # Seen once in a loaded CI run (a connection reset mid-storm): counted,
                # and bounded below, rather than ending the test.
                dropped.append(n)
                continue
            statuses[answer.status_code] += 1
            if answer.status_code == 202:
                accepted.append(answer.json()["execution_id"])
            elif "retry-after" not in answer.headers:
                missing_retry_after += 1

    async def sample(stop_at: float) -> None:
        while time.monotonic() < stop_at:
            rss.append(server.rss_kib())
            await trio.sleep(0.2)

    async with httpx.AsyncClient(
        base_url=server.url, timeout=20, limits=httpx.Limits(max_connections=CLIENTS)
    ) as client:
        # Warm up (imports, caches, the store's first pages) before the baseline.
        for n in range(10):
            path = "/api/webhooks/" + ("left" if n % 2 else "right")
            assert (await client.post(path, json={"n": n})).status_code == 202
        await wait_all_finished(server.store, timeout=10)
        baseline = server.rss_kib()
        stop_at = time.monotonic() + OVERLOAD_SECONDS
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample, stop_at)
            for number in range(CLIENTS):
                nursery.start_soon(hammer, client, number, stop_at)

        # The load drops: everything accepted drains, then service is normal again.
        await wait_all_finished(server.store, timeout=30)
        recovered = []
        for n in range(20):
            answer = await client.post("/api/webhooks/right", json={"n": n})
            recovered.append(answer.status_code)
            await trio.sleep(0.1)  # about what it drains
    await wait_all_finished(server.store, timeout=10)
    server.send(signal.SIGTERM)
    assert await server.wait(15) == 0

    offered_mib = statuses.total() * len(PAD) / 2**20
    print(dict(statuses), f"rss {baseline} -> {max(rss)} KiB, offered {offered_mib:.0f} MiB")
    refused = statuses[429] + statuses[503]
    assert statuses[429] > 0
    assert statuses[503] > 0
    # What was let in is bounded by capacity (two workflows draining about 10/s each,
    # their queues and the engine-wide pending limit), not by what was offered.
    capacity = 2 * 10 * (OVERLOAD_SECONDS + 3) + 40 + 10
    assert statuses[202] <= capacity < refused + statuses[202]
    assert set(statuses) <= {202, 429, 503}
    assert len(dropped) <= statuses.total() // 100, f"{len(dropped)} connections dropped"
    assert missing_retry_after == 0
    # Bounded memory: what is held is decided by the queues and the number of clients,
    # not by how long the overload lasts. RSS levels off in the first half and stays.
    growth_mib = (max(rss) - baseline) / 1024
    assert growth_mib < 60, f"RSS grew by {growth_mib:.0f} MiB"
    first_half = max(rss[: len(rss) // 2])
    assert max(rss) - first_half < 8 * 1024, f"RSS still growing: {rss}"
    assert recovered == [202] * 20
    stored = read_db(server.store)
    for execution_id in accepted:
        assert stored.executions[execution_id].status == "succeeded"
