"""Flow control with a real server, a real store and SIGKILL: a debounce window in
progress survives the process (nothing lost, nothing run twice)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ._harness import BACKENDS, Server, read_db, store_for, wait_all_finished, write_setup
from .test_faults import send_until_accepted

pytestmark = pytest.mark.slow

# The burst (with a restart in it) must fit in one quiet period: then every key's
# window closes after it, once, with the key's last delivery.
DEBOUNCED = """
    key: crm
    debounce: {period: 20s, key: "{{$context.data.record}}"}
    concurrency: {max: 16, queue: 5000}
    nodes:
      - key: sync
        type: set
        values: {record: "{{$context.data.record}}", n: "{{$context.data.n}}"}
"""

DELIVERIES = 1000
KEYS = 50
SENDERS = 16


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(tmp_path, {"crm": DEBOUNCED}, "server: {shutdown_timeout: 5s}\n")
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


async def test_a_burst_over_fifty_keys_with_a_sigkill_runs_each_keys_last_delivery_once(
    server: Server, rng: random.Random
) -> None:
    # (Without a kill: tests/engine/test_flow_control.py and test_debounce.py.)
    await server.start()
    plan = [(n, f"record-{rng.randrange(KEYS)}") for n in range(DELIVERIES)]
    executions: dict[int, str] = {}
    kill_at = rng.randrange(DELIVERIES // 4, DELIVERIES // 2)
    started = trio.current_time()

    async def sender(mine: list[tuple[int, str]], client: httpx.AsyncClient) -> None:
        for n, record in mine:
            if n == kill_at:
                server.kill()
                await server.start()
            answer = await send_until_accepted(
                server, client, "/api/webhooks/crm", f"d-{n}", {"record": record, "n": n}
            )
            executions[n] = answer.json()["execution_id"]

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for index in range(SENDERS):
            nursery.start_soon(sender, plan[index::SENDERS], client)
    burst = trio.current_time() - started
    await wait_all_finished(server.store, timeout=60)
    stored = read_db(server.store)
    ran = {
        n: stored.executions[execution]
        for n, execution in executions.items()
        if stored.executions[execution].status == "succeeded"
    }
    # Senders race: a key's last delivery is the one accepted last (ids sort by time).
    last: dict[str, tuple[str, int]] = {}
    for n, record in plan:
        last[record] = max(last.get(record, ("", -1)), (executions[n], n))
    # Exactly one execution per key, and it is the key's last delivery.
    assert sorted(ran) == sorted(n for _, n in last.values()), f"burst took {burst:.1f} s"
    for n, execution in ran.items():
        assert stored.jobs[execution.id][0].output == {"record": plan[n][1], "n": n}
    others = [stored.executions[e] for n, e in executions.items() if n not in ran]
    assert all(run.status == "cancelled" for run in others)
    assert all(run.error and "(debounce)" in run.error for run in others)
