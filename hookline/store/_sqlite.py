"""The SQLite backend: one write connection driven by the store actor, a small pool of
read-only connections, WAL mode.

Every :meth:`SQLiteBackend.apply` is one ``BEGIN IMMEDIATE`` ... ``COMMIT``, with a
``SAVEPOINT`` per op so that one failing op is rolled back alone. The write path
(:mod:`._sqlite_writes`) uses the raw ``sqlite3`` connection (sqlite-utils' insert
helpers cost more per row than the statement itself); sqlite-utils builds the schema
(:mod:`._schema`). Reads (:mod:`._sql_reads`, shared with PostgreSQL) run on their own
read-only connections, so a list page never waits for a commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreClosed, StoreError
from ._backend import make_page
from ._collections import Filter, Record, Sort, check_collection
from ._collections_sql import list_collections, list_records, query_records
from ._ops import WriteOp
from ._reader_pool import ReaderPool
from ._records import Page
from ._schema import migrate
from ._sql_reads import SQLReads
from ._sqlite_writes import OP_ERRORS, apply_alone, apply_one

__all__ = ["SYNCHRONOUS_MODES", "SQLiteBackend"]

T = TypeVar("T")

#: The values ``synchronous`` accepts (SQLite's ``PRAGMA synchronous``).
SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

_BUSY_TIMEOUT_MS = 5000


class SQLiteBackend(SQLReads):
    """A :class:`~hookline.store._backend.StoreBackend` on an SQLite file.

    ``synchronous`` is SQLite's durability level: ``FULL`` (the default) makes every
    commit survive a power loss; ``NORMAL`` survives a process crash only. ``readers``
    bounds the read-only connections (one per thread reading at once). Raises
    ValueError for an unknown ``synchronous`` or ``readers < 1``; the file is only
    touched by :meth:`open`.
    """

    threaded = True
    # One process owns the storage: nothing to coordinate with.
    coordinator = None

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", readers: int = 4) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}")
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.path = Path(path)
        self.synchronous = mode
        self.readers = readers
        self._writer: sqlite3.Connection | None = None
        self._readers: ReaderPool[sqlite3.Connection] = ReaderPool(
            readers, f"the store on {self.path} is closed"
        )

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r}, synchronous={self.synchronous!r})"

    def open(self) -> None:
        if self._writer is not None:
            return
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"could not open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not open {self.path}: {exc}") from exc
            raise
        self._writer = conn
        self._readers.open()

    def close(self) -> None:
        self._readers.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    # -- writes ------------------------------------------------------------------------

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        conn = self._writer
        if conn is None:
            raise StoreClosed(f"the store on {self.path} is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Ops rarely fail, and a savepoint per op costs about a third of the
                # batch: try the batch bare first, and only after a failure start over
                # with an op-by-op savepoint.
                results: list[object] = [apply_one(conn, op) for op in ops]
            except OP_ERRORS:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                results = [apply_alone(conn, op) for op in ops]
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not commit to {self.path}: {exc}") from exc
            raise
        return results

    # -- reads -------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._readers.slot():
            conn = self._readers.take()
            try:
                if conn is None:
                    conn = self._connect_reader()
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"could not read {self.path}: {exc}") from exc
            finally:
                if conn is not None:
                    self._readers.give(conn)

    def _connect_reader(self) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return conn

    def _fetch_one(self, sql: str, args: Sequence[Any]) -> Any:
        with self._reader() as conn:
            return conn.execute(sql, args).fetchone()

    def _fetch_all(self, sql: str, args: Sequence[Any]) -> list[Any]:
        with self._reader() as conn:
            return conn.execute(sql, args).fetchall()

    def query_records(
        self,
        collection: str,
        where: Sequence[Filter],
        order_by: Sequence[Sort],
        limit: int | None,
    ) -> list[Record]:
        check_collection(collection)
        with self._reader() as conn:
            return query_records(conn, collection, where, order_by, limit)

    def list_records(self, collection: str, limit: int, cursor: str | None) -> Page[Record]:
        check_collection(collection)
        with self._reader() as conn:
            rows = list_records(conn, collection, limit + 1, cursor)
        return make_page(rows, limit, lambda record: str(record["id"]))

    def list_collections(self) -> list[str]:
        with self._reader() as conn:
            return list_collections(conn)
