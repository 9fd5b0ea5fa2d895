"""The SQLite schema, as an ordered list of migrations applied with sqlite-utils.

A database records the migrations it has applied in the ``migrations`` table (version,
name, time). :func:`migrate` applies the missing ones in order, in one ``BEGIN
IMMEDIATE`` transaction, so two processes opening the same new file cannot both create
it. Later changes add a function to :data:`MIGRATIONS`; never edit an applied one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    # Imported when a SQLite file is opened: sqlite-utils (and numpy, which it loads
    # when installed) cost more to import than the whole engine.
    import sqlite_utils

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[["sqlite_utils.Database"], None]


def _initial(db: sqlite_utils.Database) -> None:
    db.table("workflows").create(
        {
            "key": str,
            "title": str,
            "enabled": int,
            "source": str,
            "digest": str,
            "updated_at": float,
        },
        pk="key",
        not_null={"title", "enabled", "source", "digest", "updated_at"},
    )
    db.table("deliveries").create(
        {
            "id": str,
            "workflow": str,
            "received_at": float,
            "method": str,
            "path": str,
            "headers": bytes,
            "query": bytes,
            "body": bytes,
            "remote_addr": str,
            "verdict": str,
            "reason": str,
            "status": int,
            "execution_id": str,
        },
        pk="id",
        not_null={"received_at", "method", "path", "verdict"},
    )
    # Lists are newest first (id desc) with optional filters: each filter leads an index
    # whose second column is the id, so a page is an index range scan.
    db.table("deliveries").create_index(["workflow", "id"], "deliveries_by_workflow")
    db.table("deliveries").create_index(["verdict", "id"], "deliveries_by_verdict")
    db.table("executions").create(
        {
            "id": str,
            "workflow": str,
            "delivery_id": str,
            "status": str,
            "created_at": float,
            "started_at": float,
            "finished_at": float,
            "context": bytes,
            "output": bytes,
            "error": str,
        },
        pk="id",
        not_null={"workflow", "status", "created_at"},
    )
    db.table("executions").create_index(["workflow", "id"], "executions_by_workflow")
    db.table("executions").create_index(["status", "id"], "executions_by_status")
    db.table("executions").create_index(["delivery_id"], "executions_by_delivery")
    # seq is the rowid: jobs come back in the order they were saved.
    db.table("jobs").create(
        {
            "seq": int,
            "execution_id": str,
            "node": str,
            "type": str,
            "status": str,
            "attempt": int,
            "started_at": float,
            "finished_at": float,
            "output": bytes,
            "error": str,
            "log": bytes,
        },
        pk="seq",
        not_null={"execution_id", "node", "type", "status", "attempt", "started_at"},
    )
    db.table("jobs").create_index(["execution_id", "seq"], "jobs_by_execution")
    db.table("idempotency").create(
        {
            "workflow": str,
            "key": str,
            "body_hash": str,
            "execution_id": str,
            "created_at": float,
            "expires_at": float,
            "answer": bytes,
        },
        pk=("workflow", "key"),
        not_null={"body_hash", "execution_id", "created_at", "expires_at"},
    )
    # For purging expired keys.
    db.table("idempotency").create_index(["expires_at"], "idempotency_by_expiry")


def _unique_jobs(db: sqlite_utils.Database) -> None:
    # A job is one attempt of one node: saving it again must complete its row (a
    # collection write saves its job with the write, the execution saves it after).
    # Keep the last save of any attempt stored twice before this rule.
    db.execute(
        "DELETE FROM jobs WHERE seq NOT IN "
        "(SELECT MAX(seq) FROM jobs GROUP BY execution_id, node, attempt)"
    )
    db.table("jobs").create_index(
        ["execution_id", "node", "attempt"], "jobs_by_identity", unique=True
    )


def _order_keys(db: sqlite_utils.Database) -> None:
    # concurrency.order_by, kept so that ordering holds across a restart.
    db.table("executions").add_column("order_key", str)


def _job_scopes(db: sqlite_utils.Database) -> None:
    # Nodes inside loops run once per iteration: a job is known by its scope too.
    db.table("jobs").add_column("scope", str, not_null_default="")
    db.execute("DROP INDEX jobs_by_identity")
    db.table("jobs").create_index(
        ["execution_id", "node", "scope", "attempt"], "jobs_by_scoped_identity", unique=True
    )


def _workflow_versions(db: sqlite_utils.Database) -> None:
    # Every distinct definition a workflow has had, so an execution can show the one it
    # ran with; the same text saved again (same digest) is the same version.
    db.table("workflow_versions").create(
        {
            "workflow": str,
            "version": int,
            "digest": str,
            "source": str,
            "created_at": float,
        },
        pk=("workflow", "version"),
        not_null={"digest", "source", "created_at"},
    )
    db.table("workflow_versions").create_index(
        ["workflow", "digest"], "workflow_versions_by_digest", unique=True
    )
    db.table("executions").add_column("workflow_version", int)


def _waits(db: sqlite_utils.Database) -> None:
    # Executions parked on a ``wait`` node: one row per waiting job, deleted by whoever
    # ends the wait (its event, its timeout, an operator), so that it ends once.
    db.table("waits").create(
        {
            "execution_id": str,
            "node": str,
            "scope": str,
            "attempt": int,
            "workflow": str,
            "event": str,
            "correlation": str,
            "until": float,
            "started_at": float,
        },
        pk=("execution_id", "node", "scope"),
        not_null={"attempt", "workflow", "event", "correlation", "until"},
    )
    db.table("waits").create_index(["event", "correlation"], "waits_by_event")
    db.table("waits").create_index(["until"], "waits_by_until")


def _cancel_keys(db: sqlite_utils.Database) -> None:
    # What a live execution's ``cancel_on`` rules match: an event finds the executions
    # it cancels, parked ones and (on a shared store) those of other processes.
    db.table("cancel_keys").create(
        {"execution_id": str, "event": str, "correlation": str},
        pk=("event", "correlation", "execution_id"),
    )
    db.table("cancel_keys").create_index(["execution_id"], "cancel_keys_by_execution")


def _flow_keys(db: sqlite_utils.Database) -> None:
    # A debounced execution's rendered key: the newer ones of its key supersede it, in
    # whichever process sharing the store they arrived.
    db.table("executions").add_column("flow_key", str)
    db.execute(
        "CREATE INDEX executions_by_flow_key ON executions (workflow, flow_key, id) "
        "WHERE flow_key IS NOT NULL"
    )


#: Every migration, in order; a database at version N has applied the first N.
MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("initial", _initial),
    ("unique jobs", _unique_jobs),
    ("execution order keys", _order_keys),
    ("job scopes", _job_scopes),
    ("workflow versions", _workflow_versions),
    ("waits", _waits),
    ("execution flow keys", _flow_keys),
    ("cancel keys", _cancel_keys),
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Bring the database on ``conn`` up to date; returns the names of the migrations
    applied now (empty when it already was).

    ``conn`` must be in autocommit mode (``isolation_level=None``) with no transaction
    open. Raises StoreError if the file was written by a newer hookline (it has
    migrations this one does not know) or cannot be migrated.
    """
    import sqlite_utils

    db = sqlite_utils.Database(conn, execute_plugins=False)
    applied_now: list[str] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            table = db.table("migrations")
            if not table.exists():
                table.create(
                    {"version": int, "name": str, "applied_at": float},
                    pk="version",
                    not_null={"name", "applied_at"},
                )
            versions = {row[0] for row in conn.execute("SELECT version FROM migrations")}
            newest = max(versions, default=0)
            if newest > len(MIGRATIONS):
                raise StoreError(
                    f"the database is at schema version {newest}, newer than this "
                    f"hookline knows ({len(MIGRATIONS)}); upgrade hookline"
                )
            for version, (name, migration) in enumerate(MIGRATIONS, start=1):
                if version in versions:
                    continue
                migration(db)
                conn.execute(
                    "INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
                applied_now.append(name)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"could not migrate the database: {exc}") from exc
    return applied_now
