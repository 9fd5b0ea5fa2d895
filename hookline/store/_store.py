"""The store actor: the only writer, committing writes in batches (group commit).

Writers put operations in one bounded mailbox. The actor takes the first, drains what
else is waiting (up to ``max_batch``) and applies them all in ONE transaction; every
waiter hears its result only after COMMIT. While one batch commits (in a worker thread
for SQLite), the next one fills, so the cost of a durable commit is shared by every
write that arrived during the previous one. Observers (:meth:`Store.observe`) hear of
each committed batch (:mod:`._observe`); the reads are in :mod:`._store_reads`, the
URLs :func:`open_store` takes in :mod:`._store_url`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs
import trio

from ..definition import Mailbox
from ..errors import StoreClosed, StoreError
from ._backend import StoreBackend
from ._batching import FormBatch, FormedBatch
from ._coalesce import coalesce
from ._memory import MemoryBackend
from ._observe import BatchObserver, apply_observed
from ._ops import (
    AcceptDelivery,
    ClaimWaits,
    CollectionWrite,
    ParkExecution,
    PruneDeliveries,
    PruneExecutions,
    PruneIdempotency,
    RecordDelivery,
    RequeueExecution,
    SaveAnswer,
    SaveJob,
    SaveJobs,
    SaveWorkflow,
    UpdateExecution,
    WriteOp,
)
from ._records import IdempotencyRecord, WaitRecord
from ._store_reads import StoreReads
from ._store_url import backend_for_url, is_memory_url

__all__ = ["MemoryStore", "Store", "StoreStatistics", "open_store"]

T = TypeVar("T")

logger = logging.getLogger("hookline.store")


@attrs.frozen
class StoreStatistics:
    """A snapshot of the store actor.

    ``queue_depth`` counts operations waiting for a batch; ``batches`` and ``ops`` count
    applied transactions and the operations in them; ``failed_batches`` counts
    transactions that could not commit, ``failed_ops`` single operations that failed
    inside a committed batch; ``commit_seconds_total`` is wall time spent applying.
    """

    queue_depth: int
    batches: int
    ops: int
    last_batch_size: int
    max_batch_size: int
    failed_batches: int
    commit_seconds_total: float
    failed_ops: int = 0


class _Waiter:
    """Where a writer waits for its op's result, set only after COMMIT."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def settle(self, result: object) -> None:
        if isinstance(result, BaseException):
            self.error = result
        else:
            self.result = result
        self.done.set()


class _Item:
    __slots__ = ("op", "waiter")

    def __init__(self, op: WriteOp | None, waiter: _Waiter | None) -> None:
        # op None is a flush barrier: it applies nothing; its waiter wakes with its batch.
        self.op = op
        self.waiter = waiter


class Store(StoreReads):
    """The store actor over a :class:`~hookline.store._backend.StoreBackend`.

    Start it with ``await nursery.start(store.run)``; it runs once. Writes made before
    it starts wait in the mailbox (``capacity`` bounds it: writers wait for room).
    Reads go straight to the backend, in worker threads when the backend is threaded.
    """

    def __init__(
        self,
        backend: StoreBackend,
        *,
        capacity: int = 10_000,
        max_batch: int = 2_000,
        shutdown_timeout: float = 30.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        super().__init__(backend)
        self._max_batch = max_batch
        self._shutdown_timeout = shutdown_timeout
        self._mailbox: Mailbox[_Item] = Mailbox(capacity, name="store")
        self._batch: list[_Item] = []
        self._started = False
        # Its own limiter: commits must never queue behind unrelated to_thread work.
        self._write_limiter = trio.CapacityLimiter(1)
        self._batches = 0
        self._ops = 0
        self._last_batch_size = 0
        self._max_batch_size = 0
        self._failed_batches = 0
        self._failed_ops = 0
        self._commit_seconds = 0.0
        self._unreported: StoreError | None = None
        self._observers: list[BatchObserver] = []

    @property
    def backend(self) -> StoreBackend:
        return self._backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend!r})"

    def observe(self, observer: BatchObserver) -> None:
        """Call ``observer`` with every batch that commits from now on (see
        :mod:`hookline.store._observe` for where it runs and what it must not do). Safe
        before or while the store runs; registering the same observer twice changes
        nothing."""
        if observer not in self._observers:
            # A new list, not an append: a commit in the writer thread iterates the old.
            self._observers = [*self._observers, observer]

    # -- the actor ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the backend, report started, then commit batches until cancelled.

        On cancellation it stops intake (new writes raise StoreClosed), commits what was
        already queued (shielded, within ``shutdown_timeout``), and closes the backend.
        Raises StoreError if the backend cannot be opened, RuntimeError if run twice.
        """
        if self._started:
            raise RuntimeError("a Store runs only once; make a new one")
        self._started = True
        try:
            await self._call(self._backend.open, self._write_limiter)
        except BaseException:
            self._mailbox.close()
            self._fail_pending(StoreClosed("the store could not be opened"))
            raise
        task_status.started()
        try:
            while True:
                self._batch.append(await self._mailbox.receive())
                self._take_waiting()
                await self._commit()
        finally:
            self._mailbox.close()
            with trio.move_on_after(self._shutdown_timeout, shield=True):
                while True:
                    self._take_waiting()
                    if not self._batch:
                        break
                    await self._commit()
            self._fail_pending(StoreClosed("the store stopped before committing this write"))
            with trio.CancelScope(shield=True):
                await self._call(self._backend.close, self._write_limiter)

    def _take_waiting(self) -> None:
        while len(self._batch) < self._max_batch:
            try:
                self._batch.append(self._mailbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    async def _commit(self) -> None:
        batch = self._batch
        ops = [item.op for item in batch if item.op is not None]
        results: list[object] = []
        if ops:
            started = time.perf_counter()
            applied, targets = coalesce(ops)
            try:
                apply = functools.partial(apply_observed, self._backend, applied, self._observers)
                outcomes = await self._call(apply, self._write_limiter)
                results = [outcomes[target] for target in targets]
            except StoreError as exc:
                logger.error("a batch of %d writes failed: %s", len(ops), exc)
                results = self._batch_failed(exc, len(ops))
            except Exception as exc:
                # A backend bug fails its batch, not the store: later batches may succeed.
                logger.exception("a batch of %d writes failed", len(ops))
                error = StoreError(f"the store failed to commit: {exc!r}")
                error.__cause__ = exc
                results = self._batch_failed(error, len(ops))
            else:
                self._batches += 1
            # Cancelled above leaves the batch in place: shutdown commits it.
            self._commit_seconds += time.perf_counter() - started
            self._ops += len(ops)
            self._last_batch_size = len(ops)
            self._max_batch_size = max(self._max_batch_size, len(ops))
        self._batch = []
        self._settle(batch, results)

    def _batch_failed(self, error: StoreError, size: int) -> list[object]:
        self._failed_batches += 1
        return [error] * size

    def _settle(self, batch: list[_Item], results: list[object]) -> None:
        outcomes = iter(results)
        for item in batch:
            if item.op is None:
                # A flush reports the failure of a posted op queued between the previous
                # flush and itself: nobody else waited for that op.
                if item.waiter is not None:
                    item.waiter.settle(self._unreported)
                self._unreported = None
                continue
            result = next(outcomes)
            if item.waiter is not None:
                item.waiter.settle(result)
            elif isinstance(result, StoreError):
                self._failed_ops += 1
                self._unreported = result
                logger.error("a posted %s failed: %s", type(item.op).__name__, result)

    def _fail_pending(self, error: StoreClosed) -> None:
        pending, self._batch = self._batch, []
        while True:
            try:
                pending.append(self._mailbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for item in pending:
            if item.waiter is not None:
                item.waiter.settle(error)
            else:
                self._failed_ops += 1
        if pending:
            logger.error("the store stopped with %d writes not committed", len(pending))

    async def _call(self, fn: Callable[[], T], limiter: trio.CapacityLimiter) -> T:
        if self._backend.threaded:
            return await trio.to_thread.run_sync(fn, limiter=limiter)
        return fn()

    # -- writes ------------------------------------------------------------------------

    async def _enqueue(self, item: _Item) -> None:
        # With room in the mailbox the item goes in without a schedule point (a write
        # then waits for its commit anyway; a post is followed by the caller's own
        # next wait), but a cancelled caller still sends nothing.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            try:
                self._mailbox.send_nowait(item)
            except trio.WouldBlock:
                await self._mailbox.send(item)
        except trio.ClosedResourceError as exc:
            raise StoreClosed("the store has stopped") from exc

    @overload
    async def write(self, op: AcceptDelivery) -> IdempotencyRecord | None: ...
    @overload
    async def write(
        self, op: RecordDelivery | UpdateExecution | SaveJob | SaveJobs | SaveAnswer
    ) -> None: ...
    @overload
    async def write(self, op: SaveWorkflow) -> int: ...
    @overload
    async def write(self, op: CollectionWrite) -> Any: ...
    @overload
    async def write(self, op: RequeueExecution) -> bool: ...
    @overload
    async def write(self, op: FormBatch) -> FormedBatch | None: ...
    @overload
    async def write(self, op: ParkExecution) -> None: ...
    @overload
    async def write(self, op: ClaimWaits) -> list[WaitRecord]: ...
    @overload
    async def write(self, op: PruneExecutions | PruneDeliveries | PruneIdempotency) -> int: ...
    @overload
    async def write(self, op: WriteOp) -> object: ...
    async def write(self, op: WriteOp) -> object:
        """Commit ``op`` and return its result (see the op's class).

        Returns only after the transaction holding ``op`` committed. Raises the op's
        StoreError if it failed (its batch-mates are not affected), StoreError if the
        batch could not commit, StoreClosed if the store stopped first. Cancelling the
        caller does not withdraw an op already queued.
        """
        waiter = _Waiter()
        await self._enqueue(_Item(op, waiter))
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def write_shielded(self, op: CollectionWrite) -> Any:
        """:meth:`write`, except that once ``op`` is queued the caller waits for its
        commit even when cancelled, and then sees the cancellation at its next
        checkpoint.

        For writes with effects (a collection write): whoever sent one learns its result,
        so a job cut short by its timeout is never recorded as failed after its write
        committed. Cancelled while waiting for room in the mailbox, nothing was queued.
        """
        waiter = _Waiter()
        await self._enqueue(_Item(op, waiter))
        with trio.CancelScope(shield=True):
            await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def post(self, op: WriteOp) -> None:
        """Queue ``op`` without waiting for its commit; it commits in order with later
        writes. Waits for room when the mailbox is full. A posted op that fails is
        logged, counted in ``failed_ops`` and reported by the next :meth:`flush`.
        Raises StoreClosed if the store stopped."""
        await self._enqueue(_Item(op, None))

    async def flush(self) -> None:
        """Return once everything queued before this call is committed.

        Raises the StoreError of a posted op that failed since the previous flush (in
        queue order), StoreClosed if the store stopped first.
        """
        waiter = _Waiter()
        await self._enqueue(_Item(None, waiter))
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(
            queue_depth=self._mailbox.statistics().depth,
            batches=self._batches,
            ops=self._ops,
            last_batch_size=self._last_batch_size,
            max_batch_size=self._max_batch_size,
            failed_batches=self._failed_batches,
            commit_seconds_total=self._commit_seconds,
            failed_ops=self._failed_ops,
        )


class MemoryStore(Store):
    """A :class:`Store` over a fresh :class:`~hookline.store._memory.MemoryBackend`:
    no files, no threads; for tests and embedding without persistence."""

    def __init__(
        self, *, capacity: int = 10_000, max_batch: int = 2_000, shutdown_timeout: float = 30.0
    ) -> None:
        super().__init__(
            MemoryBackend(),
            capacity=capacity,
            max_batch=max_batch,
            shutdown_timeout=shutdown_timeout,
        )


def open_store(url: str) -> Store:
    """A store for ``url``: ``sqlite:///relative.db``, ``sqlite:////absolute.db``
    (options: ``?synchronous=NORMAL&readers=8``), ``postgresql://user:secret@host/db``
    (options: ``?readers=8`` and any libpq option, such as ``sslmode=require``) or
    ``memory://``.

    Nothing is opened until the store runs. Raises ConfigError (``store.url``) for a URL
    of another scheme, without a path, or with a bad option.
    """
    if is_memory_url(url):
        return MemoryStore()
    return Store(backend_for_url(url))
