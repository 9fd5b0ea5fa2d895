"""Recording refused webhook requests without letting them fill the disk.

A refused delivery is recorded with its metadata (method, path, redacted headers,
query, client, status, reason) and at most ``keep_body`` bytes of its body; when the
body was longer, the reason says how long it was and gives its SHA-256, so an operator
can still tell two refused payloads apart. Whether it is recorded at all is decided by
:class:`~._refusal_limit.RefusalLimit` (per client, per path, in all); those it turns
away are counted in ``/metrics`` as ``hookline_refusals_unrecorded_total``. Refused
deliveries have their own, shorter retention (``retention.refused_deliveries``).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Iterator

import attrs
import trio
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..engine._refusal_limit import RefusalLimit, RefusalPolicy
from ..errors import Rejected, StoreClosed, StoreError
from ..store._ops import RecordDelivery
from ..store._records import DeliveryRecord
from ._metrics import engine_metrics

__all__ = ["record_refusal", "refusal_limit", "trimmed"]

log = logging.getLogger("hookline.http")

NO_WORKFLOW = "(no workflow)"

_LIMITS: weakref.WeakKeyDictionary[Engine, RefusalLimit] = weakref.WeakKeyDictionary()


def refusal_limit(engine: Engine, policy: RefusalPolicy) -> RefusalLimit:
    """The limit of ``engine``'s refusals (one per engine, whatever serves it), made
    with ``policy`` on first use and counted in its ``/metrics``."""
    found = _LIMITS.get(engine)
    if found is None:
        found = _LIMITS[engine] = RefusalLimit(policy)
        engine_metrics(engine).registry.register(_RefusalCollector(found))
    return found


def trimmed(record: DeliveryRecord, keep_body: int) -> DeliveryRecord:
    """``record`` with at most ``keep_body`` bytes of its body; a longer body's size
    and SHA-256 go into the reason."""
    body = record.body
    if len(body) <= keep_body:
        return record
    digest = hashlib.sha256(body).hexdigest()
    note = f"body of {len(body)} bytes, sha256:{digest}, first {keep_body} kept"
    reason = f"{record.reason} ({note})" if record.reason else note
    return attrs.evolve(record, body=body[:keep_body], reason=reason)


async def record_refusal(
    engine: Engine, limit: RefusalLimit, delivery: Delivery, rejection: Rejected
) -> None:
    """Record ``delivery``, refused with ``rejection``, if the limit admits it; never
    raises for the store (the sender must hear its answer, recorded or not)."""
    if rejection.delivery_recorded:
        return
    path = delivery.workflow or NO_WORKFLOW
    if not limit.admit(delivery.remote_addr, path, trio.current_time()):
        return
    record = delivery.record("rejected", reason=rejection.detail, status=rejection.status)
    try:
        await engine.store.post(RecordDelivery(trimmed(record, limit.policy.keep_body)))
    except StoreClosed:
        log.info("not recorded (the store has stopped): %s refused: %s", delivery.id, rejection)
    except StoreError:
        log.exception("could not record rejected delivery %s", delivery.id)


class _RefusalCollector(Collector):
    def __init__(self, limit: RefusalLimit) -> None:
        self._limit = limit

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "hookline_refusals_recorded",
            "Refused webhook requests recorded as deliveries (within the refusal limit).",
            value=float(self._limit.recorded),
        )
        yield CounterMetricFamily(
            "hookline_refusals_unrecorded",
            "Refused webhook requests past the refusal limit: answered, counted, not stored.",
            value=float(self._limit.unrecorded),
        )
