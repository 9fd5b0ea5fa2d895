"""Retention: pruning old executions, deliveries and expired idempotency keys.

A background task of the engine deletes, every ``interval``, finished executions (with
their jobs) older than ``executions``, deliveries older than ``deliveries`` and every
expired idempotency key. It deletes in batches of ``batch`` rows per store operation,
each a write like any other in the store's group commit, so ingest never waits behind a
long delete. Age is counted from creation, read from the record's id (ids sort by
creation time); executions still queued or running are never pruned.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import attrs
import trio

from ..errors import StoreError
from ..store._ops import PruneDeliveries, PruneExecutions, PruneIdempotency
from ..store._store import Store

log = logging.getLogger("hookline.engine")

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_LENGTH = 26
_RANDOM_BITS = 80


def id_floor(seconds: float) -> str:
    """The smallest id made at wall time ``seconds`` (millisecond precision): every id
    made earlier sorts before it, every id made at or after it does not."""
    value = max(0, math.floor(seconds * 1000)) << _RANDOM_BITS
    chars = []
    for _ in range(_ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@attrs.frozen
class RetentionPolicy:
    """How long records are kept, in seconds (None: forever), and how pruning runs.

    ``clock`` is the wall clock ages are measured on (a fake one in tests).
    Expired idempotency keys are pruned whatever the policy.
    """

    executions: float | None = None
    deliveries: float | None = None
    #: Refused deliveries (verdict ``rejected``), usually kept for less (issue 13).
    refused_deliveries: float | None = None
    interval: float = 300.0
    batch: int = 500
    clock: Callable[[], float] = time.time


@attrs.frozen
class RetentionStatistics:
    """Rows deleted since start, and completed sweeps."""

    sweeps: int
    executions: int
    deliveries: int
    idempotency: int


class Retention:
    """The pruning task. Start it with ``await nursery.start(retention.run)``."""

    def __init__(self, store: Store, policy: RetentionPolicy | None = None) -> None:
        self.store = store
        self.policy = policy if policy is not None else RetentionPolicy()
        self._sweeps = 0
        self._executions = 0
        self._deliveries = 0
        self._idempotency = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep at once, then every ``interval``, until cancelled. A store failure is
        logged and retried at the next sweep; it never stops the engine."""
        task_status.started()
        while True:
            try:
                await self.sweep()
            except StoreError as exc:
                log.warning("pruning old records failed (retried later): %s", exc)
            await trio.sleep(self.policy.interval)

    async def sweep(self) -> None:
        """Prune everything that is due now, batch by batch."""
        policy = self.policy
        now = policy.clock()
        self._idempotency += await self._drain(lambda: PruneIdempotency(now, policy.batch))
        if policy.executions is not None:
            before = id_floor(now - policy.executions)
            self._executions += await self._drain(lambda: PruneExecutions(before, policy.batch))
        if policy.deliveries is not None:
            before = id_floor(now - policy.deliveries)
            self._deliveries += await self._drain(lambda: PruneDeliveries(before, policy.batch))
        if policy.refused_deliveries is not None:
            refused = id_floor(now - policy.refused_deliveries)
            self._deliveries += await self._drain(
                lambda: PruneDeliveries(refused, policy.batch, verdict="rejected")
            )
        self._sweeps += 1

    async def _drain(
        self, op: Callable[[], PruneExecutions | PruneDeliveries | PruneIdempotency]
    ) -> int:
        total = 0
        while True:
            # One batch per commit: other writers' ops join the same group commits.
            deleted = await self.store.write(op())
            total += deleted
            if deleted < self.policy.batch:
                return total

    def statistics(self) -> RetentionStatistics:
        return RetentionStatistics(
            sweeps=self._sweeps,
            executions=self._executions,
            deliveries=self._deliveries,
            idempotency=self._idempotency,
        )
