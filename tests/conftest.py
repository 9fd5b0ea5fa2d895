"""Fixtures every test folder may use: a PostgreSQL server for the session.

The PostgreSQL cases run against ``HOOKLINE_TEST_POSTGRES_URL`` when it is set;
otherwise a throwaway cluster is started for the session with scripts/postgres.sh
(which installs Debian's postgresql package if it is missing and it can). With neither
(or ``HOOKLINE_TEST_POSTGRES_SKIP`` set to the reason), the PostgreSQL cases are
skipped, saying why. Each test gets a schema of its own (:func:`postgres_schema_url`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from benchmarks._postgres import start_throwaway, stop_throwaway
from benchmarks._spec import Skip
from hookline.store._backend import StoreBackend
from hookline.store._memory import MemoryBackend
from hookline.store._postgres import PostgresBackend
from hookline.store._sqlite import SQLiteBackend
from hookline.store._store import Store


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may fill; skips when there is none."""
    url = os.environ.get("HOOKLINE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if os.environ.get("HOOKLINE_TEST_POSTGRES_SKIP"):
        pytest.skip(f"no PostgreSQL server: {os.environ['HOOKLINE_TEST_POSTGRES_SKIP']}")
    try:
        exports = start_throwaway()
    except Skip as why:
        pytest.skip(str(why))
    try:
        yield exports["HOOKLINE_TEST_POSTGRES_URL"]
    finally:
        stop_throwaway(exports["HOOKLINE_POSTGRES_DIR"])


def postgres_schema_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL URL with a fresh schema of this test's own first on its search path;
    the schema is dropped when the test ends."""
    url: str = request.getfixturevalue("postgres_url")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    request.addfinalizer(drop)
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


class StoreFactory:
    """Makes stores over one storage: every call is a new, unstarted
    :class:`~hookline.store._store.Store` over the same data (the same in-memory
    backend, SQLite file or PostgreSQL schema), so a test can stop an engine and start
    another on what the first left, as a restarted process would.

    ``kind`` names the backend (``memory``, ``sqlite`` or ``postgres``). A PostgreSQL
    backend runs inline (``threaded=False``) when the test uses ``autojump_clock``:
    trio's virtual clock would jump while a worker thread waits on the server.
    """

    def __init__(self, kind: str, backend: Callable[[], StoreBackend]) -> None:
        self.kind = kind
        self._backend = backend

    def __repr__(self) -> str:
        return f"StoreFactory({self.kind!r})"

    def backend(self) -> StoreBackend:
        """A new, unopened backend over the storage (for stores of a test's own class)."""
        return self._backend()

    def __call__(self, **options: Any) -> Store:
        """A new, unstarted store; ``options`` are :class:`Store`'s keyword arguments."""
        return Store(self._backend(), **options)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Store]:
        """A new store over the storage, running until the block ends: to read what an
        engine left behind, as the next start would."""
        store = self()
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            yield store
            nursery.cancel_scope.cancel()


def _store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    kind: str = request.param
    if kind == "postgres":
        url = postgres_schema_url(request)
        threaded = "autojump_clock" not in request.fixturenames
        return StoreFactory(kind, lambda: PostgresBackend(url, threaded=threaded))
    if kind == "sqlite":
        path = tmp_path / "hookline.db"
        return StoreFactory(kind, lambda: SQLiteBackend(path))
    memory = MemoryBackend()  # keeps its data across close and open
    return StoreFactory(kind, lambda: memory)


@pytest.fixture(params=["memory", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A :class:`StoreFactory` on the in-memory backend, then on PostgreSQL: the tests
    that run on ``MemoryStore()`` take this to run on both."""
    return _store_factory(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def make_durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A :class:`StoreFactory` on a SQLite file, then on PostgreSQL: for the tests about
    what a real database keeps (threads: no autojump clock with SQLite)."""
    return _store_factory(request, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_any_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A :class:`StoreFactory` on each backend in turn: for the tests that ran on both
    embedded backends before PostgreSQL came."""
    return _store_factory(request, tmp_path)


FLAKY_WORKFLOW = """
key: flaky
nodes:
  - key: check
    type: condition
    if: {gt: ["{{$context.data.n}}", 0]}
    else:
      - {key: boom, type: fail, message: "n must be positive"}
"""
"""A workflow that fails (its ``boom`` node) for ``n`` of 0 or less: for tests of what
happens to failed executions (retry, replay, bulk, alerts)."""
