"""Updates of one execution that land in one batch are applied as one, and the stored
row is the one applying them in order would leave."""

from __future__ import annotations

import pytest

from hookline._ids import new_id
from hookline.errors import StoreError
from hookline.store._coalesce import coalesce
from hookline.store._ops import AcceptDelivery, SaveJob, UpdateExecution
from hookline.store._store import Store
from tests.store.conftest import delivery, execution, job


def test_an_update_merges_into_the_next_one_of_its_execution() -> None:
    start = UpdateExecution("e1", "running", started_at=1.0)
    other = UpdateExecution("e2", "running", started_at=1.5)
    saved = SaveJob(job("e1", "a"))
    end = UpdateExecution("e1", "succeeded", finished_at=2.0, output={"ok": True})

    applied, targets = coalesce([start, other, saved, end])

    assert applied == [
        other,
        saved,
        UpdateExecution("e1", "succeeded", started_at=1.0, finished_at=2.0, output={"ok": True}),
    ]
    # The merged update's result is the result of the one it went into.
    assert targets == [2, 0, 1, 2]


def test_updates_do_not_merge_across_an_op_that_changes_executions() -> None:
    record = execution(id="e1")
    accept = AcceptDelivery(delivery(execution_id="e1"), record)
    ops = [
        UpdateExecution("e1", "running", started_at=1.0),
        accept,
        UpdateExecution("e1", "failed"),
    ]

    applied, targets = coalesce(ops)

    assert applied == ops
    assert targets == [0, 1, 2]


async def test_a_start_and_an_end_in_one_batch_store_both(store: Store) -> None:
    d = delivery()
    e = execution(delivery_id=d.id)
    await store.write(AcceptDelivery(d, e))
    # Posted and written without a schedule point between: one batch.
    await store.post(UpdateExecution(e.id, "running", started_at=1_001.0))
    await store.write(UpdateExecution(e.id, "succeeded", finished_at=1_002.0, output={"n": 2}))

    stored = await store.get_execution(e.id)
    assert stored is not None
    assert (stored.status, stored.started_at, stored.finished_at, stored.output) == (
        "succeeded",
        1_001.0,
        1_002.0,
        {"n": 2},
    )
    statistics = store.statistics()
    assert (statistics.ops, statistics.last_batch_size) == (3, 2)


async def test_a_merged_update_of_a_missing_execution_still_fails(store: Store) -> None:
    missing = new_id()
    await store.post(UpdateExecution(missing, "running", started_at=1.0))
    with pytest.raises(StoreError, match="does not exist"):
        await store.write(UpdateExecution(missing, "failed", finished_at=2.0))
    assert store.statistics().failed_ops == 1
