"""``batch`` across three real processes on PostgreSQL, one of them SIGKILLed: the
deliveries its open batches held are taken over by the others, and every delivery is
in exactly one batch execution, which ran once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ._cluster import Cluster, deliver, read_db, wait_all_finished

pytestmark = pytest.mark.slow

BATCHED = """
    key: readings
    batch: {size: 10, timeout: 2s, key: "{{$context.data.device}}"}
    concurrency: {max: 4, queue: 5000}
    nodes:
      - {key: store, type: set, values: {first: "{{$context.data.n}}"}}
"""

DELIVERIES = 300
DEVICES = 4


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, postgres_schema_url(request), {"readings": BATCHED})
    yield nodes
    nodes.cleanup()


async def test_deliveries_batched_by_three_processes_one_killed_land_once_each(
    cluster: Cluster, rng: random.Random
) -> None:
    cluster.rng = rng
    await cluster.start()
    kill_at = rng.randrange(DELIVERIES // 4, DELIVERIES // 2)
    victim = cluster.nodes[0]

    async def send(mine: list[int], client: httpx.AsyncClient) -> None:
        for n in mine:
            if n == kill_at:
                victim.kill()  # its open batches' deliveries are queued, its to adopt
            prefer = cluster.nodes[n % len(cluster.nodes)]
            data = {"device": f"device-{n % DEVICES}", "n": n}
            await deliver(cluster, client, "/api/webhooks/readings", f"d-{n}", data, prefer=prefer)

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for index in range(8):
            nursery.start_soon(send, list(range(index, DELIVERIES, 8)), client)
    await wait_all_finished(cluster.db_url, timeout=60)
    stored = read_db(cluster.db_url)
    batches = [e for e in stored.executions.values() if "batch" in e.context]
    landed = Counter(
        entry["headers"]["x-github-delivery"] for e in batches for entry in e.context["batch"]
    )
    assert sorted(landed) == sorted(f"d-{n}" for n in range(DELIVERIES))
    assert set(landed.values()) == {1}  # none lost, none in two batches
    assert len({e.owner for e in batches}) >= 2  # the processes shared the work
    for execution in batches:
        assert execution.status == "succeeded"
        [job] = stored.jobs_of(execution.id)
        assert job.status == "succeeded"
    for execution in stored.executions.values():
        if "batch" not in execution.context:
            assert execution.status == "succeeded"
            assert execution.output["batched_into"] in {e.id for e in batches}
