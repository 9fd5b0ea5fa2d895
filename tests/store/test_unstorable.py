"""One value no backend can store (a lone surrogate) fails its own op, never its batch.

Issue 13, finding 4: a JSON body like ``{"n": "\\ud800"}`` could not be encoded, so the
whole commit batch failed and legitimate deliveries batched with it got 503.
"""

from __future__ import annotations

import pytest
import trio

from hookline.errors import StoreError
from hookline.store._encoding import pack, unstorable
from hookline.store._ops import AcceptDelivery, SaveJob, UpdateExecution
from hookline.store._store import Store

from .conftest import BackendFactory, delivery, execution, job


def test_unstorable_says_where_the_lone_surrogate_is() -> None:
    assert unstorable({"a": [1, {"b": "ok"}]}) is None
    why = unstorable({"a": [1, {"n": "\ud800"}]})
    assert why is not None
    assert "a[1].n" in why
    assert "lone surrogate" in why
    assert "key" in (unstorable({"\udc00": 1}) or "")
    # A proper pair is one character, which UTF-8 encodes.
    assert unstorable("\U0001f600") is None
    with pytest.raises(StoreError, match="lone surrogate"):
        pack({"n": "\ud800"})


async def test_a_bad_op_fails_alone_in_its_batch(make_backend: BackendFactory) -> None:
    store = Store(make_backend())
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        deliveries = [delivery() for _ in range(20)]
        good = [
            (d, execution(delivery_id=d.id, context={"data": {"i": i}}))
            for i, d in enumerate(deliveries)
        ]
        bad_delivery = delivery()
        bad = execution(delivery_id=bad_delivery.id, context={"data": {"n": "\ud800"}})
        outcomes: dict[str, object] = {}

        async def write(name: str, op: AcceptDelivery) -> None:
            try:
                outcomes[name] = await store.write(op)
            except StoreError as exc:
                outcomes[name] = exc

        # All queued before the store takes its next batch: one batch holds them all.
        async with trio.open_nursery() as writers:
            for i, (d, e) in enumerate(good[:10]):
                writers.start_soon(write, f"good{i}", AcceptDelivery(d, e))
            writers.start_soon(write, "bad", AcceptDelivery(bad_delivery, bad))
            for i, (d, e) in enumerate(good[10:], start=10):
                writers.start_soon(write, f"good{i}", AcceptDelivery(d, e))

        assert isinstance(outcomes.pop("bad"), StoreError)
        assert set(outcomes.values()) == {None}
        for _, e in good:
            assert (await store.get_execution(e.id)) is not None
        assert await store.get_execution(bad.id) is None
        assert await store.get_delivery(bad_delivery.id) is None
        assert store.statistics().failed_batches == 0
        nursery.cancel_scope.cancel()


async def test_an_unstorable_job_or_end_fails_alone(store: Store) -> None:
    d = delivery()
    e = execution(delivery_id=d.id)
    await store.write(AcceptDelivery(d, e))
    with pytest.raises(StoreError, match=r"at n holds a lone surrogate") as caught:
        await store.write(SaveJob(job(e.id, "fetch", output={"n": "\ud800"})))
    # The message itself can be stored (it names the place, not the character).
    assert unstorable(str(caught.value)) is None
    with pytest.raises(StoreError, match="lone surrogate"):
        await store.write(UpdateExecution(e.id, "succeeded", output="\udfff"))
    await store.write(UpdateExecution(e.id, "failed", error=str(caught.value)))
    stored = await store.get_execution(e.id)
    assert stored is not None
    assert stored.status == "failed"
