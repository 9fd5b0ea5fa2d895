"""Fixtures for the store tests: every backend, a running store, record factories.

The PostgreSQL backend runs against ``HOOKLINE_TEST_POSTGRES_URL`` when it is set;
otherwise a throwaway cluster is started for the session with scripts/postgres.sh
(which installs Debian's postgresql package if it is missing and it can). With neither
(or ``HOOKLINE_TEST_POSTGRES_SKIP`` set to the reason), the PostgreSQL cases are
skipped, saying why. Each test gets a schema of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from hookline._ids import new_id
from hookline.store._backend import StoreBackend
from hookline.store._memory import MemoryBackend
from hookline.store._postgres import PostgresBackend
from hookline.store._records import DeliveryRecord, ExecutionRecord, JobRecord
from hookline.store._sqlite import SQLiteBackend
from hookline.store._store import Store

from ..conftest import postgres_schema_url

BackendFactory = Callable[[], StoreBackend]


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
