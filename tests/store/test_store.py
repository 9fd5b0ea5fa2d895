"""The store actor: group commit, post and flush, bounded intake, shutdown, URLs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

from hookline._ids import new_id
from hookline.errors import ConfigError, StoreClosed, StoreError
from hookline.store._memory import MemoryBackend
from hookline.store._ops import RecordDelivery, SaveJob, UpdateExecution, WriteOp
from hookline.store._sqlite import SQLiteBackend
from hookline.store._store import MemoryStore, Store, open_store

from .conftest import BackendFactory, delivery, job


def rejected() -> RecordDelivery:
    return RecordDelivery(delivery(verdict="rejected", reason="test"))


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    path = tmp_path / "hookline.db"
    store = Store(SQLiteBackend(path))
    ops = [rejected() for _ in range(500)]
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        async with trio.open_nursery() as writers:
            for op in ops:
                writers.start_soon(store.write, op)
        stats = store.statistics()
        nursery.cancel_scope.cancel()

    assert stats.ops == 500
    assert stats.batches < 500 / 5
    assert stats.max_batch_size > 5
    assert stats.failed_batches == 0

    fresh = SQLiteBackend(path)
    fresh.open()
    try:
        assert all(fresh.get_delivery(op.delivery.id) is not None for op in ops)
    finally:
        fresh.close()


async def test_a_batch_holds_at_most_max_batch_ops(make_backend: BackendFactory) -> None:
    store = Store(make_backend(), max_batch=10)
    for _ in range(35):
        await store.post(rejected())
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await store.flush()
        nursery.cancel_scope.cancel()
    stats = store.statistics()
    assert stats.max_batch_size == 10
    assert stats.batches == 4
    assert stats.ops == 35


async def test_writes_queued_at_shutdown_are_committed(make_backend: BackendFactory) -> None:
    store = Store(make_backend())
    ops = [rejected() for _ in range(300)]
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        for op in ops:
            await store.post(op)
        nursery.cancel_scope.cancel()

    with pytest.raises(StoreClosed):
        await store.post(rejected())
    reopened = make_backend()
    reopened.open()
    try:
        assert all(reopened.get_delivery(op.delivery.id) is not None for op in ops)
    finally:
        reopened.close()


async def test_writes_made_before_the_store_runs_wait_for_it() -> None:
    store = MemoryStore()
    async with trio.open_nursery() as nursery:
        op = rejected()
        nursery.start_soon(store.write, op)
        await trio.testing.wait_all_tasks_blocked()
        assert store.statistics().queue_depth == 1
        await nursery.start(store.run)
        await store.flush()
        assert await store.get_delivery(op.delivery.id) is not None
        nursery.cancel_scope.cancel()


async def test_intake_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryStore(capacity=2)
    await store.post(rejected())
    await store.post(rejected())
    with trio.move_on_after(10) as waited:
        await store.post(rejected())
    assert waited.cancelled_caught
    assert store.statistics().queue_depth == 2


async def test_the_memory_store_runs_on_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    assert store.backend.threaded is False
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        start = trio.current_time()
        for _ in range(3):
            await store.write(rejected())
            await trio.sleep(60)
        assert trio.current_time() - start == pytest.approx(180)
        assert len((await store.list_deliveries()).items) == 3
        nursery.cancel_scope.cancel()


async def test_a_failing_write_raises_in_its_writer_only(store: Store) -> None:
    good = [rejected() for _ in range(20)]
    outcomes: dict[str, str] = {}

    async def write(name: str, op: WriteOp) -> None:
        try:
            await store.write(op)
        except StoreError:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "ok"

    async with trio.open_nursery() as nursery:
        for n, op in enumerate(good):
            nursery.start_soon(write, f"good{n}", op)
        nursery.start_soon(write, "bad", UpdateExecution(new_id(), "running"))

    assert outcomes.pop("bad") == "failed"
    assert set(outcomes.values()) == {"ok"}
    assert all([await store.get_delivery(op.delivery.id) for op in good])


async def test_a_failing_post_is_reported_by_the_next_flush_only(store: Store) -> None:
    await store.post(UpdateExecution(new_id(), "running"))
    after = rejected()
    await store.post(after)
    with pytest.raises(StoreError, match="does not exist"):
        await store.flush()
    await store.flush()
    assert store.statistics().failed_ops == 1
    assert await store.get_delivery(after.delivery.id) is not None


class FlakyBackend(MemoryBackend):
    """Fails whole transactions while ``failing`` is set, like a full disk."""

    failing = False

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        if self.failing:
            raise StoreError("disk full")
        return super().apply(ops)


async def test_a_batch_that_cannot_commit_fails_its_writers_not_the_store() -> None:
    backend = FlakyBackend()
    store = Store(backend)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        backend.failing = True
        with pytest.raises(StoreError, match="disk full"):
            await store.write(rejected())
        await store.post(rejected())
        with pytest.raises(StoreError, match="disk full"):
            await store.flush()
        await store.flush()

        backend.failing = False
        op = rejected()
        await store.write(op)
        assert await store.get_delivery(op.delivery.id) is not None
        assert store.statistics().failed_batches == 2
        nursery.cancel_scope.cancel()


async def test_flush_returns_after_posted_ops_commit(store: Store) -> None:
    execution_id = new_id()
    nodes = [f"node{n}" for n in range(50)]
    for node in nodes:
        await store.post(SaveJob(job(execution_id, node)))
    await store.flush()
    assert [j.node for j in store.backend.list_jobs(execution_id)] == nodes


async def test_a_stopped_store_refuses_writes_and_reads(make_backend: BackendFactory) -> None:
    store = Store(make_backend())
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        nursery.cancel_scope.cancel()
    with pytest.raises(StoreClosed):
        await store.write(rejected())
    with pytest.raises(StoreClosed):
        await store.flush()
    with pytest.raises(StoreClosed):
        await store.get_delivery(new_id())
    with pytest.raises(RuntimeError, match="once"):
        await store.run()


async def test_writers_waiting_for_room_at_shutdown_get_store_closed() -> None:
    store = MemoryStore(capacity=1, shutdown_timeout=0)
    results: list[str] = []

    async def blocked_writer() -> None:
        try:
            await store.write(rejected())
        except StoreClosed:
            results.append("closed")

    await store.post(rejected())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_writer)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.run()
    assert results == ["closed"]


async def test_a_store_that_cannot_open_fails_to_start(tmp_path: Path) -> None:
    store = Store(SQLiteBackend(tmp_path / "missing" / "hookline.db"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.post, rejected())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(StoreError, match="could not open"):
            await nursery.start(store.run)
    with pytest.raises(StoreClosed):
        await store.write(rejected())
    assert store.statistics().failed_ops == 1


def test_open_store_understands_its_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://").backend, MemoryBackend)

    relative = open_store("sqlite:///var/hookline.db").backend
    assert isinstance(relative, SQLiteBackend)
    assert relative.path == Path("var/hookline.db")

    absolute = open_store(f"sqlite:///{tmp_path}/h.db?synchronous=normal&readers=2").backend
    assert isinstance(absolute, SQLiteBackend)
    assert absolute.path == tmp_path / "h.db"
    assert (absolute.synchronous, absolute.readers) == ("NORMAL", 2)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "postgres://localhost/hookline",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/hookline.db",
        "memory://elsewhere",
        "sqlite:///h.db?synchronous=sometimes",
        "sqlite:///h.db?readers=many",
        "sqlite:///h.db?cache=big",
    ],
)
def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^store\.url: expected"):
        open_store(url)
