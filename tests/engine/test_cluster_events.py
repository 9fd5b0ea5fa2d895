"""Events across engines sharing one PostgreSQL store (as several processes do): an
event accepted by one engine ends a wait parked by another, and its ``cancel_on``
reaches executions parked or running in another."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.store._postgres import PostgresBackend
from hookline.store._records import FINISHED_STATUSES, ExecutionRecord
from hookline.store._store import Store
from hookline.testing import register_test_nodes

from ..conftest import postgres_schema_url

register_test_nodes()

TEXTS = [
    """
    key: approval
    cancel_on: [{event: withdrawn, match: "{{$context.data.ticket}}"}]
    nodes:
      - key: answer
        type: wait
        event: reactions
        match: "{{$context.data.ticket}}"
        timeout: 30s
        then: [{key: approved, type: set, values: {by: "{{$nodes.answer.data.user}}"}}]
    """,
    """
    key: long
    cancel_on: [{event: withdrawn, match: "{{$context.data.ticket}}"}]
    nodes: [{key: nap, type: sleep, duration: 20s}]
    """,
    """
    key: reactions
    trigger: {path: reactions, correlate: "{{$context.data.ticket}}"}
    nodes: [{key: seen, type: set, values: {ok: true}}]
    """,
    """
    key: withdrawn
    trigger: {path: withdrawn, correlate: "{{$context.data.ticket}}"}
    nodes: [{key: seen, type: set, values: {ok: true}}]
    """,
]
WORKFLOWS = [
    load_workflow_text(textwrap.dedent(text), source=f"{n}.yaml") for n, text in enumerate(TEXTS)
]


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return postgres_schema_url(request)


@asynccontextmanager
async def two_engines(url: str) -> AsyncIterator[tuple[Engine, Engine]]:
    def store() -> Store:
        return Store(PostgresBackend(url, heartbeat=0.1, lease=0.6))

    async with open_engine(WORKFLOWS, store=store()) as first:
        async with open_engine(WORKFLOWS, store=store()) as second:
            yield first, second


async def ended(engine: Engine, execution_id: str) -> ExecutionRecord:
    with trio.fail_after(10):
        while True:
            record = await engine.store.get_execution(execution_id)
            if record is not None and record.status in FINISHED_STATUSES:
                return record
            await trio.sleep(0.05)


async def parked(engine: Engine, execution_id: str) -> None:
    with trio.fail_after(10):
        while (await engine.store.get_execution(execution_id)).status != "waiting":  # type: ignore[union-attr]
            await trio.sleep(0.05)


async def test_an_event_accepted_by_one_engine_ends_a_wait_parked_by_another(url: str) -> None:
    async with two_engines(url) as (first, second):
        waiting = [
            (await first.submit("approval", data={"ticket": f"T-{n}"})).execution_id
            for n in range(3)
        ]
        for execution_id in waiting:
            await parked(first, execution_id)
        for n in range(3):
            await second.submit("reactions", data={"ticket": f"T-{n}", "user": f"U{n}"})
        for n, execution_id in enumerate(waiting):
            record = await ended(second, execution_id)
            assert (record.status, record.output) == ("succeeded", {"by": f"U{n}"})
        # Each wait ended once: the same event again reaches nothing.
        await second.submit("reactions", data={"ticket": "T-0", "user": "again"})
        jobs = await second.store.list_jobs(waiting[0])
        assert [job.status for job in jobs if job.node == "answer"].count("succeeded") == 1


async def test_cancel_on_reaches_executions_of_another_engine(url: str) -> None:
    async with two_engines(url) as (first, second):
        waiting = (await first.submit("approval", data={"ticket": "T-7"})).execution_id
        running = (await first.submit("long", data={"ticket": "T-7"})).execution_id
        await parked(first, waiting)
        await trio.sleep(0.3)  # the long one is running in the first engine
        await second.submit("withdrawn", data={"ticket": "T-7"})
        parked_end = await ended(second, waiting)
        assert parked_end.status == "cancelled"
        assert parked_end.error == "cancelled by an event of withdrawn (T-7)"
        assert (await ended(first, running)).status == "cancelled"
