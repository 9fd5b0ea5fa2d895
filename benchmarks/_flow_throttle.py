"""Throttle precision for ``python -m benchmarks flow``: the sliding-window count, and
issue 17's target with three real ``hookline serve`` processes sharing one PostgreSQL
schema.

Deliveries for ``keys`` keys, ten periods' worth each, are sent over HTTP, spread over
the processes in turn as a load balancer would, all at once. Every process books its
executions' starts on the rate kept in the database (GCRA on the database's clock, see
``Coordinator.book_rate``), so together they must start no more than ``limit +
burst`` per key in any window one period long. The starts are read back from the
store once every execution has run: ``started_at`` as each process recorded it, on
its own clock (one machine: the clocks agree).

What is judged is recorded starts, with a start-latency allowance (see the ``flow``
module and benchmarks/README.md): across processes the booked start of an execution
is not stored, only when it really started, which is its booked time plus the wait for
its start permit and for its process's event loop.
"""

from __future__ import annotations

import bisect
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

__all__ = ["THROTTLE_ALLOWANCE", "most_in_any_window", "postgres_store", "throttle_processes"]

ROOT = Path(__file__).parent.parent
THROTTLED = """
key: throttled
concurrency: {max: 64, queue: 100000}
throttle: {limit: %(limit)d, period: %(period)ss, burst: %(burst)d, key: "{{$context.data.k}}"}
nodes: [{key: go, type: set, values: {ok: true}}]
"""
_URL = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)")
#: How late a recorded start may be after its booking and still count in the window
#: it was booked in: the start permit's round trip to the database and the process's
#: loop lag.
THROTTLE_ALLOWANCE = 0.1
ARRIVALS_PER_START = 2
# Bounds: no step of the run may take longer than these (seconds).
START_TIMEOUT = 30.0
FINISH_TIMEOUT = 120.0


def most_in_any_window(starts: dict[str, list[float]], period: float, slack: float) -> int:
    """The most starts of one key in any window ``period - slack`` long, wherever it
    begins (sliding: each start opens one)."""
    most = 0
    for unsorted in starts.values():
        times = sorted(unsorted)
        for i, t in enumerate(times):
            most = max(most, bisect.bisect_left(times, t + period - slack) - i)
    return most


@contextmanager
def postgres_store() -> Iterator[str]:
    """A store URL on a fresh schema of a PostgreSQL server (see
    :func:`benchmarks._postgres.postgres_server`; raises Skip without one)."""
    from ._postgres import fresh_schema, postgres_server

    with postgres_server(install=True) as server, fresh_schema(server, "flow") as url:
        yield url


class _Process:
    """One ``hookline serve`` of the cluster, on a free loopback port."""

    def __init__(self, folder: Path, n: int) -> None:
        self.log = folder / f"server-{n}.log"
        self.config = folder / "hookline.yaml"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "hookline", "serve", "--config", str(self.config)]
        command += ["--bind", "127.0.0.1:0"]
        with self.log.open("wb") as log:
            return subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    async def start(self) -> None:
        self.process = self._spawn()
        with trio.move_on_after(START_TIMEOUT):
            while self.process.poll() is None:
                found = _URL.search(self.log.read_text(errors="replace"))
                if found:
                    self.url = found.group(1)
                    return
                await trio.sleep(0.02)
        raise RuntimeError(f"hookline serve did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _set_up(folder: Path, store_url: str, limit: int, period: float, burst: int) -> None:
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    text = THROTTLED % {"limit": limit, "period": period, "burst": burst}
    (folder / "workflows" / "throttled.yaml").write_text(textwrap.dedent(text))
    config = f'store: {{url: "{store_url}"}}\nworkflows: ./workflows\n'
    (folder / "hookline.yaml").write_text(config)


def _stored(store_url: str) -> tuple[int, list[tuple[Any, ...]]]:
    """(unfinished executions, every execution's key, start and owner)."""
    import psycopg

    from hookline.store._encoding import unpack

    with psycopg.connect(store_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT status, context, started_at, owner FROM executions WHERE workflow = %s",
            ("throttled",),
        ).fetchall()
    live = sum(1 for status, *_ in rows if status in ("queued", "throttled", "running"))
    return live, [(unpack(ctx)["data"]["k"], started, owner) for _, ctx, started, owner in rows]


async def throttle_processes(
    folder: Path,
    store_url: str,
    *,
    period: float,
    limit: int = 5,
    burst: int = 1,
    keys: int = 4,
    processes: int = 3,
) -> dict[str, float]:
    """Run the throttle over ``processes`` servers on ``store_url`` (an empty schema);
    the figures (see the module docstring)."""
    _set_up(folder, store_url, limit, period, burst)
    servers = [_Process(folder, n) for n in range(processes)]
    per_key = limit * 10  # ten periods' worth
    try:
        async with trio.open_nursery() as nursery:
            for server in servers:
                nursery.start_soon(server.start)
        async with httpx.AsyncClient(timeout=30) as client:
            await _warm_up(client, servers, store_url)
        started = trio.current_time()
        # Each key's deliveries come at twice its rate: a backlog builds from the
        # start, so every start after the burst is a booked one, while the processes
        # accept them steadily instead of all at once (a busy loop starts late).
        spacing = period / limit / ARRIVALS_PER_START
        async with httpx.AsyncClient(timeout=30) as client, trio.open_nursery() as nursery:
            for n in range(per_key):
                for k in range(keys):
                    url = f"{servers[(n * keys + k) % processes].url}/api/webhooks/throttled"
                    nursery.start_soon(_send, client, url, {"k": f"k{k}", "n": n})
                await trio.sleep_until(started + (n + 1) * spacing)
        with trio.fail_after(FINISH_TIMEOUT):
            while (await trio.to_thread.run_sync(_stored, store_url))[0]:  # noqa: ASYNC110
                await trio.sleep(0.1)
        ran_in = trio.current_time() - started
    finally:
        for server in servers:
            server.stop()
    _, rows = _stored(store_url)
    starts: dict[str, list[float]] = {}
    for key, started_at, _ in rows:
        if not key.startswith("warm-"):
            starts.setdefault(key, []).append(float(started_at))
    return {
        "processes": processes,
        "processes that started executions": len({owner for *_, owner in rows}),
        "keys": keys,
        "starts per key": per_key,
        "most recorded starts in any period-long window": most_in_any_window(starts, period, 1e-6),
        f"the same, allowing {THROTTLE_ALLOWANCE * 1000:.0f} ms of start latency": (
            most_in_any_window(starts, period, THROTTLE_ALLOWANCE)
        ),
        "limit + burst": limit + burst,
        "all run in s": ran_in,
    }


async def _warm_up(client: httpx.AsyncClient, servers: list[_Process], store_url: str) -> None:
    """One execution per process (a key of its own, not counted), run to its end: the
    first one pays for what each process does only once (connections, caches)."""
    for n, server in enumerate(servers):
        await _send(client, f"{server.url}/api/webhooks/throttled", {"k": f"warm-{n}", "n": 0})
    with trio.fail_after(FINISH_TIMEOUT):
        while (await trio.to_thread.run_sync(_stored, store_url))[0]:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def _send(client: httpx.AsyncClient, url: str, data: dict[str, object]) -> None:
    answer = await client.post(url, json=data)
    answer.raise_for_status()
