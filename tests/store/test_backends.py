"""Behaviour every backend shares, checked through a running Store on SQLite and memory."""

from __future__ import annotations

import datetime
import time

import attrs
import pytest

from hookline._ids import new_id
from hookline.errors import StoreError
from hookline.store._ops import (
    AcceptDelivery,
    IdempotencyClaim,
    PruneExecutions,
    RecordDelivery,
    SaveAnswer,
    SaveJob,
    SaveWorkflow,
    UpdateExecution,
)
from hookline.store._records import Answer, IdempotencyRecord, WorkflowRecord
from hookline.store._store import Store

from .conftest import BackendFactory, delivery, execution, job


async def accept(store: Store, **fields: object) -> tuple[str, str]:
    d = delivery()
    e = execution(delivery_id=d.id, **fields)  # type: ignore[arg-type]
    assert await store.write(AcceptDelivery(d, e)) is None
    return d.id, e.id


async def test_accepted_delivery_and_execution_read_back(store: Store) -> None:
    d = delivery(headers={"x-github-event": "push"}, query={"tags": ["a", "b"]})
    e = execution(delivery_id=d.id, context={"data": {"items": (1, 2)}, "n": None})
    assert await store.write(AcceptDelivery(d, e)) is None

    stored = await store.get_execution(e.id)
    assert stored == attrs.evolve(e, context={"data": {"items": [1, 2]}, "n": None})
    got = await store.get_delivery(d.id)
    assert got == attrs.evolve(d, execution_id=e.id, query={"tags": ["a", "b"]})
    assert await store.get_execution(new_id()) is None
    assert await store.get_delivery(new_id()) is None


async def test_rejected_delivery_is_listed_with_its_reason(store: Store) -> None:
    refused = delivery(verdict="rejected", reason="bad signature", status=403)
    await store.write(RecordDelivery(refused))
    await accept(store)

    page = await store.list_deliveries(verdict="rejected")
    assert page.items == (refused,)
    assert page.cursor is None


async def test_update_execution_changes_only_given_fields(store: Store) -> None:
    _, id = await accept(store)
    await store.write(UpdateExecution(id, "running", started_at=1_001.0))
    await store.write(UpdateExecution(id, "running", output={"partial": True}))
    running = await store.get_execution(id)
    assert running is not None
    assert (running.status, running.started_at, running.output) == (
        "running",
        1_001.0,
        {"partial": True},
    )

    await store.write(UpdateExecution(id, "failed", finished_at=1_002.0, error="boom"))
    failed = await store.get_execution(id)
    assert failed is not None
    assert failed.started_at == 1_001.0
    assert (failed.status, failed.finished_at, failed.error) == ("failed", 1_002.0, "boom")
    assert failed.output == {"partial": True}

    await store.write(UpdateExecution(id, "failed", output=None))
    cleared = await store.get_execution(id)
    assert cleared is not None
    assert cleared.output is None
    assert cleared.error == "boom"


async def test_update_of_a_missing_execution_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.write(UpdateExecution(new_id(), "running"))


async def test_jobs_come_back_in_the_order_saved(store: Store) -> None:
    _, id = await accept(store)
    _, other = await accept(store)
    nodes = ["fetch", "check", "notify", "end"]
    for node in nodes:
        await store.post(SaveJob(job(id, node, output={"node": node}, log=("a", "b"))))
    await store.post(SaveJob(job(other, "elsewhere")))
    await store.flush()

    jobs = await store.list_jobs(id)
    assert [j.node for j in jobs] == nodes
    assert jobs[2].output == {"node": "notify"}
    assert jobs[2].log == ("a", "b")
    assert await store.list_jobs(new_id()) == []


async def test_odd_values_are_stored_as_text(store: Store) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    _, id = await accept(store, context={"at": when, "big": 10**40, "tags": {"x"}})

    stored = await store.get_execution(id)
    assert stored is not None
    assert stored.context == {"at": str(when), "big": str(10**40), "tags": "{'x'}"}


async def test_workflows_are_replaced_and_listed_by_key(store: Store) -> None:
    def workflow(key: str, title: str) -> WorkflowRecord:
        return WorkflowRecord(
            key, title, enabled=True, source=f"key: {key}", digest="d", updated_at=1.0
        )

    await store.write(SaveWorkflow(workflow("zeta", "Z")))
    await store.write(SaveWorkflow(workflow("alpha", "A")))
    await store.write(SaveWorkflow(attrs.evolve(workflow("zeta", "Z2"), enabled=False)))

    listed = await store.list_workflows()
    assert [(w.key, w.title, w.enabled) for w in listed] == [
        ("alpha", "A", True),
        ("zeta", "Z2", False),
    ]


async def test_pages_of_executions_follow_the_cursor_newest_first(store: Store) -> None:
    ids = []
    for n in range(7):
        _, id = await accept(store, workflow="orders" if n % 2 == 0 else "users")
        ids.append(id)
    newest_first = ids[::-1]

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await store.list_executions(limit=3, cursor=cursor)
        seen.extend(e.id for e in page.items)
        cursor = page.cursor
    assert seen == newest_first
    assert cursor is None

    orders = await store.list_executions(workflow="orders", limit=2)
    assert [e.id for e in orders.items] == [ids[6], ids[4]]
    rest = await store.list_executions(workflow="orders", limit=2, cursor=orders.cursor)
    assert [e.id for e in rest.items] == [ids[2], ids[0]]
    assert rest.cursor is None


async def test_executions_filter_by_status_and_unfinished_come_oldest_first(
    store: Store,
) -> None:
    ids = [(await accept(store))[1] for _ in range(4)]
    await store.write(UpdateExecution(ids[1], "succeeded"))
    await store.write(UpdateExecution(ids[2], "running"))

    done = await store.list_executions(status="succeeded")
    assert [e.id for e in done.items] == [ids[1]]
    unfinished = await store.unfinished_executions()
    assert [e.id for e in unfinished] == [ids[0], ids[2], ids[3]]


async def test_throttled_and_waiting_executions_are_live_and_only_throttled_resumes(
    store: Store,
) -> None:
    ids = [(await accept(store))[1] for _ in range(4)]
    await store.write(UpdateExecution(ids[0], "throttled"))
    await store.write(UpdateExecution(ids[1], "running", started_at=1_000.0))
    await store.write(UpdateExecution(ids[1], "waiting"))
    await store.write(UpdateExecution(ids[2], "succeeded", finished_at=1_002.0))

    throttled = await store.get_execution(ids[0])
    assert throttled is not None
    assert throttled.status == "throttled"
    waiting = await store.get_execution(ids[1])
    assert waiting is not None
    assert (waiting.status, waiting.started_at) == ("waiting", 1_000.0)
    assert [e.id for e in (await store.list_executions(status="throttled")).items] == [ids[0]]
    assert [e.id for e in (await store.list_executions(status="waiting")).items] == [ids[1]]
    # A restart queues throttled ones again; waiting ones go on when their event comes.
    assert [e.id for e in await store.unfinished_executions()] == [ids[0], ids[3]]
    # Retention never deletes a live execution.
    assert await store.write(PruneExecutions(before_id=new_id(), limit=10)) == 1
    assert await store.get_execution(ids[1]) is not None
    assert await store.get_execution(ids[2]) is None


async def test_a_newer_execution_of_a_debounce_key_not_cancelled_supersedes(
    store: Store,
) -> None:
    key = "record\x00-1"  # stored as text the backend can hold, found all the same
    ids = [(await accept(store, flow_key=key))[1] for _ in range(4)]
    other_key = (await accept(store, flow_key="record-2"))[1]
    other_workflow = (await accept(store, workflow="audit", flow_key=key))[1]
    not_debounced = (await accept(store))[1]

    stored = await store.get_execution(ids[0])
    assert stored is not None
    assert stored.flow_key in (key, "record\ufffd-1")  # PostgreSQL's text holds no NUL
    # The newest of its key after it, whatever its other executions and keys.
    assert await store.superseding_execution("orders", key, ids[0]) == ids[3]
    await store.write(UpdateExecution(ids[3], "cancelled", error="cancelled by hand"))
    await store.write(UpdateExecution(ids[2], "succeeded", finished_at=1_002.0))
    # A cancelled one supersedes nothing; one that ran (or runs) does.
    assert await store.superseding_execution("orders", key, ids[0]) == ids[2]
    assert await store.superseding_execution("orders", key, ids[2]) is None
    assert await store.superseding_execution("orders", key, ids[3]) is None
    assert await store.superseding_execution("orders", "record-2", other_key) is None
    assert await store.superseding_execution("audit", key, other_workflow) is None
    assert await store.superseding_execution("orders", key, not_debounced) is None


async def test_pages_of_deliveries_filter_by_workflow_and_verdict(store: Store) -> None:
    kept = []
    for n in range(5):
        d = delivery(workflow="orders", verdict="rejected", reason=f"#{n}")
        await store.post(RecordDelivery(d))
        kept.append(d.id)
        await store.post(RecordDelivery(delivery(workflow="users", verdict="rejected")))
    await store.post(RecordDelivery(delivery(workflow=None, verdict="rejected")))
    await store.flush()

    first = await store.list_deliveries(workflow="orders", verdict="rejected", limit=4)
    second = await store.list_deliveries(
        workflow="orders", verdict="rejected", limit=4, cursor=first.cursor
    )
    assert [d.id for d in first.items + second.items] == kept[::-1]
    assert second.cursor is None
    assert len((await store.list_deliveries(limit=100)).items) == 11


async def test_a_page_that_ends_the_list_has_no_cursor(store: Store) -> None:
    for _ in range(4):
        await accept(store)
    page = await store.list_executions(limit=4)
    assert len(page.items) == 4
    assert page.cursor is None
    with pytest.raises(ValueError, match="limit"):
        await store.list_executions(limit=0)


def claimed(
    key: str, *, received_at: float, ttl: float = 60.0, answer: Answer | None = None
) -> AcceptDelivery:
    d = delivery(received_at=received_at)
    e = execution(delivery_id=d.id, created_at=received_at)
    return AcceptDelivery(d, e, IdempotencyClaim(key, "hash-1", received_at + ttl), answer)


async def test_a_live_idempotency_key_stores_nothing_and_gives_the_first(store: Store) -> None:
    accepted = Answer(202, (("content-type", "application/json"),), b'{"ok": true}')
    first = claimed("evt-1", received_at=1_000.0, answer=accepted)
    assert await store.write(first) is None

    again = claimed("evt-1", received_at=1_030.0)
    earlier = await store.write(again)

    assert isinstance(earlier, IdempotencyRecord)
    assert earlier.execution_id == first.execution.id
    assert earlier.answer == accepted
    assert await store.get_execution(again.execution.id) is None
    # The engine records the duplicate with the answer it decides on (replay, 409, 422).
    assert await store.get_delivery(again.delivery.id) is None


async def test_idempotency_keys_are_scoped_by_workflow(store: Store) -> None:
    await store.write(claimed("evt-1", received_at=1_000.0))
    other = claimed("evt-1", received_at=1_001.0)
    other = attrs.evolve(other, execution=attrs.evolve(other.execution, workflow="users"))
    assert await store.write(other) is None


async def test_an_expired_idempotency_key_is_claimed_again(store: Store) -> None:
    first = claimed("evt-1", received_at=1_000.0, ttl=60.0)
    await store.write(first)

    later = claimed("evt-1", received_at=1_060.0)
    assert await store.write(later) is None
    assert await store.get_execution(later.execution.id) is not None


async def test_get_idempotency_sees_live_keys_only(store: Store) -> None:
    now = time.time()
    await store.write(claimed("live", received_at=now, ttl=3_600.0))
    await store.write(claimed("gone", received_at=now - 120.0, ttl=60.0))

    live = await store.get_idempotency("orders", "live")
    assert live is not None
    assert (live.key, live.body_hash, live.answer) == ("live", "hash-1", None)
    assert await store.get_idempotency("orders", "gone") is None
    assert await store.get_idempotency("users", "live") is None


async def test_save_answer_is_kept_for_replays(store: Store) -> None:
    op = claimed("evt-1", received_at=time.time())
    await store.write(op)
    answer = Answer(200, (("x-result", "ok"),), b"done")
    await store.write(SaveAnswer(op.delivery.id, answer, "orders", "evt-1"))

    record = await store.get_idempotency("orders", "evt-1")
    assert record is not None
    assert record.answer == answer
    got = await store.get_delivery(op.delivery.id)
    assert got is not None
    assert got.status == 200


async def test_save_answer_leaves_a_key_claimed_again_by_someone_else(store: Store) -> None:
    now = time.time()
    old = claimed("evt-1", received_at=now - 120.0, ttl=60.0)
    new = claimed("evt-1", received_at=now, ttl=60.0)
    await store.write(old)
    await store.write(new)

    await store.write(SaveAnswer(old.delivery.id, Answer(500), "orders", "evt-1"))
    record = await store.get_idempotency("orders", "evt-1")
    assert record is not None
    assert record.execution_id == new.execution.id
    assert record.answer is None


async def test_save_answer_for_an_unknown_delivery_fails(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.write(SaveAnswer(new_id(), Answer(200)))


def test_a_key_claimed_twice_in_one_batch_is_a_duplicate(make_backend: BackendFactory) -> None:
    backend = make_backend()
    backend.open()
    try:
        first = claimed("evt-1", received_at=1_000.0)
        second = claimed("evt-1", received_at=1_000.0)
        results = backend.apply([first, second])
        assert results[0] is None
        assert isinstance(results[1], IdempotencyRecord)
        assert results[1].execution_id == first.execution.id
        assert backend.get_execution(second.execution.id) is None
    finally:
        backend.close()


def test_one_failing_op_does_not_fail_its_batch_mates(make_backend: BackendFactory) -> None:
    backend = make_backend()
    backend.open()
    try:
        first = delivery(verdict="rejected")
        accepted = AcceptDelivery(delivery(), execution())
        # Same execution id: the delivery part must be undone with the op, not kept.
        clash = AcceptDelivery(delivery(), attrs.evolve(execution(), id=accepted.execution.id))
        last = delivery(verdict="rejected")

        results = backend.apply(
            [
                RecordDelivery(first),
                UpdateExecution(new_id(), "running"),
                accepted,
                RecordDelivery(first),
                clash,
                RecordDelivery(last),
            ]
        )

        assert [type(r).__name__ for r in results] == [
            "NoneType",
            "StoreError",
            "NoneType",
            "StoreError",
            "StoreError",
            "NoneType",
        ]
        assert backend.get_delivery(first.id) is not None
        assert backend.get_delivery(last.id) is not None
        assert backend.get_execution(accepted.execution.id) is not None
        assert backend.get_delivery(clash.delivery.id) is None
    finally:
        backend.close()
