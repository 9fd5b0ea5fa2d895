"""A real hookline server on 127.0.0.1 for the HTTP tests, and a test-only node type.

``running_server`` starts an engine with the given workflow definitions (YAML texts),
serves it with :func:`hookline.http._serve.serve` on a free port and yields a
:class:`Server` holding an ``httpx.AsyncClient`` aimed at it. The ``gate`` node type
(``type: http_test_gate``, ``name: ...``) blocks its job until the test opens the gate
of that name, so a test can hold executions running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import httpx
import pytest
import trio

from hookline.definition import Fields
from hookline.engine._definition import Workflow
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.http._serve import serve
from hookline.nodes._base import Job, NodeResult, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from hookline.store._store import MemoryStore, Store
from tests.conftest import StoreFactory

GATE_TYPE = "http_test_gate"


class Gate:
    """A named barrier: ``entered`` is set when a job reaches it, jobs wait for ``open``."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self.opened = trio.Event()
        self.passed = 0

    def open(self) -> None:
        self.opened.set()


_GATES: dict[str, Gate] = {}


def gate(name: str) -> Gate:
    """The gate called ``name`` in the current test (created on first use)."""
    return _GATES.setdefault(name, Gate())


@attrs.frozen
class GateNode:
    name: str

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        barrier = gate(self.name)
        barrier.entered.set()
        await barrier.opened.wait()
        barrier.passed += 1
        return NodeResult(output={"gate": self.name})


@register(GATE_TYPE)
def _parse_gate(fields: Fields, nodes: NodeListParser) -> GateNode:
    return GateNode(name=fields.string("name"))


@pytest.fixture(autouse=True)
def _fresh_gates() -> Iterable[None]:
    # Events belong to one trio run: every test starts with new gates.
    _GATES.clear()
    yield
    _GATES.clear()


@attrs.frozen
class Server:
    """A running server: its engine, its base URL and a client aimed at it."""

    engine: Engine
    url: str
    client: httpx.AsyncClient


def workflows(*texts: str) -> list[Workflow]:
    return [load_workflow_text(text, source=f"test{i}.yaml") for i, text in enumerate(texts)]


@asynccontextmanager
async def running_server(
    texts: Iterable[str],
    *,
    store: Store | str | None = None,
    admin_keys: Sequence[str] = (),
    **engine_options: Any,
) -> AsyncIterator[Server]:
    """An engine over ``texts`` served on a free loopback port until the block ends;
    ``store`` defaults to a new in-memory one."""
    store = MemoryStore() if store is None else store
    async with open_engine(workflows(*texts), store=store, **engine_options) as engine:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                partial(serve, engine, bind="127.0.0.1:0", admin_keys=admin_keys)
            )
            try:
                async with httpx.AsyncClient(base_url=urls[0], timeout=10.0) as client:
                    yield Server(engine, urls[0], client)
            finally:
                # Held executions would keep the engine draining until its deadline.
                for held in _GATES.values():
                    held.open()
                nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    """Poll ``predicate`` (real time) until it holds; fail the test after ``timeout``."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check an RFC 9457 answer with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    return body


# The workflows most tests run against. Gates hold executions running on purpose.
ORDERS = """
key: orders
trigger: {type: webhook, path: "orders/{id}", methods: [POST, PUT], max_body: 1KiB}
nodes:
  - {key: total, type: set, values: {n: "{{$context.data.n}}"}}
"""
ACKED = """
key: acked
trigger:
  type: webhook
  path: acked
  response:
    status: 200
    headers: {X-Accepted-By: hookline, X-Order: "{{$context.data.order}}"}
    body: {received: true, execution: "{{$execution.id}}", order: "{{$context.data.order}}"}
nodes:
  - {key: noop, type: set, values: {ok: true}}
"""
ECHO = """
key: echo
trigger: {type: webhook, path: "echo/{name}", methods: [GET, POST, PUT], mode: sync}
nodes:
  - {key: out, type: end, output: "{{$context}}"}
"""
STEPS = """
key: steps
trigger: {type: webhook, path: steps, mode: sync}
nodes:
  - {key: first, type: set, values: {n: "{{$context.data.n}}"}}
  - key: big
    type: condition
    if: {gt: ["{{$nodes.first.n}}", 10]}
    then:
      - {key: large, type: set, values: {size: large}}
    else:
      - {key: small, type: set, values: {size: small}}
"""
REPLY = """
key: reply
trigger: {type: webhook, path: "reply/{id}", mode: sync}
nodes:
  - key: answer
    type: response
    status: "{{$context.data.code}}"
    headers: {X-Item: "{{$context.params.id}}"}
    body: {name: "{{$context.data.user.name}}", page: "{{$context.query.page}}"}
  - {key: after, type: http_test_gate, name: reply}
"""
FAILS = """
key: fails
trigger: {type: webhook, path: fails, mode: sync}
nodes:
  - {key: stop, type: end, status: failed, output: {why: broken}}
"""
SLOW = """
key: slow
trigger: {type: webhook, path: slow, mode: sync, sync_timeout: 200ms}
nodes:
  - {key: wait, type: http_test_gate, name: slow}
"""
HELD = """
key: held
trigger: {type: webhook, path: held, mode: sync, sync_timeout: 10s}
nodes:
  - {key: wait, type: http_test_gate, name: held}
"""
OFF = """
key: paused
enabled: false
trigger: {type: webhook, path: paused}
nodes:
  - {key: noop, type: set, values: {ok: true}}
"""
BUSY = """
key: busy
trigger: {type: webhook, path: busy}
concurrency: {max: 1, queue: 1}
nodes:
  - {key: wait, type: http_test_gate, name: busy}
"""
STANDARD = (ORDERS, ACKED, ECHO, STEPS, REPLY, FAILS, SLOW, HELD, OFF, BUSY)


@pytest.fixture
async def server(make_store: StoreFactory) -> AsyncIterator[Server]:
    """The standard workflows on the in-memory store, then on PostgreSQL, served on a
    free port."""
    async with running_server(STANDARD, store=make_store()) as running:
        yield running


@pytest.fixture
async def durable_server(make_durable_store: StoreFactory) -> AsyncIterator[Server]:
    """The standard workflows on a real SQLite file, then on PostgreSQL (threads: no
    autojump clock)."""
    async with running_server(STANDARD, store=make_durable_store()) as running:
        yield running
