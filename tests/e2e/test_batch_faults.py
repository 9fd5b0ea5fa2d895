"""``batch`` with a real server, a real store and SIGKILL: windows in progress and
batches formed but not run survive the process; every delivery is in exactly one
batch execution, which ran once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, Server, read_db, store_for, wait_all_finished, write_setup
from .test_faults import send_until_accepted

pytestmark = pytest.mark.slow

BATCHED = """
    key: readings
    batch: {size: 25, timeout: 2s, key: "{{$context.data.device}}"}
    concurrency: {max: 4, queue: 5000}
    nodes:
      - key: store
        type: set
        values: {device: "{{$context.data.device}}", first: "{{$context.data.n}}"}
"""

DELIVERIES = 600
DEVICES = 3
SENDERS = 12


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(tmp_path, {"readings": BATCHED}, "server: {shutdown_timeout: 5s}\n")
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


async def test_deliveries_with_a_sigkill_each_land_in_exactly_one_batch_that_ran(
    server: Server, rng: random.Random
) -> None:
    # (Without a kill: tests/engine/test_batching.py and test_batch.py.)
    await server.start()
    plan = [(n, f"device-{rng.randrange(DEVICES)}") for n in range(DELIVERIES)]
    kill_at = rng.randrange(DELIVERIES // 4, DELIVERIES // 2)

    async def sender(mine: list[tuple[int, str]], client: httpx.AsyncClient) -> None:
        for n, device in mine:
            if n == kill_at:
                server.kill()
                await server.start()
            await send_until_accepted(
                server, client, "/api/webhooks/readings", f"d-{n}", {"device": device, "n": n}
            )

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for index in range(SENDERS):
            nursery.start_soon(sender, plan[index::SENDERS], client)
    await wait_all_finished(server.store, timeout=60)
    stored = read_db(server.store)
    batches = {
        execution.id: execution
        for execution in stored.executions.values()
        if "batch" in execution.context
    }
    members = [e for e in stored.executions.values() if e.id not in batches]
    # Every delivery (a sender's retry is a duplicate of it: one execution) is in
    # exactly one batch, of its own device.
    landed = Counter(
        entry["headers"]["x-github-delivery"]
        for execution in batches.values()
        for entry in execution.context["batch"]
    )
    assert sorted(landed) == sorted(f"d-{n}" for n in range(DELIVERIES))
    assert set(landed.values()) == {1}
    for execution in batches.values():
        assert execution.status == "succeeded"
        entries = execution.context["batch"]
        assert 1 <= len(entries) <= 25
        assert len({entry["data"]["device"] for entry in entries}) == 1
        assert entries[0]["execution_id"] == execution.id
        # It ran once: one job, which succeeded (a resumed one reuses it).
        [job] = stored.jobs_of(execution.id)
        assert job.status == "succeeded"
        assert job.output == {
            "device": entries[0]["data"]["device"],
            "first": entries[0]["data"]["n"],
        }
    # The other executions each ended batched into the batch that lists them.
    for execution in members:
        assert execution.status == "succeeded"
        assert stored.jobs_of(execution.id) == []
        head = batches[execution.output["batched_into"]]
        assert execution.id in [entry["execution_id"] for entry in head.context["batch"]]
