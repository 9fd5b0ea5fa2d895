"""Engines sharing one PostgreSQL store, as several processes do: limits that hold
across them all, work handed over when one stops or is declared dead, cancels that
reach the engine running the execution.

Each engine here has a store of its own over one schema (its own worker), in one trio
program; tests/e2e/test_cluster_*.py do the same with real processes and SIGKILL.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
import trio

from hookline.engine._answers import ExecutionOutcome
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import LeaseLost, StoreError
from hookline.store._postgres import PostgresBackend
from hookline.store._records import ExecutionRecord
from hookline.store._store import Store
from hookline.testing import register_test_nodes

from ..conftest import postgres_schema_url

register_test_nodes()

NAPPING = load_workflow_text(
    textwrap.dedent(
        """
        key: napping
        concurrency: {max: 2, queue: 100, order_by: "{{$context.data.key}}"}
        nodes:
          - {key: nap, type: sleep, duration: 0.15s}
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
        """
    ),
    source="napping.yaml",
)
LONG = load_workflow_text(
    textwrap.dedent(
        """
        key: long
        nodes:
          - {key: nap, type: sleep, duration: 1.5s}
          - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
        """
    ),
    source="long.yaml",
)


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return postgres_schema_url(request)


def store(url: str) -> Store:
    return Store(PostgresBackend(url, heartbeat=0.1, lease=0.6))


@asynccontextmanager
async def engines(url: str, count: int) -> AsyncIterator[list[Engine]]:
    async with open_engine([NAPPING, LONG], store=store(url)) as first:
        if count == 1:
            yield [first]
            return
        async with engines(url, count - 1) as rest:
            yield [first, *rest]


def executions(url: str, workflow: str) -> list[ExecutionRecord]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, status, started_at, finished_at, order_key, owner FROM executions "
            "WHERE workflow = %s ORDER BY seq",
            (workflow,),
        ).fetchall()
    return [
        ExecutionRecord(
            id=row[0],
            workflow=workflow,
            delivery_id=None,
            status=row[1],
            created_at=0,
            context={"owner": row[5]},
            started_at=row[2],
            finished_at=row[3],
            order_key=row[4],
        )
        for row in rows
    ]


def most_at_once(records: list[ExecutionRecord]) -> int:
    edges = sorted(
        [(r.started_at, 1) for r in records if r.started_at is not None]
        + [(r.finished_at, -1) for r in records if r.finished_at is not None]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_concurrency_max_and_order_hold_across_engines(url: str) -> None:
    async def send(key: int, all_engines: list[Engine]) -> None:
        # One sender per key, each delivery sent once the previous one was accepted,
        # each to the next engine (as a load balancer would spread them).
        for n in range(5):
            await all_engines[(key + n) % 3].submit("napping", data={"n": n, "key": key})

    async with engines(url, 3) as all_engines:
        async with trio.open_nursery() as nursery:
            for key in range(4):
                nursery.start_soon(send, key, all_engines)
        with trio.fail_after(20):
            while any(r.status != "succeeded" for r in executions(url, "napping")):
                await trio.sleep(0.1)
    records = executions(url, "napping")
    assert len(records) == 20
    # Two at once at most, across the three engines, and the work was spread over them.
    assert most_at_once(records) == 2
    assert len({r.context["owner"] for r in records}) == 3
    for key in ("0", "1", "2", "3"):
        lane = [r for r in records if r.order_key == key]
        assert len(lane) == 5
        for earlier, later in itertools.pairwise(lane):
            assert earlier.finished_at is not None
            assert later.started_at is not None
            assert later.started_at >= earlier.finished_at


async def test_what_a_stopping_engine_leaves_is_taken_over(url: str) -> None:
    async with open_engine([LONG], store=store(url)) as survivor:
        async with open_engine([LONG], store=store(url), shutdown_timeout=0.1) as leaving:
            for n in range(3):
                await leaving.submit("long", data={"n": n})
            await trio.sleep(0.2)
        # The leaving engine cancelled its running executions and removed its worker:
        # the survivor resumes them without waiting for a lease to run out.
        with trio.fail_after(10):
            while any(r.status != "succeeded" for r in executions(url, "long")):
                await trio.sleep(0.1)
        stats = survivor.statistics().cluster
        assert stats is not None
        assert stats.adopted == 3


async def test_an_engine_declared_dead_stops_and_its_work_moves(url: str) -> None:
    async with open_engine([LONG], store=store(url)):
        with pytest.raises(LeaseLost):  # noqa: PT012
            async with open_engine([LONG], store=store(url)) as doomed:
                admission = await doomed.submit("long", data={"n": 1})
                await trio.sleep(0.3)
                worker = doomed.statistics().cluster
                assert worker is not None
                # As another process does once it counted this one dead (it was paused
                # past its lease): its worker row goes, its executions are adopted.
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("DELETE FROM workers WHERE id = %s", (worker.worker_id,))
                with trio.fail_after(10):
                    await trio.sleep_forever()
        with trio.fail_after(10):
            while executions(url, "long")[0].status != "succeeded":
                await trio.sleep(0.1)
    [record] = executions(url, "long")
    assert record.context["owner"] != worker.worker_id
    with psycopg.connect(url, autocommit=True) as conn:
        done = conn.execute(
            "SELECT count(*) FROM jobs WHERE execution_id = %s AND node = 'done' "
            "AND status = 'succeeded'",
            (admission.execution_id,),
        ).fetchone()
    assert done == (1,)


async def cancel_from(other: Engine, runner: Engine) -> ExecutionOutcome:
    """Start a ``long`` execution in ``runner``, cancel it through ``other`` while it
    runs; how it ended."""
    admission = await runner.submit("long", data={"n": 1})
    await trio.sleep(0.3)
    assert await other.cancel(admission.execution_id)
    assert admission.handle is not None
    with trio.fail_after(5):
        return await admission.handle.wait_finished()


async def test_a_cancel_reaches_the_engine_running_the_execution(url: str) -> None:
    async with engines(url, 2) as (runner, other):
        outcome = await cancel_from(other, runner)
    assert outcome.status == "cancelled"


async def test_a_cancel_sent_while_the_owner_is_down_is_carried_out_by_its_adopter(
    url: str,
) -> None:
    async with open_engine([LONG], store=store(url), shutdown_timeout=0) as owner:
        admission = await owner.submit("long", data={"n": 1})
        await trio.sleep(0.3)
    # The owner is gone, its execution unfinished; no engine runs to hear the cancel.
    sender = PostgresBackend(url)
    sender.open()
    try:
        assert sender.coordinator is not None
        sender.coordinator.request_cancel(admission.execution_id)
    finally:
        sender.close()
    async with open_engine([LONG], store=store(url)) as adopter:
        with trio.fail_after(10):
            while executions(url, "long")[0].status == "running":
                await trio.sleep(0.05)
        stats = adopter.statistics().cluster
    assert stats is not None
    assert stats.adopted == 1
    [record] = executions(url, "long")
    assert record.status == "cancelled"
    with psycopg.connect(url, autocommit=True) as conn:
        done = conn.execute(
            "SELECT count(*) FROM jobs WHERE execution_id = %s AND node = 'done'",
            (admission.execution_id,),
        ).fetchone()
    assert done == (0,)


async def test_a_wake_up_that_fails_to_be_acted_on_leaves_the_engine_listening(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reloads = 0

    async def failing_reload() -> None:
        nonlocal reloads
        reloads += 1
        raise StoreError("the database went away")

    async with engines(url, 2) as (runner, other):
        assert runner.cluster is not None
        runner.cluster.on_definitions_changed = failing_reload
        await other.definitions_changed()
        with trio.fail_after(5):
            while reloads == 0:
                await trio.sleep(0.02)
        # Still listening: a cancel from the other engine still reaches it.
        outcome = await cancel_from(other, runner)
    assert outcome.status == "cancelled"
    assert "could not act on a wake-up" in caplog.text


async def test_a_cancel_whose_wake_up_was_missed_is_found_at_the_next_heartbeat(
    url: str,
) -> None:
    async with engines(url, 1) as (runner,):
        admission = await runner.submit("long", data={"n": 1})
        await trio.sleep(0.3)
        # Recorded, but no NOTIFY: as when the owner's listener was reconnecting.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE executions SET cancel_requested = true WHERE id = %s",
                (admission.execution_id,),
            )
        assert admission.handle is not None
        with trio.fail_after(5):
            outcome = await admission.handle.wait_finished()
    assert outcome.status == "cancelled"
