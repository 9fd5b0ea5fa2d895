"""Fault injection with three real processes sharing PostgreSQL, and SIGKILL.

Senders spread their deliveries over the live processes, as a load balancer would,
and behave like real webhook senders: each delivery keeps its id (``X-GitHub-Delivery``)
and is sent again, to any live process, on a connection error or a 429/503 (and a 409
for a sync delivery still running) until it is answered 2xx. Meanwhile a random process
is killed at random moments and restarted; its executions move to the others once its
lease runs out. Afterwards PostgreSQL must show: nothing accepted lost, nothing run
twice, order per key kept, every sync delivery answered with its result.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ._cluster import Cluster, deliver, max_overlap, ran, read_db, wait_all_finished

# The same workflows as the one-process fault test, on three processes.
from .test_faults import FAULTY, ORDERED

pytestmark = pytest.mark.slow

SYNC = """
    key: sync
    trigger: {type: webhook, mode: sync, sync_timeout: 10s}
    nodes:
      - {key: nap, type: sleep, duration: 300ms}
      - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
"""

KILLS = 4
# Senders go on until the last kill is over, within these bounds.
SENDERS, MAX_PER_SENDER = 6, 400
DEVICES, MAX_ROUNDS = 10, 150
SYNC_SENDERS, MAX_SYNC = 2, 60


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(
        tmp_path,
        postgres_schema_url(request),
        {"faulty": FAULTY, "ordered": ORDERED, "sync": SYNC},
        server="server: {shutdown_timeout: 5s}\n",
    )
    yield nodes
    nodes.cleanup()


async def test_sigkill_of_random_processes_loses_duplicates_and_reorders_nothing(
    cluster: Cluster, rng: random.Random
) -> None:
    cluster.rng = rng
    await cluster.start()
    kills = 0
    killing = trio.Event()
    answered: dict[str, set[str]] = {}
    lanes: dict[str, list[str]] = {f"d{n}": [] for n in range(DEVICES)}
    synced: dict[str, tuple[int, dict[str, Any]]] = {}

    async def sender(number: int, client: httpx.AsyncClient) -> None:
        for n in range(MAX_PER_SENDER):
            if killing.is_set():
                return
            delivery = f"s{number}-{n}"
            answer = await deliver(cluster, client, "/api/webhooks/faulty", delivery, {"n": n})
            answered.setdefault(delivery, set()).add(answer.json()["execution_id"])

    async def device(name: str, client: httpx.AsyncClient) -> None:
        # One delivery at a time, each once the previous was accepted: the arrival order.
        for round_ in range(MAX_ROUNDS):
            if killing.is_set():
                return
            data = {"device": name}
            answer = await deliver(
                cluster, client, "/api/webhooks/ordered", f"{name}-{round_}", data
            )
            lanes[name].append(answer.json()["execution_id"])

    async def sync_sender(number: int, client: httpx.AsyncClient) -> None:
        for n in range(MAX_SYNC):
            if killing.is_set():
                return
            delivery = f"y{number}-{n}"
            path = "/api/webhooks/sync"
            answer = await deliver(cluster, client, path, delivery, {"n": n}, conflicts=True)
            synced[delivery] = (answer.status_code, answer.json())

    async def killer() -> None:
        nonlocal kills
        while kills < KILLS:
            await trio.sleep(rng.uniform(0.3, 1.2))
            victim = rng.choice(cluster.live())
            victim.kill()
            kills += 1
            await victim.start()
        killing.set()

    limits = httpx.Limits(max_connections=SENDERS + DEVICES + SYNC_SENDERS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            for number in range(SENDERS):
                nursery.start_soon(sender, number, client)
            for name in lanes:
                nursery.start_soon(device, name, client)
            for number in range(SYNC_SENDERS):
                nursery.start_soon(sync_sender, number, client)
    await wait_all_finished(cluster.db_url, timeout=20)
    assert await cluster.stop() == [0, 0, 0]
    state = read_db(cluster.db_url)
    logs = cluster.logs()

    assert kills == KILLS
    # The kills landed mid-flight: the survivors took executions over.
    assert any("took over" in log for log in logs)
    assert not any("Traceback" in log for log in logs)

    # Every delivery answered 2xx has exactly one execution, the one it was told, and
    # it succeeded; and no execution exists that no sender was told about.
    sent: dict[str, set[str]] = {
        **answered,
        **{f"{name}-{n}": {id} for name, ids in lanes.items() for n, id in enumerate(ids)},
        **{delivery: {body["execution_id"]} for delivery, (_, body) in synced.items()},
    }
    stored = state.by_sender_id()
    for delivery, told in sent.items():
        assert len(told) == 1, f"{delivery} was answered with two executions: {told}"
        assert [e.id for e in stored[delivery]] == list(told), delivery
    assert len(state.executions) == len(sent)
    assert {e.status for e in state.executions.values()} == {"succeeded"}
    # Each execution's delivery record says so.
    accepted = {d.execution_id: d for d in state.deliveries if d.verdict == "accepted"}
    assert set(accepted) == set(state.executions)

    # No node that succeeded ran twice: one succeeded job per (node, scope), and
    # `echo` saw the very output `stamp` recorded (a second run of `stamp` would differ).
    nodes = {"faulty": ["echo", "nap", "stamp"], "ordered": ["nap"], "sync": ["done", "nap"]}
    for execution in state.executions.values():
        succeeded = state.jobs_of(execution.id, "succeeded")
        assert sorted(job.node for job in succeeded) == nodes[execution.workflow], succeeded
        assert len({(job.node, job.scope) for job in succeeded}) == len(succeeded)
        if execution.workflow == "faulty":
            stamp, echo = (next(j for j in succeeded if j.node == n) for n in ("stamp", "echo"))
            assert echo.output == {"seen": stamp.output["at"]}

    # concurrency.max held across the processes, kills and takeovers included (a
    # killed process's executions count as running until their new owner ends them).
    for workflow, most in (("faulty", 16), ("ordered", 8)):
        runs = [e for e in state.executions.values() if e.workflow == workflow]
        assert max_overlap(ran(run) for run in runs) <= most, workflow

    # Executions sharing a key ran one at a time, in arrival order.
    for name, ids in lanes.items():
        runs = [state.executions[id] for id in ids]
        assert all(run.order_key == name for run in runs)
        assert [run.seq for run in runs] == sorted(run.seq for run in runs), name
        for earlier, later in itertools.pairwise(runs):
            assert ran(later)[0] >= ran(earlier)[1], f"{name}: {later.id} overtook {earlier.id}"

    # Every sync delivery was answered with its execution's result.
    for delivery, (status, body) in synced.items():
        n = int(delivery.split("-")[1])
        assert (status, body["status"], body["output"]) == (200, "succeeded", {"n": n}), delivery
