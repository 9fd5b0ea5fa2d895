""":class:`~._batching.FormBatch` as SQL, for SQLite and for PostgreSQL.

Both read the members still ``queued`` and write the batch inside the writer's
transaction. SQLite has one writer at a time, so what it read stays true until COMMIT.
PostgreSQL locks the member rows (``FOR UPDATE``, in id order so two claims never
deadlock) and takes only those its process owns: a claim that waited for another one's
lock reads the rows again as that one committed them, and skips those it took.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from ._batching import FormBatch, FormedBatch, form_batch, member_output
from ._encoding import pack, unpack

if TYPE_CHECKING:
    # Only its type: psycopg is imported with the PostgreSQL backend, not with SQLite's.
    import psycopg

__all__ = ["form_postgres", "form_sqlite"]

_SQLITE_CLAIM = (
    "SELECT id, context FROM executions "
    "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued' ORDER BY id"
)
_SQLITE_SET_CONTEXT = "UPDATE executions SET context = ? WHERE id = ?"
_SQLITE_END_MEMBER = (
    "UPDATE executions SET status = 'succeeded', finished_at = ?, output = ? WHERE id = ?"
)

# Only the owner claims: a process whose executions were adopted (it stopped
# heartbeating) must not batch what their new owner holds.
_POSTGRES_CLAIM = (
    "SELECT id, context FROM executions WHERE id = ANY(%s::text[]) AND status = 'queued' "
    "AND (owner IS NULL OR owner = NULLIF(current_setting('hookline.worker', true), '')) "
    "ORDER BY id FOR UPDATE"
)
_POSTGRES_SET_CONTEXT = "UPDATE executions SET context = %s WHERE id = %s"
_POSTGRES_END_MEMBERS = (
    "UPDATE executions SET status = 'succeeded', finished_at = %s, output = %s "
    "WHERE id = ANY(%s::text[])"
)


def _claimed(rows: list[Any], op: FormBatch) -> list[tuple[str, Any]]:
    """The rows read, in the op's (arrival) order."""
    found = {str(row[0]): unpack(row[1]) for row in rows}
    return [(id_, found[id_]) for id_ in op.members if id_ in found]


def form_sqlite(conn: sqlite3.Connection, op: FormBatch) -> FormedBatch | None:
    rows = conn.execute(_SQLITE_CLAIM, (json.dumps(list(op.members)),)).fetchall()
    found = form_batch(_claimed(rows, op))
    if found is None:
        return None
    formed, context = found
    conn.execute(_SQLITE_SET_CONTEXT, (pack(context), formed.execution_id))
    output = pack(member_output(formed))
    conn.executemany(
        _SQLITE_END_MEMBER, [(op.finished_at, output, id_) for id_ in formed.members[1:]]
    )
    return formed


def form_postgres(conn: psycopg.Connection[Any], op: FormBatch) -> FormedBatch | None:
    rows = conn.execute(_POSTGRES_CLAIM, (list(op.members),)).fetchall()
    found = form_batch(_claimed(rows, op))
    if found is None:
        return None
    formed, context = found
    conn.execute(_POSTGRES_SET_CONTEXT, (pack(context), formed.execution_id))
    if len(formed.members) > 1:
        output = pack(member_output(formed))
        conn.execute(_POSTGRES_END_MEMBERS, (op.finished_at, output, list(formed.members[1:])))
    return formed
