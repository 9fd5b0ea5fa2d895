"""The PostgreSQL backend: one write connection driven by the store actor, a small pool
of read connections, psycopg 3 in synchronous mode (the store actor calls it in worker
threads; psycopg's async mode is asyncio-only).

Every :meth:`PostgresBackend.apply` is one transaction. As in SQLite, the batch is
first tried bare; only when an op fails is it tried again with a savepoint per op, so
that one failing op is rolled back alone. The ops are applied by
:mod:`._postgres_writes`, the record reads are shared with SQLite (:mod:`._sql_reads`),
the schema is in :mod:`._postgres_schema`, the collections in
:mod:`._postgres_collections`.

PostgreSQL's ``text`` cannot hold a NUL character: free text that may carry one (paths,
reasons, errors, order and idempotency keys) is stored with U+FFFD in its place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import conninfo

from ..errors import StoreClosed, StoreError
from ._backend import make_page
from ._collections import Filter, Record, Sort, check_collection
from ._ops import WriteOp
from ._postgres_cluster import PostgresCoordinator, new_worker_id
from ._postgres_collections import list_collections, list_records, query_records
from ._postgres_rows import clean
from ._postgres_schema import migrate
from ._postgres_writes import OP_ERRORS, apply_alone, apply_one, gone, percent
from ._reader_pool import ReaderPool
from ._records import Page
from ._sql_reads import SQLReads

__all__ = ["PostgresBackend", "redact_url"]

T = TypeVar("T")
Connection = psycopg.Connection[Any]

_CONNECT_TIMEOUT = 10


class PostgresBackend(SQLReads):
    """A :class:`~hookline.store._backend.StoreBackend` on a PostgreSQL database.

    ``url`` is a libpq connection URL (``postgresql://user:secret@host:5432/hookline``;
    its query may carry libpq options such as ``sslmode`` or ``options``); tables go into
    the connection's current schema. ``readers`` bounds the read connections (one per
    thread reading at once). ``threaded=False`` makes the store actor call it inline,
    blocking its trio thread: only for tests on trio's virtual clock, which must not
    see worker threads. Raises ValueError for ``readers < 1``; nothing connects
    before :meth:`open`. ``coordinator`` coordinates this process with the others
    sharing the database, as worker ``worker_id`` (default: host/pid/random), proving
    itself alive every ``heartbeat`` seconds and counting others dead after ``lease``
    seconds of silence; the executions its writer inserts or retries are this
    worker's. Raises ValueError unless ``0 < heartbeat < lease``. A broken connection
    (the server restarted) is replaced on the next use; the call that found it broken
    raises StoreError.
    """

    def __init__(
        self,
        url: str,
        *,
        readers: int = 4,
        threaded: bool = True,
        worker_id: str | None = None,
        heartbeat: float = 1.0,
        lease: float = 10.0,
    ) -> None:
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.url = url
        self.threaded = threaded
        self.worker_id = worker_id or new_worker_id()
        self.coordinator = PostgresCoordinator(
            self._connect, self.worker_id, redact_url(url), heartbeat=heartbeat, lease=lease
        )
        self.readers = readers
        self._writer: Connection | None = None
        self._readers: ReaderPool[Connection] = ReaderPool(
            readers, f"the store on {redact_url(url)} is closed"
        )

    def __repr__(self) -> str:
        return f"PostgresBackend({redact_url(self.url)!r})"

    def _connect(self) -> Connection:
        try:
            given = conninfo.conninfo_to_dict(self.url)
            defaults: dict[str, str | int] = {
                "connect_timeout": _CONNECT_TIMEOUT,
                "application_name": "hookline",
            }
            extra = {key: value for key, value in defaults.items() if key not in given}
            conn = psycopg.connect(conninfo.make_conninfo(self.url, **extra), autocommit=True)
            # What this connection inserts or retries is this worker's (the schema's
            # defaults and conditions read the setting).
            conn.execute("SELECT set_config('hookline.worker', %s, false)", (self.worker_id,))
            return conn
        except psycopg.Error as exc:
            raise StoreError(f"could not connect to {redact_url(self.url)}: {exc}") from exc

    def open(self) -> None:
        if self._writer is not None:
            return
        conn = self._connect()
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        self._readers.open()
        self.coordinator.open()

    def close(self) -> None:
        self.coordinator.close()
        self._readers.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    # -- writes ------------------------------------------------------------------------

    def _write_connection(self) -> Connection:
        conn = self._writer
        if conn is None:
            raise StoreClosed(f"the store on {redact_url(self.url)} is closed")
        if gone(conn):
            # The server went away since the last batch: try a fresh connection.
            conn.close()
            conn = self._writer = self._connect()
        return conn

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        conn = self._write_connection()
        try:
            try:
                # Ops rarely fail: try the batch bare first, and only after a failure
                # start over with an op-by-op savepoint.
                with conn.transaction():
                    results: list[object] = [apply_one(conn, op) for op in ops]
            except OP_ERRORS:
                if gone(conn):
                    raise
                with conn.transaction():
                    results = [apply_alone(conn, op) for op in ops]
        except psycopg.Error as exc:
            raise StoreError(f"could not commit to {redact_url(self.url)}: {exc}") from exc
        return results

    # -- reads -------------------------------------------------------------------------

    def _read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a read connection. A pooled connection found broken (the server
        restarted) is dropped and the read tried once more on a new one."""
        with self._readers.slot():
            for attempt in (1, 2):
                conn = self._readers.take()
                pooled = conn is not None
                try:
                    if conn is None:
                        conn = self._connect()
                    return fn(conn)
                except psycopg.Error as exc:
                    if not (pooled and attempt == 1 and conn is not None and gone(conn)):
                        raise StoreError(f"could not read {redact_url(self.url)}: {exc}") from exc
                finally:
                    if conn is not None:
                        self._readers.give(conn, usable=not gone(conn))
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _fetch_one(self, sql: str, args: Sequence[Any]) -> Any:
        statement = percent(sql)
        return self._read(lambda conn: conn.execute(statement, args).fetchone())

    def _fetch_all(self, sql: str, args: Sequence[Any]) -> list[Any]:
        statement = percent(sql)
        return self._read(lambda conn: conn.execute(statement, args).fetchall())

    def _text(self, text: str) -> str:
        return clean(text)

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        check_collection(collection)
        return self._read(lambda conn: query_records(conn, collection, where, order_by, limit))

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        check_collection(collection)
        rows = self._read(lambda conn: list_records(conn, collection, limit + 1, cursor))
        return make_page(rows, limit, lambda record: str(record["id"]))

    def list_collections(self) -> list[str]:
        return self._read(list_collections)


def redact_url(url: str) -> str:
    """``url`` with its password (if it has one) made ``***``, for messages and logs;
    ``url`` may also be a ``key=value`` connection string."""
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))
