"""The store actor alone: durable acknowledgements per second.

Many concurrent writers each send ``AcceptDelivery`` (delivery + execution +
idempotency claim, as an async webhook does) to a ``hookline.store`` ``Store`` over
``SQLiteBackend`` (``synchronous=FULL``) and count the acks, each returned only after
its batch committed. The baseline writes the same rows with raw ``sqlite3``:
``executemany`` per table, one ``BEGIN IMMEDIATE ... COMMIT`` per batch of as many
rows as there are writers (the most group commit could gather), same pragmas, same
schema, same row encoding; it skips the per-claim idempotency lookup the store does,
so it is the ceiling, not a twin.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ._results import MicroResult
from ._spec import PAYLOADS, MicroSettings

__all__ = ["run_store"]

_HEADERS = {"content-type": "application/json", "x-github-event": "push"}


def _maker() -> Callable[[], Any]:
    """A function making one AcceptDelivery with fresh ids, as the HTTP front does."""
    from hookline._ids import new_id
    from hookline.store._ops import AcceptDelivery, IdempotencyClaim
    from hookline.store._records import Answer, DeliveryRecord, ExecutionRecord

    body = (PAYLOADS / "push.json").read_bytes()
    context = {"data": json.loads(body), "headers": _HEADERS, "method": "POST"}
    answer = Answer(202, (("content-type", "application/json"),), b'{"status":"queued"}')

    def make() -> Any:
        now = time.time()
        delivery_id, execution_id = new_id(), new_id()
        delivery = DeliveryRecord(
            id=delivery_id,
            workflow="bench",
            received_at=now,
            method="POST",
            path="bench",
            headers={**_HEADERS, "x-github-delivery": delivery_id},
            query={},
            body=body,
            remote_addr="127.0.0.1",
            verdict="accepted",
        )
        execution = ExecutionRecord(
            id=execution_id,
            workflow="bench",
            delivery_id=delivery_id,
            status="queued",
            created_at=now,
            context=context,
        )
        claim = IdempotencyClaim(key=delivery_id, body_hash="0" * 64, expires_at=now + 86400)
        return AcceptDelivery(delivery, execution, claim, answer)

    return make


async def _store_rate(
    path: Path, make: Callable[[], Any], settings: MicroSettings
) -> tuple[int, float, float]:
    """(acks, seconds, mean batch size)."""
    from hookline.store._sqlite import SQLiteBackend
    from hookline.store._store import Store

    store = Store(SQLiteBackend(path))
    acks = [0]

    async def writer() -> None:
        while True:
            await store.write(make())
            acks[0] += 1

    async with trio.open_nursery() as outer:
        await outer.start(store.run)
        start = trio.current_time()
        before = store.statistics()
        with trio.move_on_after(settings.duration):
            async with trio.open_nursery() as nursery:
                for _ in range(settings.concurrency):
                    nursery.start_soon(writer)
        elapsed = trio.current_time() - start
        after = store.statistics()
        outer.cancel_scope.cancel()
    batches = after.batches - before.batches
    mean_batch = (after.ops - before.ops) / batches if batches else 0.0
    return acks[0], elapsed, mean_batch


def _raw_rate(path: Path, make: Callable[[], Any], settings: MicroSettings) -> tuple[int, float]:
    from hookline.store import _rows, _sqlite_writes
    from hookline.store._schema import migrate

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn)
    rows = 0
    start = time.perf_counter()
    deadline = start + settings.duration
    try:
        while time.perf_counter() < deadline:
            ops = [make() for _ in range(settings.concurrency)]
            deliveries = [
                _rows.delivery_row(op.delivery, execution_id=op.execution.id) for op in ops
            ]
            executions = [_rows.execution_row(op.execution) for op in ops]
            claims = [
                (
                    op.execution.workflow,
                    op.claim.key,
                    op.claim.body_hash,
                    op.execution.id,
                    op.delivery.received_at,
                    op.claim.expires_at,
                    _rows.pack_answer(op.answer),
                )
                for op in ops
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_sqlite_writes._INSERT_DELIVERY, deliveries)
            conn.executemany(_sqlite_writes._INSERT_EXECUTION, executions)
            conn.executemany(_sqlite_writes._REPLACE_IDEMPOTENCY, claims)
            conn.execute("COMMIT")
            rows += len(ops)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return rows, elapsed


def run_store(settings: MicroSettings) -> MicroResult:
    """Measure the store actor, then the raw batched writes, on fresh files."""
    make = _maker()
    folder = settings.workdir / "store"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("actor.db", "raw.db"):
        for suffix in ("", "-wal", "-shm"):
            (folder / (name + suffix)).unlink(missing_ok=True)
    acks, acks_s, mean_batch = trio.run(_store_rate, folder / "actor.db", make, settings)
    rows, rows_s = _raw_rate(folder / "raw.db", make, settings)
    return MicroResult(
        unit="durable acks",
        subject="Store actor, AcceptDelivery",
        subject_ops=acks,
        subject_s=acks_s,
        baseline="raw executemany batches",
        baseline_ops=rows,
        baseline_s=rows_s,
        facts=(
            ("concurrent writers", settings.concurrency),
            ("raw batch size", settings.concurrency),
            ("store mean batch size", round(mean_batch, 1)),
            ("synchronous", "FULL"),
        ),
    )
