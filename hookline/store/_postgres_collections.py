"""Collections in PostgreSQL: one table per collection, a ``jsonb`` column per field.

A table has ``id`` (primary key), ``created_at``, ``updated_at``, ``_types`` and one
column per field, added (``ADD COLUMN IF NOT EXISTS``) when a record first brings it.
A ``jsonb`` column holds any JSON scalar, so a field keeps each value's type as given
(``"5"`` stays text, ``5`` a number), as SQLite's untyped columns do. A float is stored
as its exact decimal value, so numbers compare exactly as Python compares them; objects
and lists are stored as their JSON text (a ``jsonb`` string). Neither ``text`` nor
``jsonb`` can hold U+0000: text holding U+0000 or U+0001 is stored escaped by an
order-keeping code (:func:`_escape`). ``_types`` names the fields of a row that hold
JSON, escaped text or an integral float (which would read back as an integer). So every
value decodes back exactly, and sorts exactly as :func:`~._collections.sort_key` says:
null first, then numbers and booleans, then text (objects and lists as their JSON), by
code point.

Filters are narrowed in SQL where a clause can be written that keeps every row the
Python test would keep (never one fewer), then decided by :meth:`Filter.test`, as in
:mod:`._collections_sql`. Names are checked against a pattern and always passed as
identifiers; values are always bound.

Every write to a collection first takes a transaction-level advisory lock on it, so
writers in several processes never interleave a read-then-write (an upsert, a column
added as a field appears).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ..definition import JSON
from ..errors import StoreError
from ._collections import (
    SYSTEM_FIELDS,
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

Connection = psycopg.Connection[Any]

# The first key of the two-key advisory locks on collections ("hl").
_LOCK_CLASS = 0x686C
_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def table_name(collection: str) -> str:
    """The table of ``collection``: ``c_<name>``, shortened with a digest past 63 bytes."""
    name = check_collection(collection)
    if len(name) <= 61:
        return f"c_{name}"
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"c_{name[:50]}_{digest}"


def _columns(conn: Connection, collection: str) -> list[str] | None:
    """The table's columns, or None when the collection does not exist."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(%s)) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table_name(collection),),
    ).fetchall()
    return [row[0] for row in rows] or None


def list_collections(conn: Connection) -> list[str]:
    """The names of the collections that exist, sorted."""
    return [row[0] for row in conn.execute("SELECT name FROM collections ORDER BY name")]


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
        value = record[name]
        if kind == "float":
            record[name] = float(value)
        elif kind == "text":
            record[name] = _unescape(value)
        else:
            record[name] = json.loads(value)
    return record


def _select(
    conn: Connection,
    collection: str,
    where: Sequence[Filter],
    order_by: Sequence[Sort] = (),
    columns: list[str] | None = None,
) -> Iterator[Record]:
    """The records matching ``where``, in ``order_by`` order then by id, lazily."""
    columns = columns or _columns(conn, collection)
    if columns is None:
        return
    clauses: list[sql.Composable] = []
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
    order = [_order(sort) for sort in order_by if sort.field in columns]
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table_name(collection)))
    if clauses:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
    query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join([*order, sql.SQL("id ASC")])
    # Columns come and go with writes: never reuse a prepared plan of SELECT *.
    cursor = conn.execute(query, args, prepare=False)
    names = [column.name for column in cursor.description or ()]
    for row in cursor:
        record = _decode(names, row)
        if matches(record, where):
            yield record


def _order(sort: Sort) -> sql.Composable:
    """The ORDER BY keys of :func:`~._collections.sort_key`: kind, number, text."""
    direction = sql.SQL("DESC" if sort.descending else "ASC")
    if sort.field in SYSTEM_FIELDS:
        return sql.SQL("{} {}").format(sql.Identifier(sort.field), direction)
    return sql.SQL(
        "CASE jsonb_typeof({c}) WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 "
        "WHEN 'string' THEN 2 ELSE 0 END {d}, "
        "CASE jsonb_typeof({c}) WHEN 'number' THEN ({c})::numeric "
        "WHEN 'boolean' THEN CASE WHEN ({c})::boolean THEN 1 ELSE 0 END END {d}, "
        "CASE WHEN jsonb_typeof({c}) = 'string' THEN ({c} #>> '{{}}') END COLLATE \"C\" {d}"
    ).format(c=sql.Identifier(sort.field), d=direction)


def _narrowing(condition: Filter) -> tuple[sql.Composable, list[Any]] | None:
    """A SQL clause keeping at least every row ``condition`` keeps, or None (keep all).

    Python's operators take ``"5"`` as equal to ``5``: a clause on a number also keeps
    every string, and one on a string also keeps every number.
    """
    column_name, operand = condition.field, condition.operand
    column, operator = sql.Identifier(column_name), condition.operator
    if condition.field in SYSTEM_FIELDS:
        return None
    if operator == "exists":
        return (sql.SQL("{} IS NOT NULL" if operand else "{} IS NULL").format(column), [])
    if operator == "equal":
        return _equal(column_name, operand)
    if operator == "in" and isinstance(operand, list):
        parts = [_equal(column_name, item) for item in operand]
        if not parts:
            return (sql.SQL("false"), [])
        if any(part is None for part in parts):
            return None
        return (
            sql.SQL("(") + sql.SQL(" OR ").join(p[0] for p in parts if p) + sql.SQL(")"),
            [arg for part in parts if part for arg in part[1]],
        )
    if operator in _COMPARISONS:
        number = _number(operand)
        if number is None:
            return None
        return _numeric(column, _COMPARISONS[operator], number)
    if operator == "starts_with":
        if not isinstance(operand, str):
            return (sql.SQL("false"), [])
        clause = "(jsonb_typeof({c}) = 'string' AND starts_with({c} #>> '{{}}', %s))"
        return (sql.SQL(clause).format(c=column), [_escape(operand)])
    return None


def _equal(column_name: str, operand: Any) -> tuple[sql.Composable, list[Any]] | None:
    column = sql.Identifier(column_name)
    if operand is None:
        return (sql.SQL("{} IS NULL").format(column), [])
    if isinstance(operand, bool):
        literal = "'true'::jsonb" if operand else "'false'::jsonb"
        return (sql.SQL("{} = " + literal).format(column), [])
    number = _number(operand)
    if number is not None:
        return _numeric(column, "=", number)
    if isinstance(operand, str):
        clause = (
            "CASE jsonb_typeof({c}) WHEN 'string' THEN ({c} #>> '{{}}') = %s "
            "WHEN 'number' THEN true ELSE false END"
        )
        return (sql.SQL(clause).format(c=column), [_escape(operand)])
    return None


def _numeric(
    column: sql.Identifier, sign: str, number: int | Decimal
) -> tuple[sql.Composable, list[Any]]:
    clause = (
        "CASE jsonb_typeof({c}) WHEN 'number' THEN ({c})::numeric " + sign + " %s "
        "WHEN 'string' THEN true ELSE false END"
    )
    return (sql.SQL(clause).format(c=column), [number])


def _number(value: object) -> int | Decimal | None:
    """``value`` as an exact number (a float as its exact decimal), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Decimal(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return None


def query_records(
    conn: Connection,
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


def list_records(conn: Connection, collection: str, limit: int, cursor: str | None) -> list[Record]:
    """Up to ``limit`` records newest first, after the record ``cursor``."""
    if _columns(conn, collection) is None:
        return []
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table_name(collection)))
    args: list[Any] = []
    if cursor is not None:
        query += sql.SQL(" WHERE id < %s")
        args.append(cursor)
    rows = conn.execute(
        query + sql.SQL(" ORDER BY id DESC LIMIT %s"), [*args, limit], prepare=False
    )
    names = [column.name for column in rows.description or ()]
    return [_decode(names, row) for row in rows]


# -- writes ----------------------------------------------------------------------------


def apply_action(conn: Connection, action: CollectionAction) -> JSON:
    """Apply ``action`` on the write connection, inside the caller's transaction.

    Raises StoreError for a field clashing in case with another; psycopg errors pass.
    """
    collection = action.collection
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, collection))
    columns = _columns(conn, collection)
    if isinstance(action, CreateRecord):
        record = new_record(action.id, action.at, action.values)
        _write(conn, collection, columns, [record], insert=True)
        return record
    if isinstance(action, UpsertRecord):
        found = next(_select(conn, collection, action.where, columns=columns), None)
        if found is None:
            record = new_record(action.id, action.at, action.values)
            _write(conn, collection, columns, [record], insert=True)
            return record
        changed = changed_record(found, action.values, action.at)
        _write(conn, collection, columns, [changed], cleared=_cleared(action.values, columns))
        return changed
    if isinstance(action, UpdateRecords):
        targets = list(_select(conn, collection, action.where, columns=columns))
        if action.single:
            targets = targets[:1]
        updated = [changed_record(record, action.values, action.at) for record in targets]
        _write(conn, collection, columns, updated, cleared=_cleared(action.values, columns))
        if action.single:
            return updated[0] if updated else None
        return len(updated)
    if isinstance(action, DeleteRecords):
        ids = [record["id"] for record in _select(conn, collection, action.where, columns=columns)]
        if ids:
            table = sql.Identifier(table_name(collection))
            conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(table), (ids,))
        return len(ids)
    raise StoreError(f"unknown collection action {type(action).__name__}")


def _cleared(values: Mapping[str, Any], columns: list[str] | None) -> list[str]:
    """The fields set to null that have a column: it becomes NULL."""
    return [name for name, value in values.items() if value is None and name in (columns or ())]


def _write(
    conn: Connection,
    collection: str,
    columns: list[str] | None,
    records: list[Record],
    *,
    insert: bool = False,
    cleared: Sequence[str] = (),
) -> None:
    """Insert (or update by id) ``records``, adding the columns they bring first."""
    if not records:
        return
    table = sql.Identifier(table_name(collection))
    if columns is None:
        conn.execute(
            sql.SQL(
                'CREATE TABLE {} (id text COLLATE "C" PRIMARY KEY, '
                "created_at double precision NOT NULL, updated_at double precision NOT NULL, "
                "_types text)"
            ).format(table)
        )
        conn.execute(
            "INSERT INTO collections (name, table_name, created_at) VALUES (%s, %s, %s)",
            (collection, table_name(collection), time.time()),
        )
        columns = ["id", "created_at", "updated_at", "_types"]
    known = {name.lower(): name for name in columns}
    for record in records:
        for name in claim_fields(known, record, collection):
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} jsonb").format(
                    table, sql.Identifier(name)
                )
            )
    for record in records:
        names, values = _encode(record)
        if insert:
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table,
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(sql.Placeholder() * len(names)),
            )
            conn.execute(query, values, prepare=False)
            continue
        nulls = [name for name in cleared if name not in record]
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in [*names, *nulls]
        )
        query = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(table, assignments)
        conn.execute(query, [*values, *(None for _ in nulls), record["id"]], prepare=False)


def _encode(record: Record) -> tuple[list[str], list[Any]]:
    names: list[str] = ["_types"]
    values: list[Any] = [None]
    types: dict[str, str] = {}
    for name, value in record.items():
        stored: Any = value
        if name in SYSTEM_FIELDS:
            pass
        elif isinstance(value, dict | list):
            types[name] = "json"
            stored = Jsonb(encode_json(value))
        elif isinstance(value, str) and _escape(value) != value:
            types[name] = "text"
            stored = Jsonb(_escape(value))
        elif isinstance(value, float):
            if value.is_integer():
                types[name] = "float"  # its exact decimal has no fraction: an integer
            stored = Jsonb(value, dumps=_exact)
        else:
            stored = Jsonb(value)
        names.append(name)
        values.append(stored)
    values[0] = json.dumps(types) if types else None
    return names, values


def _exact(value: float) -> str:
    """The exact decimal value of ``value``, as a JSON number."""
    return format(Decimal(value), "f")


# Each of U+0000 and U+0001 becomes U+0001 and one more character that keeps their order:
# the code is prefix-free and keeps the order of code points, so escaped text sorts,
# compares and starts with escaped text exactly as the text itself does.
_ESCAPES = {"\x00": "\x01\x01", "\x01": "\x01\x02"}
_UNESCAPES = {"\x01": "\x00", "\x02": "\x01"}


def _escape(text: str) -> str:
    """``text`` with no NUL character, in the same order among other escaped text."""
    if "\x00" not in text and "\x01" not in text:
        return text
    return re.sub("[\x00\x01]", lambda m: _ESCAPES[m[0]], text)


def _unescape(text: str) -> str:
    return re.sub("\x01([\x01\x02])", lambda m: _UNESCAPES[m[1]], text)
