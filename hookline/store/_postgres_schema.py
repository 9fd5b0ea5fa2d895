"""The PostgreSQL schema, as an ordered list of migrations.

A database records the migrations it has applied in ``schema_migrations`` (version,
name, time). :func:`migrate` applies the missing ones in order in one transaction,
holding an advisory lock, so several processes opening the same new database migrate
it once. Tables go into the connection's current schema (the first of its
``search_path``), so one database can hold several hookline stores side by side.

Ids and other keys that lists sort by are ``text COLLATE "C"``: byte order, the order
SQLite and Python give them, whatever the database's own locale. Payloads are msgpack
in ``bytea``; times are seconds since the epoch in ``double precision``, as in SQLite.
Later changes add an entry to :data:`MIGRATIONS`; never edit an applied one.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ..errors import StoreError

__all__ = ["MIGRATIONS", "migrate"]

# Any constant will do, as long as it stays the same: every hookline process migrating
# a database takes this lock first.
_MIGRATION_LOCK = 0x686F6F6B6C696E65  # "hookline"

_INITIAL = (
    """CREATE TABLE workflows (
        key text COLLATE "C" PRIMARY KEY,
        title text NOT NULL,
        enabled boolean NOT NULL,
        source text NOT NULL,
        digest text NOT NULL,
        updated_at double precision NOT NULL)""",
    """CREATE TABLE deliveries (
        id text COLLATE "C" PRIMARY KEY,
        workflow text,
        received_at double precision NOT NULL,
        method text NOT NULL,
        path text NOT NULL,
        headers bytea,
        query bytea,
        body bytea,
        remote_addr text,
        verdict text NOT NULL,
        reason text,
        status integer,
        execution_id text)""",
    # Lists are newest first (id desc) with optional filters: each filter leads an index
    # whose second column is the id, so a page is an index range scan.
    "CREATE INDEX deliveries_by_workflow ON deliveries (workflow, id)",
    "CREATE INDEX deliveries_by_verdict ON deliveries (verdict, id)",
    """CREATE TABLE executions (
        id text COLLATE "C" PRIMARY KEY,
        workflow text NOT NULL,
        delivery_id text,
        status text NOT NULL,
        created_at double precision NOT NULL,
        started_at double precision,
        finished_at double precision,
        context bytea,
        output bytea,
        error text,
        order_key text)""",
    "CREATE INDEX executions_by_workflow ON executions (workflow, id)",
    "CREATE INDEX executions_by_status ON executions (status, id)",
    "CREATE INDEX executions_by_delivery ON executions (delivery_id)",
    # seq keeps the order jobs were first saved in; a job saved again keeps its seq.
    """CREATE TABLE jobs (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        execution_id text NOT NULL,
        node text NOT NULL,
        scope text NOT NULL DEFAULT '',
        attempt integer NOT NULL,
        type text NOT NULL,
        status text NOT NULL,
        started_at double precision NOT NULL,
        finished_at double precision,
        output bytea,
        error text,
        log bytea,
        CONSTRAINT jobs_identity UNIQUE (execution_id, node, scope, attempt))""",
    "CREATE INDEX jobs_by_execution ON jobs (execution_id, seq)",
    # The claim of a key is the insert: the primary key makes two claims collide.
    """CREATE TABLE idempotency (
        workflow text NOT NULL,
        key text NOT NULL,
        body_hash text NOT NULL,
        execution_id text NOT NULL,
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL,
        answer bytea,
        PRIMARY KEY (workflow, key))""",
    "CREATE INDEX idempotency_by_expiry ON idempotency (expires_at)",
    # Collection tables are made by their first write; this names them (a collection
    # name may be longer than PostgreSQL's 63-byte identifiers allow with a prefix).
    """CREATE TABLE collections (
        name text COLLATE "C" PRIMARY KEY,
        table_name text NOT NULL UNIQUE,
        created_at double precision NOT NULL)""",
)

# Every distinct definition a workflow has had, so an execution can show the one it ran
# with; the same text saved again (same digest) is the same version.
_WORKFLOW_VERSIONS = (
    """CREATE TABLE workflow_versions (
        workflow text NOT NULL,
        version integer NOT NULL,
        digest text NOT NULL,
        source text NOT NULL,
        created_at double precision NOT NULL,
        PRIMARY KEY (workflow, version),
        CONSTRAINT workflow_versions_by_digest UNIQUE (workflow, digest))""",
    "ALTER TABLE executions ADD COLUMN workflow_version integer",
)

# Several processes sharing the database (see :mod:`._postgres_cluster`): each process
# is a row of ``workers`` kept alive by heartbeats (database time, so machines' clocks
# need not agree); an unfinished execution belongs to the worker in ``owner`` (set from
# the writer connection's ``hookline.worker`` setting when it is inserted or retried).
# ``seq`` numbers executions in commit order of arrival, whatever the clocks, for
# ``order_by``. An execution leaving queued/running wakes the processes waiting to start
# one of the same workflow.
_CLUSTER = (
    """CREATE TABLE workers (
        id text COLLATE "C" PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at double precision NOT NULL,
        heartbeat_at double precision NOT NULL)""",
    (
        "ALTER TABLE executions ADD COLUMN owner text "
        "DEFAULT NULLIF(current_setting('hookline.worker', true), '')"
    ),
    "ALTER TABLE executions ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY",
    (
        "CREATE INDEX executions_live ON executions (workflow, order_key, seq) "
        "WHERE status IN ('queued', 'running')"
    ),
    "CREATE INDEX executions_running ON executions (workflow) WHERE status = 'running'",
    """CREATE FUNCTION hookline_execution_ended() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hookline_ended', NEW.workflow);
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER executions_ended AFTER UPDATE OF status ON executions FOR EACH ROW
        WHEN (OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
        EXECUTE FUNCTION hookline_execution_ended()""",
)

# A cancel requested of another process's execution is recorded with it: its owner
# finds it at its next heartbeat if the NOTIFY was missed, and the process that adopts
# it when its owner died cancels it (see :mod:`._postgres_cluster`).
_CANCEL_REQUESTS = (
    "ALTER TABLE executions ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false",
    (
        "CREATE INDEX executions_cancel_requested ON executions (owner) "
        "WHERE cancel_requested AND status IN ('queued', 'running')"
    ),
)

# Flow control shared by every process: a ``throttle``'s GCRA state (the theoretical
# arrival time of each key, database time in seconds; see hookline/engine/_gcra.py).
_FLOW_RATES = (
    """CREATE TABLE flow_rates (
        scope text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        tat double precision NOT NULL,
        PRIMARY KEY (scope, key))""",
)

# Executions parked on a ``wait`` node: one row per waiting job, deleted by whichever
# process ends the wait (its event, its timeout, an operator), so that it ends once.
_WAITS = (
    """CREATE TABLE waits (
        execution_id text COLLATE "C" NOT NULL,
        node text NOT NULL,
        scope text NOT NULL,
        attempt integer NOT NULL,
        workflow text NOT NULL,
        event text NOT NULL,
        correlation text NOT NULL,
        until double precision NOT NULL,
        started_at double precision,
        PRIMARY KEY (execution_id, node, scope))""",
    "CREATE INDEX waits_by_event ON waits (event, correlation)",
    "CREATE INDEX waits_by_until ON waits (until)",
)

# What a live execution's ``cancel_on`` rules match: an event accepted by any process
# finds the executions it cancels, parked ones included.
_CANCEL_KEYS = (
    """CREATE TABLE cancel_keys (
        event text NOT NULL,
        correlation text NOT NULL,
        execution_id text COLLATE "C" NOT NULL,
        PRIMARY KEY (event, correlation, execution_id))""",
    "CREATE INDEX cancel_keys_by_execution ON cancel_keys (execution_id)",
)

# ``throttled`` (queued, held back by ``throttle``) and ``waiting`` (parked on a ``wait``)
# executions are live too: the partial indexes cover them. A wake-up goes out when a
# slot frees (leaving ``running``, for ``waiting`` too) or an order key does (leaving the
# live statuses), not when a queued execution is marked throttled.
_LIVE_STATUSES = (
    "DROP INDEX executions_live",
    (
        "CREATE INDEX executions_live ON executions (workflow, order_key, seq) "
        "WHERE status IN ('queued', 'throttled', 'running', 'waiting')"
    ),
    "DROP INDEX executions_cancel_requested",
    (
        "CREATE INDEX executions_cancel_requested ON executions (owner) WHERE "
        "cancel_requested AND status IN ('queued', 'throttled', 'running', 'waiting')"
    ),
    "DROP TRIGGER executions_ended ON executions",
    """CREATE TRIGGER executions_ended AFTER UPDATE OF status ON executions FOR EACH ROW
        WHEN ((OLD.status = 'running' AND NEW.status <> 'running')
            OR (OLD.status IN ('queued', 'throttled', 'running', 'waiting')
                AND NEW.status NOT IN ('queued', 'throttled', 'running', 'waiting')))
        EXECUTE FUNCTION hookline_execution_ended()""",
)

# A debounced execution's rendered key (``flow_key``): when a process closes a window,
# a newer execution of the same key, wherever it arrived, supersedes the one it held.
_FLOW_KEYS = (
    "ALTER TABLE executions ADD COLUMN flow_key text",
    (
        "CREATE INDEX executions_by_flow_key ON executions (workflow, flow_key, id) "
        "WHERE flow_key IS NOT NULL"
    ),
)

#: Every migration, in order: a name and its statements. A database at version N has
#: applied the first N.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("initial", _INITIAL),
    ("workflow versions", _WORKFLOW_VERSIONS),
    ("cluster", _CLUSTER),
    ("cancel requests", _CANCEL_REQUESTS),
    ("flow rates", _FLOW_RATES),
    ("waits", _WAITS),
    ("live statuses", _LIVE_STATUSES),
    ("execution flow keys", _FLOW_KEYS),
    ("cancel keys", _CANCEL_KEYS),
)


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Bring the database on ``conn`` up to date; returns the names of the migrations
    applied now (empty when it already was).

    ``conn`` must be in autocommit mode with no transaction open. Raises StoreError if
    the database was written by a newer hookline (it has migrations this one does not
    know) or cannot be migrated.
    """
    applied_now: list[str] = []
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at double precision NOT NULL)"
            )
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
            versions = {int(row[0]) for row in rows}
            newest = max(versions, default=0)
            if newest > len(MIGRATIONS):
                raise StoreError(
                    f"the database is at schema version {newest}, newer than this "
                    f"hookline knows ({len(MIGRATIONS)}); upgrade hookline"
                )
            for version, (name, statements) in enumerate(MIGRATIONS, start=1):
                if version in versions:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
                applied_now.append(name)
    except psycopg.Error as exc:
        raise StoreError(f"could not migrate the database: {exc}") from exc
    return applied_now
