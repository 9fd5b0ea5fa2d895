"""Store.observe: observers hear of committed batches only, with each op's result."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from hookline.errors import StoreError
from hookline.store._memory import MemoryBackend
from hookline.store._observe import CommittedBatch
from hookline.store._ops import RecordDelivery, UpdateExecution, WriteOp
from hookline.store._store import MemoryStore, Store

from .conftest import delivery


class _FailingBackend(MemoryBackend):
    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        raise StoreError("the disk is full")


async def test_an_observer_hears_each_committed_op_and_its_result() -> None:
    store = MemoryStore()
    seen: list[CommittedBatch] = []
    store.observe(seen.append)
    store.observe(seen.append)  # a second registration changes nothing
    recorded = RecordDelivery(delivery(verdict="rejected", reason="test"))
    missing = UpdateExecution("no-such-execution", "running")
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await store.post(recorded)
        await store.post(missing)
        with pytest.raises(StoreError):
            await store.flush()
        nursery.cancel_scope.cancel()

    assert len(seen) == 1
    assert seen[0].ops == (recorded, missing)
    assert seen[0].results[0] is None
    assert isinstance(seen[0].results[1], StoreError)


async def test_a_batch_that_fails_to_commit_is_not_observed() -> None:
    store = Store(_FailingBackend())
    seen: list[CommittedBatch] = []
    store.observe(seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        with pytest.raises(StoreError, match="disk is full"):
            await store.write(RecordDelivery(delivery(verdict="rejected", reason="test")))
        nursery.cancel_scope.cancel()

    assert seen == []


async def test_an_observer_that_raises_does_not_fail_the_write() -> None:
    store = MemoryStore()
    heard: list[int] = []

    def broken(batch: CommittedBatch) -> None:
        raise RuntimeError("bug in a metrics exporter")

    store.observe(broken)
    store.observe(lambda batch: heard.append(len(batch.ops)))
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await store.write(RecordDelivery(delivery(verdict="rejected", reason="test")))
        nursery.cancel_scope.cancel()

    assert heard == [1]
