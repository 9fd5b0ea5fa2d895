"""Work handed between real processes on PostgreSQL: a durable delay whose process is
killed fires once, in another process, at its due time; a cancel sent to one process
reaches the process that runs the execution, or, if that one was killed, the process
that takes the execution over."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from hookline.engine._core import INTERRUPTED
from hookline.store._encoding import unpack

from ..conftest import postgres_schema_url
from ._cluster import (
    LEASE,
    Cluster,
    deliver,
    read_db,
    wait_all_finished,
    wait_for,
    worker_pid,
)

pytestmark = pytest.mark.slow

MakeCluster = Callable[[dict[str, str], str], Cluster]

DELAY = 4.0

WAITING = """
    key: waiting
    timeout: 1m
    nodes:
      - {key: pause, type: delay, duration: %ss}
      - key: fire
        type: http
        method: POST
        url: "http://127.0.0.1:%d/fired/{{$execution.id}}"
        json: {}
"""

LONG = """
    key: long
    concurrency: {max: 1}
    nodes:
      - {key: nap, type: sleep, duration: 20s}
      - {key: after, type: set, values: {done: true}}
"""


@pytest.fixture
def make_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeCluster]:
    made: list[Cluster] = []

    def make(workflows: dict[str, str], server: str = "") -> Cluster:
        cluster = Cluster(tmp_path, postgres_schema_url(request), workflows, server=server)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.cleanup()


class Target:
    """A tiny HTTP server recording each request's path and when it came."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, float]] = []
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._answer, listeners)

    async def _answer(self, stream: trio.SocketStream) -> None:
        received = b""
        async with stream:
            while b"\r\n\r\n" not in received:
                chunk = await stream.receive_some()
                if not chunk:
                    return
                received += chunk
            self.hits.append((received.split(b" ")[1].decode(), time.time()))
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
            )


async def test_a_delay_whose_process_is_killed_fires_once_elsewhere_on_time(
    make_cluster: MakeCluster,
) -> None:
    target = Target()
    async with trio.open_nursery() as nursery:
        await nursery.start(target.serve)
        cluster = make_cluster(
            {"waiting": WAITING % (DELAY, target.port)},
            'http_node: {allow_hosts: ["127.0.0.1"]}\n',
        )
        await cluster.start()
        first = cluster.nodes[0]
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await deliver(
                cluster, client, "/api/webhooks/waiting", "w-1", {}, prefer=first
            )
        execution_id = answer.json()["execution_id"]
        # The due time is committed before the wait: kill the process holding it then.
        owner, raw = await wait_for(
            cluster.db_url,
            "SELECT x.owner, j.output FROM executions x JOIN jobs j ON j.execution_id = x.id "
            "WHERE x.id = %s AND j.node = 'pause' AND j.status = 'running'",
            (execution_id,),
            timeout=10,
        )
        assert cluster.owner(owner) is first
        checkpoint = unpack(bytes(raw))
        killed = first.pid
        first.kill()
        await first.start()  # the restarted process competes to take it over too
        await wait_all_finished(cluster.db_url, timeout=DELAY + 10)
        nursery.cancel_scope.cancel()
    state = read_db(cluster.db_url)

    execution = state.executions[execution_id]
    assert execution.status == "succeeded"
    assert worker_pid(execution.owner) != killed
    succeeded = state.jobs_of(execution_id, "succeeded")
    assert [job.node for job in succeeded] == ["pause", "fire"]
    pause = succeeded[0]
    # The node after the delay ran once; the delay completed once, in the process
    # that took it over, from the due time the killed one committed.
    assert [job.node for job in state.jobs_of(execution_id) if job.node == "fire"] == ["fire"]
    # The attempt the kill cut off is recorded as interrupted.
    pauses = [
        (j.attempt, j.status, j.error) for j in state.jobs_of(execution_id) if j.node == "pause"
    ]
    assert pauses == [(1, "cancelled", INTERRUPTED), (2, "succeeded", None)]
    assert pause.log == [f"resumed: due at {checkpoint['until']:.3f}"]
    until = pause.output["until"]
    assert until == checkpoint["until"]
    # The delay kept the due time its killed process committed, and fired once, then
    # (the takeover came within the lease, before the due time).
    assert until == pytest.approx(execution.created_at + DELAY, abs=1.0)
    assert [path for path, _ in target.hits] == [f"/fired/{execution_id}"]
    fired_at = target.hits[0][1]
    assert until <= fired_at < until + 1.0


async def one_running_one_waiting(
    cluster: Cluster, client: httpx.AsyncClient, prefix: str
) -> tuple[str, str]:
    """Send two ``long`` deliveries to the first node: the first is well into its nap
    when this returns, the second waits for its start permit (``max: 1``)."""
    ids = []
    for n in range(2):
        answer = await deliver(
            cluster, client, "/api/webhooks/long", f"{prefix}-{n}", {}, prefer=cluster.nodes[0]
        )
        ids.append(answer.json()["execution_id"])
    await wait_for(
        cluster.db_url,
        "SELECT 1 FROM executions WHERE id = %s AND status = 'running'",
        (ids[0],),
        timeout=10,
    )
    await trio.sleep(0.2)
    return ids[0], ids[1]


async def test_a_cancel_sent_to_another_process_reaches_the_one_running_it(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster({"long": LONG}, "")
    await cluster.start()
    holder, second, third = cluster.nodes
    async with httpx.AsyncClient(timeout=10) as client:
        running, waiting = await one_running_one_waiting(cluster, client, "c")
        ids = (running, waiting)
        # One waits for its start permit (concurrency.max 1) in the holder, queued.
        asked = await client.post(f"{second.url}/api/executions/{waiting}/cancel")
        assert asked.status_code == 202
        assert asked.json() == {"id": waiting, "cancel_requested": True}
        await wait_for(
            cluster.db_url,
            "SELECT 1 FROM executions WHERE id = %s AND status = 'cancelled'",
            (waiting,),
            timeout=10,
        )
        # The running one: its job is cut off at once, in the holder.
        cancelled_at = time.time()
        asked = await client.post(f"{third.url}/api/executions/{running}/cancel")
        assert asked.status_code == 202
        await wait_all_finished(cluster.db_url, timeout=10)
    state = read_db(cluster.db_url)

    assert {worker_pid(state.executions[id].owner) for id in ids} == {holder.pid}
    assert state.executions[waiting].status == "cancelled"
    assert state.executions[waiting].started_at is None
    assert state.jobs_of(waiting) == []
    assert state.executions[running].status == "cancelled"
    [nap] = state.jobs_of(running)
    assert (nap.node, nap.status) == ("nap", "cancelled")
    assert nap.finished_at is not None
    # Cut off, not run out: its nap is 20 s (the margin is for a loaded machine).
    assert nap.finished_at - cancelled_at < 5.0


async def test_a_cancel_sent_while_its_process_is_dead_is_carried_out_by_the_next_owner(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster({"long": LONG}, "")
    await cluster.start()
    holder, second, _ = cluster.nodes
    async with httpx.AsyncClient(timeout=10) as client:
        running, waiting = await one_running_one_waiting(cluster, client, "d")
        ids = (running, waiting)
        killed = holder.pid
        holder.kill()
        # Within the dead process's lease: nobody runs them, the cancels are recorded.
        for id in ids:
            asked = await client.post(f"{second.url}/api/executions/{id}/cancel")
            assert asked.status_code == 202
        await wait_all_finished(cluster.db_url, timeout=LEASE + 10)
    state = read_db(cluster.db_url)

    for id in ids:
        execution = state.executions[id]
        assert execution.status == "cancelled"
        assert worker_pid(execution.owner) not in (killed, None)
    assert state.executions[running].error == "cancelled on request"
    assert state.executions[waiting].error == "cancelled before it started"
    # Neither ran again: the nap the kill cut off left no record, nothing ran after it.
    assert state.jobs_of(waiting) == []
    assert state.jobs_of(running) == []
