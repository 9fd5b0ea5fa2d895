"""Fixtures for the store tests: every backend, a running store, record factories.

The PostgreSQL backend runs against ``HOOKLINE_TEST_POSTGRES_URL`` when it is set;
otherwise a throwaway cluster is started for the session with scripts/postgres.sh
(which installs Debian's postgresql package if it is missing and it can). With neither
(or ``HOOKLINE_TEST_POSTGRES_SKIP`` set to the reason), the PostgreSQL cases are
skipped, saying why. Each test gets a schema of its own.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from hookline._ids import new_id
from hookline.store._backend import StoreBackend
from hookline.store._memory import MemoryBackend
from hookline.store._postgres import PostgresBackend
from hookline.store._records import DeliveryRecord, ExecutionRecord, JobRecord
from hookline.store._sqlite import SQLiteBackend
from hookline.store._store import Store

BackendFactory = Callable[[], StoreBackend]


SCRIPT = Path(__file__).parents[2] / "scripts" / "postgres.sh"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may fill; skips when there is none."""
    url = os.environ.get("HOOKLINE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if os.environ.get("HOOKLINE_TEST_POSTGRES_SKIP"):
        pytest.skip(f"no PostgreSQL server: {os.environ['HOOKLINE_TEST_POSTGRES_SKIP']}")
    started = subprocess.run(
        ["sh", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    if started.returncode != 0 or "HOOKLINE_TEST_POSTGRES_URL" not in exports:
        why = (started.stderr.strip().splitlines() or ["no reason given"])[-1]
        pytest.skip(
            "no PostgreSQL server: set HOOKLINE_TEST_POSTGRES_URL or install PostgreSQL "
            f"(scripts/postgres.sh start: {why})"
        )
    try:
        yield exports["HOOKLINE_TEST_POSTGRES_URL"]
    finally:
        subprocess.run(
            ["sh", str(SCRIPT), "stop", exports["HOOKLINE_POSTGRES_DIR"]], check=False, timeout=60
        )


def postgres_schema_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL URL with a fresh schema of this test's own first on its search path;
    the schema is dropped when the test ends."""
    url: str = request.getfixturevalue("postgres_url")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]

    request.addfinalizer(drop)
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BackendFactory:
    """Makes a backend over the same storage each time: the same file, the same
    PostgreSQL schema, or the same in-memory backend (which keeps its data across close
    and open)."""
    if request.param == "sqlite":
        path = tmp_path / "hookline.db"
        return lambda: SQLiteBackend(path)
    if request.param == "postgres":
        url = postgres_schema_url(request)
        return lambda: PostgresBackend(url)
    memory = MemoryBackend()
    return lambda: memory


@pytest.fixture
async def store(make_backend: BackendFactory, nursery: trio.Nursery) -> Store:
    """A running store; the test's nursery stops it at teardown."""
    running = Store(make_backend())
    await nursery.start(running.run)
    return running


def delivery(
    *,
    workflow: str | None = "orders",
    verdict: str = "accepted",
    received_at: float = 1_000.0,
    id: str | None = None,
    **fields: Any,
) -> DeliveryRecord:
    values: dict[str, Any] = {
        "method": "POST",
        "path": f"/api/webhooks/{workflow}",
        "headers": {"content-type": "application/json"},
        "query": {"page": "1"},
        "body": b'{"n": 1}',
        "remote_addr": "127.0.0.1",
    }
    values.update(fields)
    return DeliveryRecord(
        id=id or new_id(),
        workflow=workflow,
        received_at=received_at,
        verdict=verdict,  # type: ignore[arg-type]
        **values,
    )


def execution(
    *,
    workflow: str = "orders",
    status: str = "queued",
    delivery_id: str | None = None,
    id: str | None = None,
    **fields: Any,
) -> ExecutionRecord:
    fields.setdefault("created_at", 1_000.0)
    fields.setdefault("context", {"data": {"n": 1, "items": [1, 2]}, "headers": {}})
    return ExecutionRecord(
        id=id or new_id(),
        workflow=workflow,
        delivery_id=delivery_id,
        status=status,  # type: ignore[arg-type]
        **fields,
    )


def job(execution_id: str, node: str, **fields: Any) -> JobRecord:
    fields.setdefault("type", "set")
    fields.setdefault("status", "succeeded")
    fields.setdefault("attempt", 1)
    fields.setdefault("started_at", 1_000.0)
    return JobRecord(execution_id=execution_id, node=node, **fields)
