"""Concurrency and ordering limits hold across three real processes on PostgreSQL.

Deliveries are spread over the processes as a load balancer would; afterwards the
times the processes stored show how many executions of a workflow ran at once across
all of them, and in which order the executions sharing an order key ran.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ._cluster import Cluster, deliver, max_overlap, ran, read_db, wait_all_finished

pytestmark = pytest.mark.slow

LIMITED = """
    key: limited
    concurrency: {max: 3, queue: 1000}
    nodes:
      - {key: nap, type: sleep, duration: 200ms}
"""

KEYED = """
    key: keyed
    concurrency: {max: 8, queue: 1000, order_by: "{{$context.data.device}}"}
    nodes:
      - {key: nap, type: sleep, duration: 100ms}
"""

DELIVERIES = 60
DEVICES = 4
ROUNDS = 8


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, postgres_schema_url(request), {"limited": LIMITED, "keyed": KEYED})
    yield nodes
    nodes.cleanup()


async def test_concurrency_max_counts_executions_of_every_process(cluster: Cluster) -> None:
    await cluster.start()
    accepted: list[str] = []

    async def send(n: int, client: httpx.AsyncClient) -> None:
        node = cluster.nodes[n % len(cluster.nodes)]
        answer = await deliver(cluster, client, "/api/webhooks/limited", f"l-{n}", {}, prefer=node)
        accepted.append(answer.json()["execution_id"])

    async with httpx.AsyncClient(timeout=10) as client:
        async with trio.open_nursery() as nursery:
            for n in range(DELIVERIES):
                nursery.start_soon(send, n, client)
    await wait_all_finished(cluster.db_url, timeout=30)
    state = read_db(cluster.db_url)

    runs = [state.executions[id] for id in accepted]
    assert len(set(accepted)) == DELIVERIES
    assert {run.status for run in runs} == {"succeeded"}
    # Run by every process (each accepted a third), never more than 3 at once in all.
    assert {cluster.owner(run.owner) for run in runs} == set(cluster.nodes)
    assert max_overlap(ran(run) for run in runs) <= 3
    naps = [state.jobs_of(run.id, "succeeded")[0] for run in runs]
    assert max_overlap((job.started_at, job.finished_at or 0.0) for job in naps) <= 3
    # The limit is a limit, not a queue of one: executions of different processes
    # did run at the same time.
    assert any(
        a.owner != b.owner and max_overlap([ran(a), ran(b)]) == 2
        for a, b in itertools.combinations(runs, 2)
    )


async def test_order_per_key_holds_across_processes(cluster: Cluster) -> None:
    await cluster.start()
    sent: dict[str, list[str]] = {f"d{n}": [] for n in range(DEVICES)}

    async def device(name: str, client: httpx.AsyncClient) -> None:
        # Each delivery of a key to the next process: neighbours in a lane are owned
        # by different processes.
        for round_ in range(ROUNDS):
            node = cluster.nodes[round_ % len(cluster.nodes)]
            answer = await deliver(
                cluster,
                client,
                "/api/webhooks/keyed",
                f"{name}-{round_}",
                {"device": name},
                prefer=node,
            )
            sent[name].append(answer.json()["execution_id"])

    async with httpx.AsyncClient(timeout=10) as client:
        async with trio.open_nursery() as nursery:
            for name in sent:
                nursery.start_soon(device, name, client)
    await wait_all_finished(cluster.db_url, timeout=30)
    state = read_db(cluster.db_url)

    every = [state.executions[id] for ids in sent.values() for id in ids]
    assert {run.status for run in every} == {"succeeded"}
    for name, ids in sent.items():
        runs = [state.executions[id] for id in ids]
        assert all(run.order_key == name for run in runs)
        assert len({cluster.owner(run.owner) for run in runs}) == len(cluster.nodes)
        # Arrival order is the order sent (each sent once the previous was accepted).
        assert [run.seq for run in runs] == sorted(run.seq for run in runs)
        for earlier, later in itertools.pairwise(runs):
            assert ran(later)[0] >= ran(earlier)[1], f"{name}: {later.id} overtook {earlier.id}"
    # Different keys did run at once: the lanes are per key, not one for all.
    assert max_overlap(ran(run) for run in every) > 1
