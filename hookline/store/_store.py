"""The store actor: the only writer, committing writes in batches (group commit).

Writers put operations in one bounded mailbox. The actor takes the first, drains what
else is waiting (up to ``max_batch``) and applies them all in ONE transaction; every
waiter hears its result only after COMMIT. While one batch commits (in a worker thread
for SQLite), the next one fills, so the cost of a durable commit is shared by every
write that arrived during the previous one.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import trio

from ..engine._mailbox import Mailbox
from ..errors import ConfigError, StoreClosed, StoreError
from ._backend import StoreBackend
from ._coalesce import coalesce
from ._collections import Filter, Record, Sort
from ._memory import MemoryBackend
from ._ops import (
    AcceptDelivery,
    CollectionWrite,
    PruneDeliveries,
    PruneExecutions,
    PruneIdempotency,
    RecordDelivery,
    RequeueExecution,
    SaveAnswer,
    SaveJob,
    SaveWorkflow,
    UpdateExecution,
    WriteOp,
)
from ._records import (
    DeliveryRecord,
    ExecutionRecord,
    IdempotencyRecord,
    JobRecord,
    Page,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from ._sqlite import SQLiteBackend

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


class _Lookup:
    """One idempotency lookup in a batched read, and its outcome."""

    __slots__ = ("done", "error", "key", "now", "result", "workflow")

    def __init__(self, workflow: str, key: str, now: float) -> None:
        self.workflow = workflow
        self.key = key
        self.now = now
        self.done = False
        self.result: IdempotencyRecord | None = None
        self.error: StoreError | None = None

    def run(self, backend: StoreBackend) -> None:
        try:
            self.result = backend.get_idempotency(self.workflow, self.key, self.now)
        except StoreError as exc:
            self.error = exc
        self.done = True

    def fail(self, error: StoreError) -> None:
        if not self.done:
            self.error = error
            self.done = True

    def outcome(self) -> IdempotencyRecord | None:
        if self.error is not None:
            raise self.error
        return self.result


def _lookup_all(batch: list[_Lookup], backend: StoreBackend) -> None:
    for lookup in batch:
        lookup.run(backend)


class _Item:
    __slots__ = ("op", "waiter")

    def __init__(self, op: WriteOp | None, waiter: _Waiter | None) -> None:
        # op None is a flush barrier: it applies nothing; its waiter wakes with its batch.
        self.op = op
        self.waiter = waiter


class Store:
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
        self._backend = backend
        self._max_batch = max_batch
        self._shutdown_timeout = shutdown_timeout
        self._mailbox: Mailbox[_Item] = Mailbox(capacity, name="store")
        self._batch: list[_Item] = []
        self._started = False
        self._read_limiter = trio.CapacityLimiter(backend.readers)
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
        # Idempotency lookups waiting for the next batched read, and whether one runs.
        self._lookups: list[_Lookup] = []
        self._lookup_running = False
        self._lookup_done = trio.Event()

    @property
    def backend(self) -> StoreBackend:
        return self._backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend!r})"

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
                outcomes = await self._call(
                    functools.partial(self._backend.apply, applied), self._write_limiter
                )
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
    async def write(self, op: RecordDelivery | UpdateExecution | SaveJob | SaveAnswer) -> None: ...
    @overload
    async def write(self, op: SaveWorkflow) -> int: ...
    @overload
    async def write(self, op: CollectionWrite) -> Any: ...
    @overload
    async def write(self, op: RequeueExecution) -> bool: ...
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

    # -- reads -------------------------------------------------------------------------

    async def _read(self, fn: Callable[[], T]) -> T:
        if self._backend.threaded:
            # Nothing to undo in a read: let a cancelled caller go at once.
            return await trio.to_thread.run_sync(
                fn, limiter=self._read_limiter, abandon_on_cancel=True
            )
        await trio.lowlevel.checkpoint()
        return fn()

    async def get_execution(self, id: str) -> ExecutionRecord | None:
        """The execution ``id``, or None."""
        return await self._read(functools.partial(self._backend.get_execution, id))

    async def list_jobs(self, execution_id: str) -> list[JobRecord]:
        """The jobs of an execution, in the order they were saved."""
        return await self._read(functools.partial(self._backend.list_jobs, execution_id))

    async def list_executions(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """A page of executions, newest first. Raises ValueError if ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(
            self._backend.list_executions,
            workflow=workflow,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return await self._read(fn)

    async def list_deliveries(
        self,
        *,
        workflow: str | None = None,
        verdict: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[DeliveryRecord]:
        """A page of deliveries, newest first. Raises ValueError if ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(
            self._backend.list_deliveries,
            workflow=workflow,
            verdict=verdict,
            limit=limit,
            cursor=cursor,
        )
        return await self._read(fn)

    async def get_delivery(self, id: str) -> DeliveryRecord | None:
        """The delivery ``id``, or None."""
        return await self._read(functools.partial(self._backend.get_delivery, id))

    async def get_idempotency(self, workflow: str, key: str) -> IdempotencyRecord | None:
        """The live idempotency record for ``key`` in ``workflow`` (expiry by wall time).

        Every webhook with a key asks this, so on a threaded backend the lookups that
        arrive while one read runs share the next one: one worker-thread round trip
        for many deliveries.
        """
        lookup = _Lookup(workflow, key, time.time())
        if not self._backend.threaded:
            await trio.lowlevel.checkpoint()
            lookup.run(self._backend)
            return lookup.outcome()
        self._lookups.append(lookup)
        while not lookup.done:
            if self._lookup_running:
                await self._lookup_done.wait()
                continue
            await self._run_lookups()
        return lookup.outcome()

    async def _run_lookups(self) -> None:
        batch, self._lookups = self._lookups, []
        self._lookup_running = True
        backend = self._backend
        try:
            # Shielded: the callers of the others in the batch wait for this read.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(
                    _lookup_all, batch, backend, limiter=self._read_limiter
                )
        except BaseException as exc:
            for lookup in batch:
                lookup.fail(StoreError(f"the idempotency lookup failed: {exc!r}"))
            raise
        finally:
            self._lookup_running = False
            done, self._lookup_done = self._lookup_done, trio.Event()
            done.set()

    async def unfinished_executions(self) -> list[ExecutionRecord]:
        """Executions still queued or running, oldest first (to resume on start)."""
        return await self._read(self._backend.unfinished_executions)

    async def list_workflows(self) -> list[WorkflowRecord]:
        """Every stored workflow record, by key."""
        return await self._read(self._backend.list_workflows)

    async def list_workflow_versions(
        self, workflow: str, *, limit: int = 50, cursor: int | None = None
    ) -> Page[WorkflowVersionRecord]:
        """A page of the definitions ``workflow`` has had, newest first; pass the
        page's cursor back (as an int) for older ones. Raises ValueError if
        ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(self._backend.list_workflow_versions, workflow, limit, cursor)
        return await self._read(fn)

    async def get_workflow_version(
        self, workflow: str, version: int
    ) -> WorkflowVersionRecord | None:
        """Version ``version`` of ``workflow``'s definition, or None."""
        fn = functools.partial(self._backend.get_workflow_version, workflow, version)
        return await self._read(fn)

    async def query_records(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: Sequence[Sort] = (),
        limit: int | None = None,
    ) -> list[Record]:
        """Up to ``limit`` (None: all) records of ``collection`` matching ``where``, in
        ``order_by`` order, ties by id. A missing collection has none. Raises ValueError
        for a bad collection name or ``limit < 1``."""
        if limit is not None:
            _check_limit(limit)
        fn = functools.partial(
            self._backend.query_records, collection, tuple(where), tuple(order_by), limit
        )
        return await self._read(fn)

    async def list_records(
        self, collection: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Record]:
        """A page of the records of ``collection``, newest first (none if it does not
        exist). Raises ValueError for a bad collection name or ``limit < 1``."""
        _check_limit(limit)
        fn = functools.partial(self._backend.list_records, collection, limit, cursor)
        return await self._read(fn)

    async def list_collections(self) -> list[str]:
        """The names of the collections that exist (had a record once), sorted."""
        return await self._read(self._backend.list_collections)

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


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


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


_URL_EXAMPLE = (
    "a URL such as 'sqlite:///var/hookline.db', 'postgresql://user@host/hookline' or 'memory://'"
)


def open_store(url: str) -> Store:
    """A store for ``url``: ``sqlite:///relative.db``, ``sqlite:////absolute.db``
    (options: ``?synchronous=NORMAL&readers=8``), ``postgresql://user:secret@host/db``
    (options: ``?readers=8`` and any libpq option, such as ``sslmode=require``) or
    ``memory://``.

    Nothing is opened until the store runs. Raises ConfigError (``store.url``) for a URL
    of another scheme, without a path, or with a bad option.
    """
    if not isinstance(url, str):
        raise ConfigError("store.url", "", _URL_EXAMPLE, url)
    parts = urlsplit(url)
    if parts.scheme == "memory" and not parts.netloc.strip("/") and not parts.path.strip("/"):
        return MemoryStore()
    if parts.scheme == "postgresql":
        return Store(_postgres_backend(url))
    if parts.scheme != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise ConfigError("store.url", "", _URL_EXAMPLE, url)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"synchronous", "readers"}
    if unknown:
        raise ConfigError("store.url", "", "options synchronous and readers only", url)
    try:
        backend = SQLiteBackend(
            Path(parts.path[1:]),
            synchronous=options.get("synchronous", "FULL"),
            readers=int(options.get("readers", "4")),
        )
    except ValueError as exc:
        raise ConfigError("store.url", "", f"valid options ({exc})", url) from exc
    return Store(backend)


def _postgres_backend(url: str) -> StoreBackend:
    # Imported here: psycopg is loaded only by those who use PostgreSQL.
    import psycopg

    from ._postgres import PostgresBackend, redact_url

    parts = urlsplit(url)
    options = parse_qsl(parts.query, keep_blank_values=True)
    readers = [value for name, value in options if name == "readers"]
    rest = urlunsplit(parts._replace(query=urlencode([o for o in options if o[0] != "readers"])))
    try:
        psycopg.conninfo.conninfo_to_dict(rest)
    except psycopg.Error:
        # Not the parser's message: it may quote the URL, password included.
        raise ConfigError("store.url", "", "a valid PostgreSQL URL", redact_url(url)) from None
    try:
        return PostgresBackend(rest, readers=int(readers[-1]) if readers else 4)
    except ValueError as exc:
        raise ConfigError("store.url", "", f"valid options ({exc})", redact_url(url)) from exc
