"""The ``batch`` part of ``python -m benchmarks flow``: deliveries sent over HTTP to a
real ``hookline serve`` process (SQLite), which is SIGKILLed once during the run and
started again; then every delivery must be in exactly one batch execution.

Senders retry as webhook senders do (a refused or unanswered delivery is sent again,
with the same ``X-GitHub-Delivery``, which hookline takes as its idempotency key), so a
delivery accepted just before the kill is not sent twice as a new one.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import trio

__all__ = ["batch_run"]

ROOT = Path(__file__).parent.parent

BATCHED = """
key: readings
batch: {size: %(size)d, timeout: 10s, key: "{{$context.data.device}}"}
concurrency: {max: 8, queue: 100000}
nodes: [{key: store, type: set, values: {first: "{{$context.data.n}}"}}]
"""

_URL = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)")
SENDERS = 32
# Few enough that most batches fill before their timeout at this rate of deliveries.
DEVICES = 4
# Bounds: no step of the run may take longer than these (seconds).
START_TIMEOUT = 30.0
FINISH_TIMEOUT = 300.0


class _Server:
    """``hookline serve`` on a SQLite file in ``folder``, started as often as needed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "hookline.db"
        self.config = folder / "hookline.yaml"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def _spawn(self) -> Path:
        """Start the process; the log it writes."""
        self.starts += 1
        log_path = self.folder / f"server-{self.starts}.log"
        command = [sys.executable, "-m", "hookline", "serve", "--config", str(self.config)]
        command += ["--bind", "127.0.0.1:0", "--db", str(self.db)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return log_path

    async def start(self) -> None:
        log_path = self._spawn()
        assert self.process is not None
        with trio.move_on_after(START_TIMEOUT):
            while self.process.poll() is None:
                found = _URL.search(log_path.read_text(errors="replace"))
                if found:
                    self.url = found.group(1)
                    return
                await trio.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as lite:
        return lite.execute(sql).fetchall()


async def _restart(server: _Server) -> None:
    await trio.sleep(0.01)
    server.kill()
    await server.start()


def _set_up(folder: Path, size: int) -> Path:
    """``folder`` with the config and the batched workflow."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "workflows").mkdir(exist_ok=True)
    (folder / "workflows" / "readings.yaml").write_text(textwrap.dedent(BATCHED % {"size": size}))
    (folder / "hookline.yaml").write_text("workflows: ./workflows\n")
    return folder


async def _send(server: _Server, client: httpx.AsyncClient, n: int) -> None:
    data = {"device": f"device-{n % DEVICES}", "n": n}
    while True:
        try:
            answer = await client.post(
                f"{server.url}/api/webhooks/readings",
                json=data,
                headers={"X-GitHub-Delivery": f"d-{n}"},
            )
        except httpx.TransportError:  # the server is down (killed): send again
            await trio.sleep(0.05)
            continue
        if answer.is_success:
            return
        await trio.sleep(0.1)  # 429/503: as Retry-After says, roughly


async def batch_run(folder: Path, count: int, size: int, *, kill: bool = True) -> dict[str, float]:
    """Send ``count`` deliveries to a batch of ``size`` (SIGKILL after a third of them,
    with ``kill``); the figures, and whether each delivery is in exactly one batch."""
    from hookline.store._encoding import unpack

    server = _Server(_set_up(folder, size))
    await server.start()
    kill_at = count // 3 if kill else -1
    sent = 0
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for first in range(0, count, SENDERS):
                async with trio.open_nursery() as nursery:
                    for n in range(first, min(count, first + SENDERS)):
                        nursery.start_soon(_send, server, client, n)
                    if kill and first <= kill_at < first + SENDERS:
                        nursery.start_soon(_restart, server)  # with deliveries in flight
                sent = min(count, first + SENDERS)
        accepted_in = time.perf_counter() - started
        with trio.fail_after(FINISH_TIMEOUT):
            while _query(  # noqa: ASYNC110 (a reading of the store)
                server.db,
                "SELECT count(*) FROM executions WHERE status IN "
                "('queued', 'throttled', 'running')",
            )[0][0]:
                await trio.sleep(0.1)
        finished_in = time.perf_counter() - started
    finally:
        server.stop()
    rows = _query(server.db, "SELECT id, status, context, output FROM executions")
    landed: Counter[str] = Counter()
    batches = ran = full = 0
    for _, status, context, _ in rows:
        batch = unpack(context).get("batch")
        if batch is None:
            continue
        batches += 1
        ran += status == "succeeded"
        full += len(batch) == size
        landed.update(entry["headers"]["x-github-delivery"] for entry in batch)
    expected = {f"d-{n}" for n in range(sent)}
    return {
        "deliveries": sent,
        "batch size": size,
        "SIGKILLs": int(kill),
        "batch executions": batches,
        "batch executions succeeded": ran,
        "of them full (the rest timed out)": full,
        "deliveries in no batch": len(expected - set(landed)),
        "deliveries in two batches or more": sum(1 for v in landed.values() if v > 1),
        "deliveries exactly once": float(set(landed) == expected and set(landed.values()) == {1}),
        "all accepted in s": accepted_in,
        "all run in s": finished_in,
    }
