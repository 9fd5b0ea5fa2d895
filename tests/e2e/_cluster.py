"""Several real ``hookline serve`` processes sharing one PostgreSQL schema.

A :class:`Cluster` starts its :class:`Node` processes on free ports of 127.0.0.1 with
``HOOKLINE_TEST_NODES=1`` (the ``sleep`` and ``fail`` node types) and a store URL whose
``heartbeat`` and ``lease`` are short, so that a killed process's work moves to the
others within seconds. Each process's output goes to a log file per start. The test
reads what the processes stored straight from PostgreSQL (:func:`read_db`), as an
operator would, with times written by the processes' own clocks (one machine: they
agree).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import trio

# unfinished and wait_all_finished are shared with the one-process tests.
from ._harness import (
    ROOT,
    Stored,
    StoredExecution,
    read_db,
    unfinished,
    wait_all_finished,
    wait_for_url,
    write_setup,
)

__all__ = [
    "HEARTBEAT",
    "LEASE",
    "Cluster",
    "Node",
    "Stored",
    "StoredExecution",
    "deliver",
    "max_overlap",
    "ran",
    "read_db",
    "unfinished",
    "wait_all_finished",
    "wait_for",
    "worker_pid",
]


# A killed process's executions move to the others after ``lease`` seconds.
HEARTBEAT = 0.5
LEASE = 2.0


class Node:
    """One ``hookline serve`` process of a cluster, started and killed as often as
    needed. ``url`` is empty while it is down; ``pids`` lists every process it was."""

    def __init__(self, name: str, config: Path, folder: Path) -> None:
        self.name = name
        self.config = config
        self.folder = folder
        self.url = ""
        self.starts = 0
        self.pids: list[int] = []
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Node({self.name!r}, pids={self.pids})"

    def log_path(self, start: int) -> Path:
        return self.folder / f"{self.name}-{start}.log"

    async def start(self, timeout: float = 30.0) -> str:
        """Start the process; return its URL once it serves. Raises RuntimeError (with
        its output) if it does not serve within ``timeout`` seconds."""
        self.starts += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOOKLINE_TEST_NODES": "1"}
        command = [sys.executable, "-m", "hookline", "serve", "--config", str(self.config)]
        with self.log_path(self.starts).open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--bind", "127.0.0.1:0"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.pids.append(self.process.pid)
        url = await wait_for_url(self.process, self.log, timeout)
        if url is not None:
            self.url = url
            return url
        self.cleanup()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return bool(self.url) and self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """The output of the current (or last) start."""
        return self.log_path(self.starts).read_text(errors="replace")

    def logs(self) -> list[str]:
        """The output of every start so far, first to last."""
        return [self.log_path(n).read_text(errors="replace") for n in range(1, self.starts + 1)]

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        assert self.process is not None
        self.url = ""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM; the exit status, or None if it still runs after ``timeout`` s."""
        assert self.process is not None
        self.url = ""
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout):
            while self.process.poll() is None:
                await trio.sleep(0.02)
        return self.process.poll()

    def cleanup(self) -> None:
        self.url = ""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Cluster:
    """``size`` nodes sharing the PostgreSQL schema at ``db_url`` (a libpq URL whose
    search path is the test's schema), with ``workflows`` (name -> YAML) and the
    extra server config ``server`` in ``folder``."""

    def __init__(
        self,
        folder: Path,
        db_url: str,
        workflows: dict[str, str],
        *,
        size: int = 3,
        server: str = "",
    ) -> None:
        self.db_url = db_url
        store = f"{db_url}&heartbeat={HEARTBEAT}&lease={LEASE}"
        config = write_setup(folder, workflows, f'store: {{url: "{store}"}}\n{server}')
        self.nodes = [Node(f"node{n}", config, folder) for n in range(size)]
        # Which live node a sender picks: a test with a seeded schedule sets its own.
        self.rng = random.Random()

    async def start(self) -> None:
        """Start every node at once; return when all serve."""
        async with trio.open_nursery() as nursery:
            for node in self.nodes:
                nursery.start_soon(node.start)

    async def stop(self) -> list[int | None]:
        """SIGTERM every live node at once; their exit statuses."""
        statuses: dict[str, int | None] = {}

        async def stop(node: Node) -> None:
            statuses[node.name] = await node.stop()

        async with trio.open_nursery() as nursery:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is None:
                    nursery.start_soon(stop, node)
        return list(statuses.values())

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.alive]

    def owner(self, worker_id: str | None) -> Node | None:
        """The node one of whose processes is the worker ``worker_id`` (host/pid/random)."""
        pid = worker_pid(worker_id)
        return next((node for node in self.nodes if pid in node.pids), None)

    def logs(self) -> list[str]:
        return [log for node in self.nodes for log in node.logs()]

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def worker_pid(worker_id: str | None) -> int | None:
    """The process id in a worker id (``host/pid/random``)."""
    if worker_id is None:
        return None
    return int(worker_id.split("/")[-2])


# -- sending, as webhook senders do -------------------------------------------------------


async def deliver(
    cluster: Cluster,
    client: httpx.AsyncClient,
    path: str,
    delivery: str,
    data: object,
    *,
    prefer: Node | None = None,
    conflicts: bool = False,
) -> httpx.Response:
    """Send one delivery (id ``delivery`` in ``X-GitHub-Delivery``) until it is answered
    2xx, as a sender behind a load balancer: to ``prefer`` while it lives, else to any
    live node; again on a connection error, or a 429/503 (which must carry
    ``Retry-After``), or with ``conflicts`` a 409 (a sync delivery still running)."""
    while True:
        live = cluster.live()
        if not live:
            await trio.sleep(0.05)
            continue
        node = prefer if prefer is not None and prefer in live else cluster.rng.choice(live)
        try:
            answer = await client.post(
                f"{node.url}{path}", json=data, headers={"X-GitHub-Delivery": delivery}
            )
        except httpx.TransportError:
            prefer = None
            await trio.sleep(0.05)
            continue
        if answer.is_success:
            return answer
        if answer.status_code == 409 and conflicts:
            await trio.sleep(0.1)
            continue
        assert answer.status_code in (429, 503), f"{delivery}: {answer.status_code} {answer.text}"
        assert "retry-after" in answer.headers
        await trio.sleep(0.1)


async def wait_for(
    db_url: str, query: str, args: Sequence[object], timeout: float
) -> tuple[Any, ...]:
    """The first row ``query`` finds, polling until it finds one; fail after ``timeout``."""

    def find() -> tuple[Any, ...] | None:
        with psycopg.connect(db_url) as conn:
            return conn.execute(query, args).fetchone()

    deadline = time.monotonic() + timeout
    while (row := await trio.to_thread.run_sync(find)) is None:
        assert time.monotonic() < deadline, f"nothing found by {query!r} {args}"
        await trio.sleep(0.05)
    return row


# -- reading times ------------------------------------------------------------------------


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals ``(start, end)`` that were open at one moment; an interval
    ending when another starts does not overlap it."""
    # At equal times ends (-1) sort before starts (+1).
    events = sorted(edge for start, end in intervals for edge in ((start, 1), (end, -1)))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def ran(execution: StoredExecution) -> tuple[float, float]:
    """When a finished execution was running: from its start permit to its end."""
    assert execution.started_at is not None, execution
    assert execution.finished_at is not None, execution
    return execution.started_at, execution.finished_at
