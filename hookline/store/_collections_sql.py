"""Collections in SQLite: one table ``c_<name>`` per collection, a column per field.

A table has ``id`` (primary key), ``created_at``, ``updated_at``, ``_types`` and one
column per field, added (``ALTER TABLE ... ADD COLUMN``) when a record first brings
it, as sqlite-utils does with ``alter=True``. Field columns have no declared type, so
SQLite stores each value as given (``"5"`` stays text, ``5`` an integer). Booleans are
stored as 0 and 1, objects and lists as JSON text; ``_types`` (JSON, null when plain)
names such fields of the row so that they decode back exactly.

Filters are narrowed in SQL where a clause can be written that keeps every row the
Python test would keep (never one fewer), then decided by :meth:`Filter.test`, so the
answers equal the memory backend's. Names are checked against a pattern before they
reach SQL, and always quoted; values are always bound (hence the ``noqa: S608``).

Collection tables are not part of the migrations (:mod:`._schema`): they are made by
the first write to a collection, inside that write's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..definition import JSON
from ..errors import StoreError
from ._collections import (
    CollectionAction,
    CreateRecord,
    DeleteRecords,
    Filter,
    Record,
    Sort,
    UpdateRecords,
    UpsertRecord,
    changed_record,
    check_collection,
    claim_fields,
    encode_json,
    matches,
    new_record,
)

__all__ = ["apply_action", "list_collections", "list_records", "query_records"]

_PREFIX = "c_"


def _table(collection: str) -> str:
    return f'"{_PREFIX}{check_collection(collection)}"'


def _columns(conn: sqlite3.Connection, collection: str) -> list[str] | None:
    """The table's columns, or None when the collection does not exist."""
    rows = conn.execute(f"PRAGMA table_info({_table(collection)})").fetchall()
    return [row[1] for row in rows] or None


def list_collections(conn: sqlite3.Connection) -> list[str]:
    """The names of the collections that exist, sorted."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c\\_%' ESCAPE '\\' "
        "ORDER BY name"
    ).fetchall()
    return [row[0][len(_PREFIX) :] for row in rows]


# -- reads -----------------------------------------------------------------------------


def _decode(names: Sequence[str], row: Sequence[Any]) -> Record:
    types: dict[str, str] = {}
    record: Record = {}
    for name, value in zip(names, row, strict=True):
        if name == "_types":
            types = json.loads(value) if value is not None else {}
        elif value is not None:
            record[name] = value
    for name, kind in types.items():
        record[name] = bool(record[name]) if kind == "bool" else json.loads(record[name])
    return record


def _select(
    conn: sqlite3.Connection,
    collection: str,
    where: Sequence[Filter],
    order_by: Sequence[Sort] = (),
) -> Iterator[Record]:
    """The records matching ``where``, in ``order_by`` order then by id, lazily."""
    columns = _columns(conn, collection)
    if columns is None:
        return
    clauses: list[str] = []
    args: list[Any] = []
    for condition in where:
        if condition.field not in columns:
            # Absent everywhere: the test on an empty record decides for every row.
            if not condition.test({}):
                return
            continue
        clause = _narrowing(condition)
        if clause is not None:
            clauses.append(clause[0])
            args.extend(clause[1])
    order = [
        f'"{sort.field}" {"DESC" if sort.descending else "ASC"}'
        for sort in order_by
        if sort.field in columns
    ]
    sql = f"SELECT * FROM {_table(collection)}"  # noqa: S608
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY " + ", ".join([*order, "id ASC"])
    cursor = conn.execute(sql, args)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        record = _decode(names, row)
        if matches(record, where):
            yield record


def _narrowing(condition: Filter) -> tuple[str, list[Any]] | None:
    """A SQL clause keeping at least every row ``condition`` keeps, or None (keep all).

    Python's operators take ``"5"`` as equal to ``5``; SQLite does not, so a clause on a
    number also keeps text, and one on text also keeps numbers.
    """
    column, operand = f'"{condition.field}"', condition.operand
    operator = condition.operator
    if operator == "exists":
        return (f"{column} IS {'NOT ' if operand else ''}NULL", [])
    if operator == "equal":
        return _equal(column, operand)
    if operator == "in" and isinstance(operand, list):
        parts = [_equal(column, item) for item in operand]
        if any(part is None for part in parts):
            return None
        if not parts:
            return ("0", [])
        return (
            "(" + " OR ".join(part[0] for part in parts if part) + ")",
            [arg for part in parts if part for arg in part[1]],
        )
    if operator in ("gt", "gte", "lt", "lte") and _is_number(operand):
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[operator]
        return (f"({column} {sign} ? OR typeof({column}) = 'text')", [operand])
    if operator == "starts_with":
        if not isinstance(operand, str):
            return ("0", [])
        return (f"substr({column}, 1, ?) = ?", [len(operand), operand])
    return None


def _equal(column: str, operand: Any) -> tuple[str, list[Any]] | None:
    if operand is None:
        return (f"{column} IS NULL", [])
    if isinstance(operand, bool):
        return (f"{column} = ?", [int(operand)])
    if _is_number(operand):
        return (f"({column} = ? OR typeof({column}) = 'text')", [operand])
    if isinstance(operand, str):
        return (f"({column} = ? OR typeof({column}) IN ('integer', 'real'))", [operand])
    return None


def _is_number(value: object) -> bool:
    """A number SQLite can bind (a wider integer is left to the Python test)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or -(1 << 63) <= value < (1 << 63)


def query_records(
    conn: sqlite3.Connection,
    collection: str,
    where: Sequence[Filter],
    order_by: Sequence[Sort],
    limit: int | None,
) -> list[Record]:
    """Up to ``limit`` records matching ``where``, in ``order_by`` order then by id."""
    found: list[Record] = []
    for record in _select(conn, collection, where, order_by):
        if limit is not None and len(found) >= limit:
            break
        found.append(record)
    return found


def list_records(
    conn: sqlite3.Connection, collection: str, limit: int, cursor: str | None
) -> list[Record]:
    """Up to ``limit`` records newest first, after the record ``cursor``."""
    if _columns(conn, collection) is None:
        return []
    sql = f"SELECT * FROM {_table(collection)}"  # noqa: S608
    args: list[Any] = []
    if cursor is not None:
        sql += " WHERE id < ?"
        args.append(cursor)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
    names = [column[0] for column in rows.description]
    return [_decode(names, row) for row in rows]


# -- writes ----------------------------------------------------------------------------


def apply_action(conn: sqlite3.Connection, action: CollectionAction) -> JSON:
    """Apply ``action`` on the write connection, inside the caller's transaction.

    Raises StoreError for a field clashing in case with another; sqlite3 errors pass.
    """
    if isinstance(action, CreateRecord):
        return _insert(conn, action.collection, new_record(action.id, action.at, action.values))
    if isinstance(action, UpsertRecord):
        found = next(_select(conn, action.collection, action.where), None)
        if found is None:
            record = new_record(action.id, action.at, action.values)
            return _insert(conn, action.collection, record)
        return _update(conn, action.collection, found, action.values, action.at)
    if isinstance(action, UpdateRecords):
        targets = list(_select(conn, action.collection, action.where))
        if action.single:
            targets = targets[:1]
        updated = [_update(conn, action.collection, r, action.values, action.at) for r in targets]
        if action.single:
            return updated[0] if updated else None
        return len(updated)
    if isinstance(action, DeleteRecords):
        ids = [(record["id"],) for record in _select(conn, action.collection, action.where)]
        if ids:
            conn.executemany(f"DELETE FROM {_table(action.collection)} WHERE id = ?", ids)  # noqa: S608
        return len(ids)
    raise StoreError(f"unknown collection action {type(action).__name__}")


def _insert(conn: sqlite3.Connection, collection: str, record: Record) -> Record:
    table = _table(collection)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY NOT NULL, "
        "created_at REAL NOT NULL, updated_at REAL NOT NULL, _types TEXT)"
    )
    _add_columns(conn, collection, record)
    names, values = _encode(record)
    quoted = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    conn.execute(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", values)  # noqa: S608
    return record


def _update(
    conn: sqlite3.Connection,
    collection: str,
    record: Record,
    values: Mapping[str, Any],
    at: float,
) -> Record:
    changed = changed_record(record, values, at)
    _add_columns(conn, collection, changed)
    names, encoded = _encode(changed)
    # Fields set to null are removed: their columns (if they have one) become NULL.
    removed = [name for name in values if name in record and name not in changed]
    assignments = ", ".join(f'"{name}" = ?' for name in [*names, *removed])
    conn.execute(
        f"UPDATE {_table(collection)} SET {assignments} WHERE id = ?",  # noqa: S608
        [*encoded, *(None for _ in removed), record["id"]],
    )
    return changed


def _add_columns(conn: sqlite3.Connection, collection: str, record: Record) -> None:
    columns = _columns(conn, collection) or []
    known = {name.lower(): name for name in columns}
    for name in claim_fields(known, record, collection):
        conn.execute(f'ALTER TABLE {_table(collection)} ADD COLUMN "{name}"')


def _encode(record: Record) -> tuple[list[str], list[Any]]:
    names: list[str] = ["_types"]
    values: list[Any] = [None]
    types: dict[str, str] = {}
    for name, value in record.items():
        stored = value
        if isinstance(value, bool):
            types[name] = "bool"
            stored = int(value)
        elif isinstance(value, dict | list):
            types[name] = "json"
            stored = encode_json(value)
        names.append(name)
        values.append(stored)
    values[0] = json.dumps(types) if types else None
    return names, values
