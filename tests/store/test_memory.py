"""What only the memory backend promises: no threads, data kept across close, no aliasing."""

from __future__ import annotations

import pytest

from hookline.errors import StoreClosed
from hookline.store._memory import MemoryBackend
from hookline.store._ops import AcceptDelivery, RecordDelivery

from .conftest import delivery, execution


def test_data_outlives_close_and_reads_need_it_open() -> None:
    backend = MemoryBackend()
    backend.open()
    kept = delivery(verdict="rejected")
    backend.apply([RecordDelivery(kept)])
    backend.close()
    with pytest.raises(StoreClosed):
        backend.get_delivery(kept.id)
    with pytest.raises(StoreClosed):
        backend.apply([RecordDelivery(delivery())])
    backend.open()
    assert backend.get_delivery(kept.id) == kept


def test_stored_payloads_are_copies_of_what_the_caller_passed() -> None:
    backend = MemoryBackend()
    backend.open()
    context = {"data": {"items": [1, 2]}}
    e = execution(context=context)
    backend.apply([AcceptDelivery(delivery(), e)])
    context["data"]["items"].append(3)

    stored = backend.get_execution(e.id)
    assert stored is not None
    assert stored.context == {"data": {"items": [1, 2]}}
