"""The PostgreSQL backend: migrations, connections and URLs, claims shared by processes,
collections that answer exactly as the memory backend does, and an engine running on it.

Everything that every backend does alike is in test_backends.py, test_collections.py and
test_store.py, which run on PostgreSQL too (see conftest.py)."""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import psycopg
import pytest
from hypothesis import strategies as st

from hookline._ids import new_id
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import ConfigError, StoreClosed, StoreError
from hookline.store._collections import CreateRecord, Filter, Sort, UpdateRecords
from hookline.store._memory import MemoryBackend
from hookline.store._ops import (
    AcceptDelivery,
    CollectionWrite,
    IdempotencyClaim,
    RecordDelivery,
    SaveWorkflow,
)
from hookline.store._postgres import PostgresBackend
from hookline.store._postgres_schema import MIGRATIONS
from hookline.store._records import IdempotencyRecord, WorkflowRecord
from hookline.store._store import open_store

from .conftest import delivery, execution, job, postgres_schema_url


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """A URL whose current schema is this test's own."""
    return postgres_schema_url(request)


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    opened = PostgresBackend(url)
    opened.open()
    yield opened
    opened.close()


def rejected() -> RecordDelivery:
    return RecordDelivery(delivery(verdict="rejected", reason="test"))


def test_opening_twice_migrates_once_and_keeps_data(url: str) -> None:
    first = PostgresBackend(url)
    first.open()
    first.open()
    op = rejected()
    assert first.apply([op]) == [None]
    first.close()
    first.close()

    again = PostgresBackend(url)
    again.open()
    try:
        assert again.get_delivery(op.delivery.id) == op.delivery
    finally:
        again.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [name for _, name in rows] == [name for name, _ in MIGRATIONS]


def test_a_database_from_a_newer_hookline_is_refused(url: str) -> None:
    PostgresBackend(url).open()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match="newer than this hookline"):
        PostgresBackend(url).open()


def test_an_unreachable_server_is_a_store_error_that_hides_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = PostgresBackend(f"postgresql://hookline:hunter2@127.0.0.1:{port}/hookline")
    with pytest.raises(StoreError, match="could not connect") as caught:
        backend.open()
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(backend)


def test_a_closed_backend_refuses_reads_and_writes(url: str) -> None:
    backend = PostgresBackend(url)
    with pytest.raises(StoreClosed):
        backend.apply([rejected()])
    backend.open()
    backend.close()
    with pytest.raises(StoreClosed):
        backend.get_delivery(new_id())
    with pytest.raises(StoreClosed):
        backend.list_collections()
    with pytest.raises(ValueError, match="readers"):
        PostgresBackend(url, readers=0)


def test_open_store_understands_postgresql_urls(url: str) -> None:
    store = open_store(f"{url}&readers=2")
    backend = store.backend
    assert isinstance(backend, PostgresBackend)
    assert backend.readers == 2
    assert "readers" not in backend.url
    assert "search_path" in backend.url  # libpq options pass through

    with pytest.raises(ConfigError, match=r"^store\.url: expected valid options") as caught:
        open_store("postgresql://me:hunter2@db.example/hookline?readers=many")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"^store\.url: expected a valid PostgreSQL URL"):
        open_store("postgresql://db.example/hookline?no_such_option=1")


def test_a_failed_transaction_stores_neither_the_write_nor_its_job(
    backend: PostgresBackend, url: str
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION no_jobs() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
        )
        conn.execute("CREATE TRIGGER no_jobs BEFORE INSERT ON jobs EXECUTE FUNCTION no_jobs()")
    doomed = job(new_id(), "write", type="create")
    (result,) = backend.apply([CollectionWrite(doomed, CreateRecord("orders", {"total": 1}))])

    assert isinstance(result, StoreError)
    assert "disk full" in str(result)
    assert backend.query_records("orders", (), (), None) == []
    assert backend.list_collections() == []
    assert backend.list_jobs(doomed.execution_id) == []


def _terminate(url: str, application: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        )


def test_a_lost_connection_fails_one_batch_then_the_backend_reconnects(url: str) -> None:
    application = f"hookline-{new_id().lower()}"
    backend = PostgresBackend(f"{url}&application_name={application}")
    backend.open()
    try:
        assert backend.apply([rejected()]) == [None]
        assert backend.list_deliveries(workflow=None, verdict=None, limit=5, cursor=None).items
        _terminate(url, application)

        with pytest.raises(StoreError, match="could not commit"):
            backend.apply([rejected()])
        op = rejected()
        assert backend.apply([op]) == [None]
        # The pooled read connection died too: the read is tried again on a new one.
        assert backend.get_delivery(op.delivery.id) == op.delivery
    finally:
        backend.close()


def _wait_for_a_lock_wait(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(500):
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second claim never waited for the first")


@pytest.mark.parametrize("first_commits", [True, False])
def test_two_processes_claiming_one_key_make_one_execution(
    backend: PostgresBackend, url: str, first_commits: bool
) -> None:
    def claim() -> AcceptDelivery:
        d = delivery(received_at=1_000.0)
        e = execution(delivery_id=d.id, created_at=1_000.0)
        return AcceptDelivery(d, e, IdempotencyClaim("evt-1", "hash", 2_000.0))

    first, second = claim(), claim()
    other = PostgresBackend(url)  # another process, as far as the database can tell
    other.open()
    results: list[object] = []
    try:
        with psycopg.connect(url) as conn:
            # The first process is inside its transaction, its claim made, not committed.
            conn.execute(
                "INSERT INTO idempotency (workflow, key, body_hash, execution_id, created_at, "
                "expires_at) VALUES ('orders', 'evt-1', 'hash', %s, 1000, 2000)",
                (first.execution.id,),
            )
            waiter = threading.Thread(target=lambda: results.extend(other.apply([second])))
            waiter.start()
            _wait_for_a_lock_wait(url)
            if first_commits:
                conn.commit()
            else:
                conn.rollback()
        waiter.join(timeout=10)
    finally:
        other.close()

    (result,) = results
    if first_commits:
        assert isinstance(result, IdempotencyRecord)
        assert result.execution_id == first.execution.id
        assert backend.get_execution(second.execution.id) is None
    else:
        assert result is None
        assert backend.get_execution(second.execution.id) is not None


def test_long_collection_names_stay_apart(backend: PostgresBackend) -> None:
    names = ["a" * 62 + "x", "a" * 62 + "y"]
    for name in names:
        backend.apply([CollectionWrite(job(new_id(), "w"), CreateRecord(name, {"name": name}))])
    assert backend.list_collections() == names
    for name in names:
        assert [r["name"] for r in backend.query_records(name, (), (), None)] == [name]


def test_workflow_versions_number_distinct_sources(backend: PostgresBackend) -> None:
    def saved(source: str) -> object:
        record = WorkflowRecord(
            "w", "W", enabled=True, source=source, digest=f"d-{source}", updated_at=1
        )
        (result,) = backend.apply([SaveWorkflow(record)])
        return result

    assert [saved("a"), saved("b"), saved("a"), saved("c")] == [1, 2, 1, 3]
    page = backend.list_workflow_versions("w", 2, None)
    assert [v.source for v in page.items] == ["c", "b"]
    rest = backend.list_workflow_versions("w", 2, int(page.cursor or 0))
    assert [v.source for v in rest.items] == ["a"]
    assert rest.cursor is None
    version = backend.get_workflow_version("w", 2)
    assert version is not None
    assert (version.version, version.digest) == (2, "d-b")
    assert backend.get_workflow_version("w", 4) is None


# -- collections answer as the memory backend does --------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=4)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.integers(min_value=-3, max_value=3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 1.0, 2.0, 1e16, 2.0**60])
    | st.sampled_from(["5", "2.0", " 7", "1e3", "-2", "a\x00", "a\x01b", "a", ""])
    | _TEXT
)
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=2) | st.dictionaries(_TEXT, _SCALARS, max_size=2)
_BINARY = ["equal", "not_equal", "gt", "gte", "lt", "lte", "in", "includes", "starts_with"]
_FILTERS = st.one_of(
    st.builds(Filter, st.just("v"), st.sampled_from(_BINARY), _VALUES),
    st.builds(Filter, st.just("v"), st.sampled_from(["in"]), st.lists(_SCALARS, max_size=3)),
    st.builds(Filter, st.just("v"), st.sampled_from(["exists", "empty"]), st.booleans()),
)


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    values=st.lists(_VALUES, min_size=1, max_size=6),
    where=st.lists(_FILTERS, max_size=1),
    descending=st.booleans(),
    changes=st.dictionaries(st.sampled_from(["v", "w"]), _SCALARS, max_size=2),
)
def test_collections_answer_as_the_memory_backend_does(
    backend: PostgresBackend,
    values: list[Any],
    where: list[Filter],
    descending: bool,
    changes: dict[str, Any],
) -> None:
    collection = f"c{new_id().lower()}"
    writes = [
        CollectionWrite(job(new_id(), "w"), CreateRecord(collection, {"v": value}))
        for value in values
    ]
    update = CollectionWrite(job(new_id(), "u"), UpdateRecords(collection, where, changes))
    memory = MemoryBackend()
    memory.open()
    assert backend.apply([*writes, update]) == memory.apply([*writes, update])

    order = [Sort("v", descending=descending)]
    for filters in (where, []):
        expected = memory.query_records(collection, filters, order, None)
        assert backend.query_records(collection, filters, order, None) == expected
        ids = [r["id"] for r in expected]
        found = backend.query_records(collection, filters, order, 2)
        assert [r["id"] for r in found] == ids[:2]
    # Types too: 2.0 stays a float, True a bool, "5" text (and == holds 2 == 2.0 == True).
    typed = [
        {name: type(value) for name, value in record.items()}
        for record in memory.query_records(collection, [], [], None)
    ]
    assert [
        {name: type(value) for name, value in record.items()}
        for record in backend.query_records(collection, [], [], None)
    ] == typed


# -- the engine on PostgreSQL ------------------------------------------------------------

FORMS = load_workflow_text(
    textwrap.dedent(
        """
        key: forms
        trigger: {type: webhook, idempotency: {ttl: 1h}}
        nodes:
          - key: save
            type: create
            collection: people
            values: {name: "{{$context.data.name}}"}
          - {key: everyone, type: query, collection: people, order_by: [name]}
        """
    ),
    source="forms.yaml",
)


async def test_an_engine_runs_workflows_on_postgresql_and_restarts_on_it(url: str) -> None:
    async with open_engine([FORMS], store=url) as engine:
        first = await engine.run("forms", data={"name": "bob"}, headers={"Idempotency-Key": "k1"})
        again = await engine.run("forms", data={"name": "bob"}, headers={"Idempotency-Key": "k1"})
        second = await engine.run("forms", data={"name": "ann"})
        jobs = await engine.store.list_jobs(second.execution_id)

    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert again.execution_id == first.execution_id  # the key's first execution
    assert [j.node for j in jobs] == ["save", "everyone"]
    assert [r["name"] for r in jobs[1].output] == ["ann", "bob"]

    async with open_engine([FORMS], store=url) as engine:
        page = await engine.store.list_executions(workflow="forms")
        duplicates = await engine.store.list_deliveries(verdict="duplicate")
    assert [e.id for e in page.items] == [second.execution_id, first.execution_id]
    assert [d.execution_id for d in duplicates.items] == [first.execution_id]
