"""Parked waits in every backend: parking commits the wait rows, the jobs and the
``waiting`` status together; each wait ends once, by its event, by its timeout or by
hand, and a cancelled claim records the job cancelled."""

from __future__ import annotations

from hookline.store._ops import (
    AcceptDelivery,
    ClaimWaits,
    ParkExecution,
    PruneExecutions,
    SaveCancelKeys,
    UpdateExecution,
)
from hookline.store._records import WaitRecord
from hookline.store._store import Store

from .conftest import delivery, execution, job


async def _parked(
    store: Store, *, event: str = "approvals", match: str = "T-1", until: float = 2_000.0
) -> WaitRecord:
    d = delivery()
    e = execution(delivery_id=d.id, status="running")
    await store.write(AcceptDelivery(d, e))
    wait = WaitRecord(e.id, "approval", "", 1, "orders", event, match, until, 1_000.0)
    running = job(e.id, "approval", type="wait", status="running", output={"until": until})
    await store.write(ParkExecution(e.id, (wait,), (running,)))
    return wait


async def test_parking_records_the_wait_its_job_and_the_waiting_status(store: Store) -> None:
    wait = await _parked(store)
    assert await store.list_waits() == [wait]
    record = await store.get_execution(wait.execution_id)
    assert record is not None
    assert record.status == "waiting"
    [saved] = await store.list_jobs(wait.execution_id)
    assert (saved.status, saved.output) == ("running", {"until": 2_000.0})
    # Waiting executions resume on their event, not at start-up.
    assert wait.execution_id not in {r.id for r in await store.unfinished_executions()}


async def test_an_event_ends_each_matching_wait_once(store: Store) -> None:
    first = await _parked(store)
    second = await _parked(store)
    other = await _parked(store, match="T-2")
    claim = ClaimWaits(now=1_500.0, output={"data": {"ok": True}}, event="approvals", match="T-1")
    claimed = await store.write(claim)
    assert sorted(w.execution_id for w in claimed) == sorted(
        [first.execution_id, second.execution_id]
    )
    assert await store.write(claim) == []  # once
    assert await store.list_waits() == [other]
    record = await store.get_execution(first.execution_id)
    assert record is not None
    assert record.status == "queued"
    [ended] = await store.list_jobs(first.execution_id)
    assert (ended.status, ended.output, ended.finished_at) == (
        "succeeded",
        {"data": {"ok": True}},
        1_500.0,
    )


async def test_due_waits_time_out_and_by_hand_ends_one(store: Store) -> None:
    early = await _parked(store, until=1_200.0)
    late = await _parked(store, until=3_000.0)
    timed_out = {"timed_out": True}
    claimed = await store.write(ClaimWaits(now=1_500.0, output=timed_out, due=True))
    assert [w.execution_id for w in claimed] == [early.execution_id]
    [ended] = await store.list_jobs(early.execution_id)
    assert ended.output == timed_out
    by_hand = ClaimWaits(now=1_600.0, output={"by": "hand"}, execution_id=late.execution_id)
    assert [w.execution_id for w in await store.write(by_hand)] == [late.execution_id]
    assert await store.list_waits() == []


async def test_a_cancelled_claim_records_the_job_cancelled(store: Store) -> None:
    wait = await _parked(store)
    cancel = ClaimWaits(
        now=1_500.0, output=None, execution_id=wait.execution_id, status="cancelled"
    )
    assert len(await store.write(cancel)) == 1
    [ended] = await store.list_jobs(wait.execution_id)
    assert ended.status == "cancelled"


async def test_an_execution_no_longer_waiting_is_not_claimed(store: Store) -> None:
    wait = await _parked(store)
    await store.write(UpdateExecution(wait.execution_id, "cancelled", finished_at=1_100.0))
    claim = ClaimWaits(now=1_500.0, output={}, event="approvals", match="T-1")
    assert await store.write(claim) == []


async def test_parking_again_replaces_the_row(store: Store) -> None:
    wait = await _parked(store)
    again = WaitRecord(wait.execution_id, "approval", "", 2, "orders", "approvals", "T-9", 2_500.0)
    await store.write(ParkExecution(wait.execution_id, (again,)))
    assert await store.list_waits() == [again]


async def test_ending_one_wait_drops_the_executions_other_waits(store: Store) -> None:
    wait = await _parked(store)
    other = WaitRecord(wait.execution_id, "second", "", 1, "orders", "approvals", "T-2", 2_000.0)
    await store.write(ParkExecution(wait.execution_id, (other,)))
    claim = ClaimWaits(now=1_500.0, output={}, event="approvals", match="T-1")
    assert [w.node for w in await store.write(claim)] == ["approval"]
    # The other one parks again when the execution resumes; until then none is left.
    assert await store.list_waits() == []
    late = ClaimWaits(now=1_500.0, output={}, event="approvals", match="T-2")
    assert await store.write(late) == []


async def test_cancel_keys_find_the_live_executions_an_event_cancels(store: Store) -> None:
    live = await _parked(store)
    ended = await _parked(store)
    await store.write(SaveCancelKeys(live.execution_id, (("withdrawn", "T-1"), ("refunds", "R"))))
    await store.write(SaveCancelKeys(ended.execution_id, (("withdrawn", "T-1"),)))
    await store.write(UpdateExecution(ended.execution_id, "succeeded", finished_at=1_100.0))
    assert await store.cancel_targets("withdrawn", "T-1") == [live.execution_id]
    assert await store.cancel_targets("refunds", "R") == [live.execution_id]
    assert await store.cancel_targets("withdrawn", "T-2") == []
    # Pruned with its execution.
    assert await store.write(PruneExecutions("~", 10)) == 1
    await store.write(
        SaveCancelKeys(live.execution_id, (("withdrawn", "T-1"),))
    )  # again: kept once
    assert await store.cancel_targets("withdrawn", "T-1") == [live.execution_id]
