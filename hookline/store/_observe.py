"""Watching commits: the hook through which metrics and logs learn what committed.

:meth:`Store.observe <hookline.store._store.Store.observe>` registers a
:data:`BatchObserver`; after each batch COMMITS the store calls every observer with a
:class:`CommittedBatch`. A batch that fails to commit calls nothing.

Observers run where the batch was applied: in the store's writer thread for a threaded
backend (SQLite, PostgreSQL), inline in the store's trio task otherwise, right after
COMMIT and before any writer hears its result. So they must be quick and thread-safe
(prometheus_client and :mod:`logging` are) and may call the backend's synchronous
reads. An observer that raises is logged and ignored: watching must never fail a write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import attrs

from ._backend import StoreBackend
from ._ops import WriteOp

__all__ = ["BatchObserver", "CommittedBatch", "apply_observed"]

logger = logging.getLogger("hookline.store")


@attrs.frozen
class CommittedBatch:
    """One committed transaction: its ``ops`` as applied (updates of one execution in a
    batch may have been merged into one), their ``results`` in the same order (an op
    that failed inside the batch has its exception), and the ``seconds`` applying and
    committing took."""

    ops: tuple[WriteOp, ...]
    results: tuple[object, ...]
    seconds: float


BatchObserver = Callable[[CommittedBatch], None]


def apply_observed(
    backend: StoreBackend, ops: Sequence[WriteOp], observers: Sequence[BatchObserver]
) -> list[object]:
    """``backend.apply(ops)``, then every observer told of the committed batch. Raises
    what ``apply`` raises (then no observer is called), never what an observer raises."""
    started = time.perf_counter()
    results = backend.apply(ops)
    if observers:
        batch = CommittedBatch(tuple(ops), tuple(results), time.perf_counter() - started)
        for observer in observers:
            try:
                observer(batch)
            except Exception:
                logger.exception("a store observer failed")
    return results
