"""Forming a ``batch`` in every backend: one transaction makes one execution of its
queued members, and a member is claimed by one batch at most (also across processes
sharing PostgreSQL)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from hookline.store._batching import BATCHED_INTO, FormBatch, FormedBatch
from hookline.store._ops import AcceptDelivery, UpdateExecution
from hookline.store._postgres import PostgresBackend
from hookline.store._store import Store

from ..conftest import postgres_schema_url
from .conftest import delivery, execution


async def accept(store: Store, n: int) -> str:
    d = delivery()
    e = execution(delivery_id=d.id, context={"data": {"n": n}, "delivery_id": d.id})
    assert await store.write(AcceptDelivery(d, e)) is None
    return e.id


async def form(store: Store, members: list[str]) -> FormedBatch | None:
    formed = await store.write(FormBatch(tuple(members), finished_at=2_000.0))
    assert formed is None or isinstance(formed, FormedBatch)
    return formed


async def test_a_batch_is_its_first_member_holding_every_members_context(store: Store) -> None:
    members = [await accept(store, n) for n in range(3)]
    formed = await form(store, members)
    assert formed is not None
    assert formed.execution_id == members[0]
    assert formed.members == tuple(members)

    head = await store.get_execution(members[0])
    assert head is not None
    assert head.status == "queued"
    assert head.context["data"] == {"n": 0}  # the first member's own context, and:
    batch = head.context["batch"]
    assert [entry["data"]["n"] for entry in batch] == [0, 1, 2]
    assert [entry["execution_id"] for entry in batch] == members
    assert list(formed.batch) == batch
    for id_ in members[1:]:
        member = await store.get_execution(id_)
        assert member is not None
        assert (member.status, member.output) == ("succeeded", {BATCHED_INTO: members[0]})
        assert member.finished_at == 2_000.0


async def test_only_members_still_queued_and_unbatched_are_claimed(store: Store) -> None:
    members = [await accept(store, n) for n in range(5)]
    await store.write(UpdateExecution(members[0], "cancelled", finished_at=1_500.0))
    first = await form(store, members[1:3])
    assert first is not None
    assert first.members == tuple(members[1:3])
    # Formed already (its execution, its members), or cancelled: none is taken again.
    again = await form(store, members)
    assert again is not None
    assert again.execution_id == members[3]
    assert again.members == tuple(members[3:])
    assert await form(store, members[:3]) is None
    cancelled = await store.get_execution(members[0])
    assert cancelled is not None
    assert cancelled.status == "cancelled"


@pytest.fixture
def shared_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL schema that several backends (processes) open."""
    return postgres_schema_url(request)


def accept_through(backend: PostgresBackend, count: int) -> list[str]:
    ids = []
    for n in range(count):
        d = delivery()
        e = execution(delivery_id=d.id, context={"data": {"n": n}})
        assert backend.apply([AcceptDelivery(d, e)]) == [None]
        ids.append(e.id)
    return ids


def set_owner(url: str, owner: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE executions SET owner = %s", (owner,))


def members_of(results: list[object]) -> list[str]:
    return [id_ for found in results if isinstance(found, FormedBatch) for id_ in found.members]


def test_two_processes_closing_overlapping_windows_at_once_claim_each_member_once(
    shared_url: str,
) -> None:
    a, b = PostgresBackend(shared_url), PostgresBackend(shared_url)
    a.open()
    b.open()
    try:
        ids = accept_through(a, 60)
        set_owner(shared_url, None)  # (stored before processes owned them): both may
        results: dict[str, list[object]] = {}

        def close(name: str, backend: PostgresBackend, members: list[str]) -> None:
            ops = [FormBatch(tuple(members[i : i + 10]), 2_000.0) for i in range(0, 60, 10)]
            results[name] = backend.apply(ops)

        threads = [
            threading.Thread(target=close, args=("a", a, ids)),
            threading.Thread(target=close, args=("b", b, ids[5:])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        claimed = members_of(results["a"]) + members_of(results["b"])
        assert sorted(claimed) == sorted(ids)  # every member in one batch, none in two
    finally:
        a.close()
        b.close()


def test_a_process_whose_executions_were_adopted_claims_none_of_them(shared_url: str) -> None:
    a, b = PostgresBackend(shared_url), PostgresBackend(shared_url)
    a.open()
    b.open()
    try:
        ids = accept_through(a, 5)
        set_owner(shared_url, b.worker_id)  # b adopted them (a missed its heartbeats)
        assert a.apply([FormBatch(tuple(ids), 2_000.0)]) == [None]
        [formed] = b.apply([FormBatch(tuple(ids), 2_000.0)])
        assert isinstance(formed, FormedBatch)
        assert formed.members == tuple(ids)
    finally:
        a.close()
        b.close()
