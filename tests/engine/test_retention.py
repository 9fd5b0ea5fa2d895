"""Retention: old finished executions (with their jobs), old deliveries and expired
idempotency keys are pruned in small batches; unfinished executions never are."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import trio
import trio.testing

from hookline._ids import id_time, new_id
from hookline.engine._definition import Workflow
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.engine._retention import Retention, RetentionPolicy, id_floor
from hookline.store._backend import StoreBackend
from hookline.store._ops import WriteOp
from hookline.store._store import MemoryStore, Store
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()

DAY = 86400.0


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


QUICK = workflow(
    """
    key: quick
    trigger: {type: webhook, idempotency: {ttl: 1h}}
    nodes:
      - {key: step, type: set, values: {n: "{{$context.data.n}}"}}
    """
)
SLOW = workflow(
    """
    key: slow
    nodes:
      - {key: nap, type: sleep, duration: 1h}
    """
)


class FakeWallClock:
    """Wall time that moves only when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CountingStore(Store):
    """A store that remembers every op written through ``write``."""

    def __init__(self, backend: StoreBackend) -> None:
        super().__init__(backend)
        self.written: list[WriteOp] = []

    async def write(self, op: WriteOp) -> Any:
        self.written.append(op)
        return await super().write(op)


async def fill(engine: Engine, count: int) -> list[str]:
    ids = []
    for n in range(count):
        outcome = await engine.run("quick", data={"n": n}, headers={"Idempotency-Key": f"k{n}"})
        ids.append(outcome.execution_id)
    return ids


def test_id_floor_separates_ids_made_before_and_after_a_time() -> None:
    before = new_id()
    now = time.time() + 0.002
    time.sleep(0.004)
    after = new_id()
    floor = id_floor(now)
    assert before < floor <= after
    assert id_time(floor) == int(now * 1000) / 1000


async def test_a_sweep_prunes_what_is_older_than_the_policy_in_batches(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = CountingStore(make_store.backend())
    clock = FakeWallClock()
    policy = RetentionPolicy(executions=30 * DAY, deliveries=7 * DAY, batch=3, clock=clock)
    retention = Retention(store, policy)
    async with open_engine([QUICK, SLOW], store=store) as engine:
        old = await fill(engine, 7)
        unfinished = await engine.submit("slow")
        clock.now += 10 * DAY  # deliveries and keys are due, executions are not
        await retention.sweep()
        kept = [await store.get_execution(id) for id in old]
        deliveries = await store.list_deliveries(limit=50)
        key = await store.get_idempotency("quick", "k0")
        assert all(record is not None for record in kept)
        assert deliveries.items == ()
        assert key is None
        clock.now += 30 * DAY
        store.written.clear()
        await retention.sweep()
        gone = [await store.get_execution(id) for id in old]
        jobs = [await store.list_jobs(id) for id in old]
        still = await store.get_execution(unfinished.execution_id)
    assert gone == [None] * 7
    assert jobs == [[]] * 7
    assert still is not None  # running: never pruned, however old
    assert still.status == "running"
    limits = [getattr(op, "limit", None) for op in store.written]
    assert limits
    assert set(limits) == {3}
    stats = retention.statistics()
    assert (stats.sweeps, stats.executions, stats.deliveries, stats.idempotency) == (2, 7, 8, 7)


async def test_the_engine_prunes_in_the_background(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    clock = FakeWallClock()
    policy = RetentionPolicy(executions=DAY, deliveries=DAY, interval=60, clock=clock)
    store = make_store()
    async with open_engine([QUICK], store=store, retention=policy) as engine:
        ids = await fill(engine, 3)
        await trio.sleep(61)
        assert await store.get_execution(ids[0]) is not None  # not old yet
        clock.now += 2 * DAY
        await trio.sleep(60)
        assert [await store.get_execution(id) for id in ids] == [None] * 3
        # Ingest goes on as before.
        assert (await engine.run("quick", data={"n": 9})).status == "succeeded"
        stats = engine.statistics().retention
    assert stats is not None
    assert stats.executions == 3


# Memory only: on PostgreSQL the engine's cluster loops wake every quarter of a virtual
# second, so 10 virtual days take minutes of real time.
async def test_without_a_policy_nothing_is_pruned(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryStore()
    async with open_engine([QUICK], store=store) as engine:
        ids = await fill(engine, 2)
        await trio.sleep(10 * DAY)
        assert engine.statistics().retention is None
        assert all([await store.get_execution(id) for id in ids])


async def test_a_database_prunes_the_same_way(make_durable_store: StoreFactory) -> None:
    store = make_durable_store()
    clock = FakeWallClock()
    retention = Retention(store, RetentionPolicy(executions=DAY, deliveries=DAY, clock=clock))
    async with open_engine([QUICK, SLOW], store=store) as engine:
        old = await fill(engine, 4)
        unfinished = await engine.submit("slow")
        clock.now += 2 * DAY
        await retention.sweep()
        gone = [await store.get_execution(id) for id in old]
        jobs = [await store.list_jobs(id) for id in old]
        still = await store.get_execution(unfinished.execution_id)
        deliveries = await store.list_deliveries(limit=50)
        key = await store.get_idempotency("quick", "k0")
        await engine.cancel(unfinished.execution_id)
    assert gone == [None] * 4
    assert jobs == [[]] * 4
    assert still is not None
    assert deliveries.items == ()
    assert key is None
