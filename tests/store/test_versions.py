"""Workflow definition versions: every distinct text a workflow had is kept, numbered,
and executions record the one they run with. On every backend (conftest's
``make_backend``); the migration test is SQLite's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio

from hookline.store import _schema
from hookline.store._encoding import pack
from hookline.store._ops import AcceptDelivery, SaveWorkflow
from hookline.store._records import WorkflowRecord
from hookline.store._sqlite import SQLiteBackend
from hookline.store._store import Store

from .conftest import BackendFactory, delivery, execution


def definition(key: str, text: str, at: float = 1_000.0) -> WorkflowRecord:
    return WorkflowRecord(
        key=key,
        title=key.title(),
        enabled=True,
        source=text,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        updated_at=at,
    )


async def test_each_new_text_is_the_next_version_and_the_same_text_adds_none(
    store: Store,
) -> None:
    assert await store.write(SaveWorkflow(definition("orders", "v: one", at=1.0))) == 1
    assert await store.write(SaveWorkflow(definition("orders", "v: two", at=2.0))) == 2
    # Applied again (a restart, a reload), the same text is the same version.
    assert await store.write(SaveWorkflow(definition("orders", "v: two", at=3.0))) == 2
    # Back to an earlier text: that version again, not a new one.
    assert await store.write(SaveWorkflow(definition("orders", "v: one", at=4.0))) == 1
    # Numbers are per workflow.
    assert await store.write(SaveWorkflow(definition("invoices", "v: two", at=5.0))) == 1

    page = await store.list_workflow_versions("orders")
    assert [(v.version, v.source, v.created_at) for v in page.items] == [
        (2, "v: two", 2.0),
        (1, "v: one", 1.0),
    ]
    assert page.cursor is None
    assert [v.version for v in (await store.list_workflow_versions("invoices")).items] == [1]
    # The workflow record itself is the latest one saved.
    (orders,) = [w for w in await store.list_workflows() if w.key == "orders"]
    assert orders.source == "v: one"


async def test_versions_page_newest_first(store: Store) -> None:
    for n in range(1, 6):
        await store.write(SaveWorkflow(definition("orders", f"v: {n}")))

    first = await store.list_workflow_versions("orders", limit=2)
    assert [v.version for v in first.items] == [5, 4]
    assert first.cursor == "4"
    second = await store.list_workflow_versions("orders", limit=2, cursor=int(first.cursor))
    assert [v.version for v in second.items] == [3, 2]
    assert second.cursor is not None
    last = await store.list_workflow_versions("orders", limit=2, cursor=int(second.cursor))
    assert [v.version for v in last.items] == [1]
    assert last.cursor is None
    assert (await store.list_workflow_versions("nobody")).items == ()
    with pytest.raises(ValueError, match="limit"):
        await store.list_workflow_versions("orders", limit=0)


async def test_one_version_reads_back_with_its_text(store: Store) -> None:
    text = "key: orders\nnodes: []\n"
    await store.write(SaveWorkflow(definition("orders", "first", at=1.0)))
    await store.write(SaveWorkflow(definition("orders", text, at=2.0)))

    found = await store.get_workflow_version("orders", 2)
    assert found is not None
    assert (found.workflow, found.version, found.source, found.created_at) == (
        "orders",
        2,
        text,
        2.0,
    )
    assert found.digest == hashlib.sha256(text.encode()).hexdigest()
    assert await store.get_workflow_version("orders", 3) is None
    assert await store.get_workflow_version("orders", 0) is None
    assert await store.get_workflow_version("invoices", 1) is None


async def test_an_execution_keeps_the_version_it_runs_with(store: Store) -> None:
    first, second = delivery(), delivery()
    with_version = execution(delivery_id=first.id, workflow_version=3)
    without = execution(delivery_id=second.id)
    await store.write(AcceptDelivery(first, with_version))
    await store.write(AcceptDelivery(second, without))

    stored = await store.get_execution(with_version.id)
    assert stored is not None
    assert stored.workflow_version == 3
    listed = {e.id: e.workflow_version for e in (await store.list_executions()).items}
    assert listed == {with_version.id: 3, without.id: None}


async def test_versions_survive_a_reopen(make_backend: BackendFactory) -> None:
    async with trio.open_nursery() as nursery:
        first = Store(make_backend())
        await nursery.start(first.run)
        await first.write(SaveWorkflow(definition("orders", "v: 1")))
        await first.write(SaveWorkflow(definition("orders", "v: 2")))
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        again = Store(make_backend())
        await nursery.start(again.run)
        # Numbering goes on where it stopped; known texts keep their numbers.
        assert await again.write(SaveWorkflow(definition("orders", "v: 3"))) == 3
        assert await again.write(SaveWorkflow(definition("orders", "v: 1"))) == 1
        nursery.cancel_scope.cancel()


async def test_a_database_from_before_versions_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    old = execution()
    names = [name for name, _ in _schema.MIGRATIONS]
    before = _schema.MIGRATIONS[: names.index("workflow versions")]
    monkeypatch.setattr(_schema, "MIGRATIONS", tuple(before))
    backend = SQLiteBackend(path)
    backend.open()
    # The old schema has no workflow_version column: store through plain SQL.
    assert backend._writer is not None
    backend._writer.execute(
        "INSERT INTO executions (id, workflow, status, created_at, context, output) "
        "VALUES (?, 'orders', 'succeeded', 1.0, ?, ?)",
        (old.id, pack({}), pack(None)),
    )
    backend.close()
    monkeypatch.undo()

    async with trio.open_nursery() as nursery:
        store = Store(SQLiteBackend(path))
        await nursery.start(store.run)
        stored = await store.get_execution(old.id)
        assert stored is not None
        assert stored.workflow_version is None
        assert await store.write(SaveWorkflow(definition("orders", "v: 1"))) == 1
        nursery.cancel_scope.cancel()
