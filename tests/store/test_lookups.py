"""Idempotency lookups made at once (every keyed webhook makes one) each get their own
answer, however the store groups them into reads."""

from __future__ import annotations

import time

import trio

from hookline.store._ops import AcceptDelivery, IdempotencyClaim
from hookline.store._records import IdempotencyRecord
from hookline.store._store import Store
from tests.store.conftest import delivery, execution


async def test_concurrent_lookups_each_get_their_own_record(store: Store) -> None:
    now = time.time()
    executions = {}
    for n in range(0, 40, 2):  # every other key is claimed
        d = delivery(received_at=now)
        e = execution(delivery_id=d.id, created_at=now)
        await store.write(AcceptDelivery(d, e, IdempotencyClaim(f"k{n}", f"h{n}", now + 60)))
        executions[f"k{n}"] = e.id
    found: dict[str, IdempotencyRecord | None] = {}

    async def look(key: str) -> None:
        found[key] = await store.get_idempotency("orders", key)

    async with trio.open_nursery() as nursery:
        for n in range(40):
            nursery.start_soon(look, f"k{n}")

    assert len(found) == 40
    for n in range(40):
        record = found[f"k{n}"]
        if n % 2:
            assert record is None
        else:
            assert record is not None
            assert (record.execution_id, record.body_hash) == (executions[f"k{n}"], f"h{n}")
