"""Collections: schemaless records kept in the store, and what both backends share.

A collection holds records: ``id`` (a sortable id from :func:`hookline._ids.new_id`),
``created_at``, ``updated_at`` (seconds since the epoch) and any fields. Fields appear
as records bring them (in SQLite, a column each, added on first sight). A field set to
null is an absent field: records never carry null values.

Filters use the comparison operators of :mod:`hookline.definition._compare`; a record
matches when :meth:`Filter.test` holds for each. Both backends decide matches with that
same Python test (SQLite first narrows rows in SQL), and both sort in the order SQLite
gives stored values (:func:`sort_key`), so a query answers the same on either.

The write actions (:class:`CreateRecord` ...) carry everything they need, ids and times
included (made when the action is), so applying one twice (the SQLite batch retry)
gives the same records.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._ids import new_id
from ..definition import OPERATORS, UNARY_FUNCTIONS
from ..errors import StoreError

__all__ = [
    "COLLECTION_PATTERN",
    "FIELD_PATTERN",
    "SYSTEM_FIELDS",
    "CollectionAction",
    "CreateRecord",
    "DeleteRecords",
    "Filter",
    "Record",
    "Sort",
    "UpdateRecords",
    "UpsertRecord",
    "check_collection",
    "check_field",
    "check_values",
    "claim_fields",
    "encode_json",
    "matches",
    "sort_key",
    "sort_records",
]

COLLECTION_PATTERN = r"[a-z][a-z0-9_]{0,62}"
FIELD_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
SYSTEM_FIELDS = ("id", "created_at", "updated_at")
# ``_types`` is the SQLite column recording which fields hold JSON or booleans.
_RESERVED = frozenset({*SYSTEM_FIELDS, "_types"})
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1

Record = dict[str, Any]
"""A record as nodes and the admin API see it: system fields, then its fields."""


def check_collection(name: object) -> str:
    """``name`` if it is a collection name (``[a-z][a-z0-9_]*``, up to 63 characters).

    Raises ValueError otherwise.
    """
    if not isinstance(name, str) or re.fullmatch(COLLECTION_PATTERN, name) is None:
        raise ValueError(f"a collection name matching {COLLECTION_PATTERN}, got {name!r}")
    return name


def check_field(name: object, *, writable: bool = False) -> str:
    """``name`` if it is a field name (``[A-Za-z_][A-Za-z0-9_]*``); with ``writable``,
    also not one the store sets itself (``id``, ``created_at``, ``updated_at``).

    Raises ValueError otherwise.
    """
    if not isinstance(name, str) or re.fullmatch(FIELD_PATTERN, name) is None:
        raise ValueError(f"a field name matching {FIELD_PATTERN}, got {name!r}")
    if name.lower() in _RESERVED and (writable or name not in SYSTEM_FIELDS):
        raise ValueError(f"a field name other than {', '.join(sorted(_RESERVED))}, got {name!r}")
    return name


def check_values(values: object) -> dict[str, Any]:
    """A checked copy of ``values``, a mapping of writable field names to JSON values.

    Tuples become lists. Raises ValueError for anything else: a name that is not a field
    name, a non-finite number, an integer beyond 64 bits, a value of another type.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"an object of field values, got {values!r}")
    return {
        check_field(name, writable=True): _json_value(value, name) for name, value in values.items()
    }


def _json_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"{where}: an integer within 64 bits, got {value}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: a finite number, got {value}")
        return value
    if isinstance(value, Mapping):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: an object with string keys, got key {key!r}")
            copy[key] = _json_value(item, f"{where}.{key}")
        return copy
    if isinstance(value, list | tuple):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"{where}: a JSON value, got {type(value).__name__} {value!r}")


def encode_json(value: Any) -> str:
    """The JSON text an object or list field is stored as (also its sort key)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def claim_fields(known: dict[str, str], names: Iterable[str], collection: str) -> list[str]:
    """Add ``names`` to ``known`` (lower-cased name to name) and return the new ones.

    SQLite column names ignore case, so ``Name`` beside ``name`` would be one column:
    raises StoreError for such a clash, leaving ``known`` unchanged.
    """
    new: dict[str, str] = {}
    for name in names:
        seen = known.get(name.lower()) or new.get(name.lower())
        if seen is None:
            new[name.lower()] = name
        elif seen != name:
            raise StoreError(
                f"field {name!r} clashes with field {seen!r} of collection {collection!r} "
                "(field names are not case-sensitive)"
            )
    known.update(new)
    return list(new.values())


@attrs.frozen
class Filter:
    """One condition on a field: ``operator`` is a comparison operator's name.

    Binary operators compare the field's value (left) with ``operand``; the one-operand
    ``exists`` and ``empty`` take ``operand`` true or false (``{exists: false}``: the
    field is absent). Raises ValueError for an unknown operator, a bad field name or a
    one-operand operator with an operand that is not true or false.
    """

    field: str = attrs.field(validator=lambda _, __, name: check_field(name))
    operator: str
    operand: Any

    def __attrs_post_init__(self) -> None:
        if self.operator in UNARY_FUNCTIONS:
            if not isinstance(self.operand, bool):
                raise ValueError(f"{self.operator}: true or false, got {self.operand!r}")
        elif self.operator not in OPERATORS:
            names = ", ".join((*OPERATORS, *UNARY_FUNCTIONS))
            raise ValueError(f"an operator, one of {names}, got {self.operator!r}")

    def test(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies this condition (an absent field is null)."""
        value = record.get(self.field)
        if self.operator in UNARY_FUNCTIONS:
            return UNARY_FUNCTIONS[self.operator](value) is self.operand
        return OPERATORS[self.operator](value, self.operand)


def matches(record: Mapping[str, Any], where: Iterable[Filter]) -> bool:
    """Whether ``record`` satisfies every filter of ``where``."""
    return all(condition.test(record) for condition in where)


@attrs.frozen
class Sort:
    """Order by ``field``, ascending unless ``descending``."""

    field: str = attrs.field(validator=lambda _, __, name: check_field(name))
    descending: bool = False

    @classmethod
    def parse(cls, text: object) -> Sort:
        """``"name"`` (ascending) or ``"-name"`` (descending). Raises ValueError."""
        if isinstance(text, str) and text.startswith("-"):
            return cls(text[1:], descending=True)
        return cls(check_field(text))


def sort_key(value: Any) -> tuple[int, Any]:
    """Where ``value`` sorts, as SQLite sorts its stored form: null first, then numbers
    (booleans as 0 and 1), then text (objects and lists as their JSON)."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (2, encode_json(value))


def sort_records(records: Iterable[Record], order_by: Sequence[Sort]) -> list[Record]:
    """``records`` in ``order_by`` order; ties (and no ``order_by``) by id."""
    ordered = sorted(records, key=lambda record: str(record["id"]))
    # Stable sorts from the last key to the first give the compound order; reverse=True
    # keeps ties in their previous order, as SQL's DESC with a trailing id does.
    for sort in reversed(order_by):
        ordered.sort(key=lambda record: sort_key(record.get(sort.field)), reverse=sort.descending)
    return ordered


# -- write actions ---------------------------------------------------------------------


def _valid_collection(instance: object, attribute: object, name: str) -> None:
    check_collection(name)


def _filters(where: Iterable[Filter]) -> tuple[Filter, ...]:
    return tuple(where)


def _names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(names)


# Each action checks its names and values when made (raising ValueError), so nothing
# unchecked ever reaches SQL.


@attrs.frozen
class CreateRecord:
    """Add a record with ``values`` (checked by :func:`check_values`). Result: the record."""

    collection: str = attrs.field(validator=_valid_collection)
    values: Mapping[str, Any] = attrs.field(converter=check_values)
    id: str = attrs.field(factory=new_id)
    at: float = attrs.field(factory=time.time)


@attrs.frozen
class UpdateRecords:
    """Set ``values`` on the records matching ``where`` (a null value removes a field).

    Result: how many records changed; with ``single``, only the first match (by id)
    changes and the result is that record, or None. A missing collection matches
    nothing.
    """

    collection: str = attrs.field(validator=_valid_collection)
    where: tuple[Filter, ...] = attrs.field(converter=_filters)
    values: Mapping[str, Any] = attrs.field(converter=check_values)
    single: bool = False
    at: float = attrs.field(factory=time.time)


@attrs.frozen
class DeleteRecords:
    """Delete the records matching ``where``. Result: how many were deleted."""

    collection: str = attrs.field(validator=_valid_collection)
    where: tuple[Filter, ...] = attrs.field(converter=_filters)


@attrs.frozen
class UpsertRecord:
    """Update the first record (by id) whose ``key`` fields equal those of ``values``, or
    create one if none does. Result: the record.

    Raises ValueError if a key field is missing from ``values`` or null.
    """

    collection: str = attrs.field(validator=_valid_collection)
    key: tuple[str, ...] = attrs.field(converter=_names)
    values: Mapping[str, Any] = attrs.field(converter=check_values)
    id: str = attrs.field(factory=new_id)
    at: float = attrs.field(factory=time.time)

    def __attrs_post_init__(self) -> None:
        missing = [name for name in self.key if self.values.get(name) is None]
        if not self.key or missing:
            raise ValueError(f"values for every key field, missing {', '.join(missing)}")

    @property
    def where(self) -> tuple[Filter, ...]:
        return tuple(Filter(name, "equal", self.values[name]) for name in self.key)


CollectionAction = CreateRecord | UpdateRecords | DeleteRecords | UpsertRecord


def new_record(id: str, at: float, values: Mapping[str, Any]) -> Record:
    """A fresh record: system fields, then the non-null ``values``."""
    record: Record = {"id": id, "created_at": at, "updated_at": at}
    record.update((name, value) for name, value in values.items() if value is not None)
    return record


def changed_record(record: Mapping[str, Any], values: Mapping[str, Any], at: float) -> Record:
    """``record`` with ``values`` set (null removes a field) and ``updated_at`` moved."""
    changed: Record = {**record, "updated_at": at}
    for name, value in values.items():
        if value is None:
            changed.pop(name, None)
        else:
            changed[name] = value
    return changed
