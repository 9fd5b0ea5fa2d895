"""``hookline serve --workers 2`` as real processes on one port, sharing PostgreSQL.

Which worker accepts a connection is the kernel's choice. To show that each of them
serves, the tests stop the others with SIGSTOP (a stopped process accepts nothing) and
check that requests are still answered.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ._harness import ROOT, wait_for_url, write_setup

pytestmark = pytest.mark.slow

_URL = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+) with 2 workers")

WORKFLOWS = {
    "echo": """
        key: echo
        trigger: {type: webhook, mode: sync}
        nodes:
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
    """,
    "later": """
        key: later
        nodes:
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
    """,
    "slow": """
        key: slow
        trigger: {type: webhook, mode: sync, sync_timeout: 30s}
        nodes:
          - {key: nap, type: sleep, duration: 1500ms}
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
    """,
}


class Parent:
    """The ``--workers 2`` parent process, its log file and its children."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOOKLINE_TEST_NODES": "1"}
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "hookline", "serve", "--config", str(config)),
                    *("--bind", "127.0.0.1:0", "--workers", "2"),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.url = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_serving(self, timeout: float = 20.0) -> str:
        url = await wait_for_url(self.process, self.log, timeout, _URL)
        if url is not None:
            self.url = url
            return url
        raise AssertionError(f"the workers did not start:\n{self.log()}")

    def children(self) -> list[int]:
        """The live children (zombies excluded), from /proc."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return sorted(pids)

    async def wait_exit(self, timeout: float) -> int | None:
        with trio.move_on_after(timeout):
            while self.process.poll() is None:
                await trio.sleep(0.02)
        return self.process.poll()

    def cleanup(self) -> None:
        """Stop everything, gracefully if it can, before the test's schema is dropped."""
        children = self.children()
        for pid in children:
            _signal(pid, signal.SIGCONT)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for pid in children:
                    _signal(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


@pytest.fixture
def parent(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Parent]:
    store = postgres_schema_url(request)
    server = f"server: {{shutdown_timeout: 5s}}\nstore: {{url: '{store}'}}\n"
    config = write_setup(tmp_path, WORKFLOWS, server)
    process = Parent(config, tmp_path / "server.log")
    yield process
    process.cleanup()


async def _echo_many(url: str, count: int, start: int = 0) -> None:
    """``count`` sync requests, each on a connection of its own, each answered in full."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        for n in range(start, start + count):
            answer = await client.post("/api/webhooks/echo", json={"n": n})
            assert answer.status_code == 200, answer.text
            assert answer.json()["output"] == {"n": n}


async def _wait_children(parent: Parent, count: int, timeout: float = 10.0) -> list[int]:
    with trio.fail_after(timeout):
        while len(parent.children()) != count:
            await trio.sleep(0.05)
    return parent.children()


async def test_each_worker_serves_a_killed_one_is_replaced_and_sigterm_stops_all(
    parent: Parent,
) -> None:
    url = await parent.wait_serving()
    first, second = await _wait_children(parent, 2)
    assert parent.log().count("with 2 workers") == 1

    # Each worker alone answers, on the one port.
    for stopped in (second, first):
        os.kill(stopped, signal.SIGSTOP)
        try:
            await _echo_many(url, 5)
        finally:
            os.kill(stopped, signal.SIGCONT)

    # Async deliveries are accepted by either worker and run to the end.
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for n in range(10):
            answer = await client.post("/api/webhooks/later", json={"n": n})
            assert answer.status_code == 202, answer.text
        with trio.fail_after(10):
            while True:
                listed = (await client.get("/api/executions?workflow=later&limit=50")).json()
                if [e["status"] for e in listed["executions"]] == ["succeeded"] * 10:
                    break
                await trio.sleep(0.1)

    # A worker killed outright: requests go on being answered, and another takes its place.
    os.kill(first, signal.SIGKILL)
    await _echo_many(url, 5)
    with trio.fail_after(15):
        while first in parent.children() or len(parent.children()) != 2:
            await trio.sleep(0.05)
        (replacement,) = set(parent.children()) - {second}
        while f"worker {replacement} ready" not in parent.log():
            await trio.sleep(0.05)
    assert f"worker {first} exited with SIGKILL; starting another" in parent.log()
    os.kill(second, signal.SIGSTOP)
    try:
        await _echo_many(url, 5)  # the replacement alone
    finally:
        os.kill(second, signal.SIGCONT)

    parent.process.send_signal(signal.SIGTERM)
    assert await parent.wait_exit(15) == 0, parent.log()
    assert parent.children() == []
    for pid in (second, replacement):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


async def test_sigterm_lets_each_worker_finish_its_requests_in_flight(parent: Parent) -> None:
    url = await parent.wait_serving()
    await _wait_children(parent, 2)
    answers: list[httpx.Response] = []

    async def slow(client: httpx.AsyncClient, n: int) -> None:
        answers.append(await client.post("/api/webhooks/slow", json={"n": n}))

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as client:
        async with trio.open_nursery() as nursery:
            for n in range(6):
                nursery.start_soon(slow, client, n)
            await trio.sleep(0.7)  # all six are running (1.5 s each) when the signal comes
            parent.process.send_signal(signal.SIGTERM)
            assert await parent.wait_exit(15) == 0, parent.log()
    assert sorted(a.json()["output"]["n"] for a in answers) == list(range(6))
    assert all(a.status_code == 200 for a in answers)
    assert parent.log().count("SIGTERM: shutting down") == 2


GREETING = """
key: greet
trigger: {type: webhook, path: greet, mode: sync}
nodes:
  - {key: done, type: set, values: {hello: "{{$context.data.name}}"}}
"""


async def test_a_workflow_changed_through_one_worker_is_served_by_the_other(
    parent: Parent,
) -> None:
    url = await parent.wait_serving()
    first, second = await _wait_children(parent, 2)
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        os.kill(second, signal.SIGSTOP)
        try:  # the first worker alone takes the change
            put = await client.put(
                "/api/workflows/greet",
                content=GREETING,
                headers={"Content-Type": "application/yaml"},
            )
            assert put.status_code == 201, put.text
        finally:
            os.kill(second, signal.SIGCONT)
        os.kill(first, signal.SIGSTOP)
        try:  # the second worker alone answers: it loaded the new workflow too
            with trio.fail_after(10):
                while True:
                    answer = await client.post("/api/webhooks/greet", json={"name": "ada"})
                    if answer.status_code != 404:
                        break
                    await trio.sleep(0.05)
            assert answer.status_code == 200, answer.text
            assert answer.json()["output"] == {"hello": "ada"}
            gone = await client.delete("/api/workflows/greet")
            assert gone.status_code == 204, gone.text
        finally:
            os.kill(first, signal.SIGCONT)
        os.kill(second, signal.SIGSTOP)
        try:  # and the first worker heard of the delete from the second
            with trio.fail_after(10):
                while (await client.post("/api/webhooks/greet", json={})).status_code != 404:
                    await trio.sleep(0.05)
        finally:
            os.kill(second, signal.SIGCONT)
