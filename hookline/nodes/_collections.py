"""The collection nodes: ``create``, ``update``, ``delete``, ``query`` and ``upsert``.

Each reads and writes records of one collection through ``job.services.collections``
(a :class:`~hookline.store._collection_service.CollectionService`). Writes commit in
the same transaction as the job's record, so each happens once.

``where`` maps field names to a value (equality) or to operators with their operand
(``{total: {gte: 100}, email: {exists: true}}``), every operator of ``condition``
allowed; values are templates rendered per job. ``values`` is a mapping of field
templates, or one template rendering to an object (``"{{$context.data}}"``).

``upsert`` names the fields that identify a record in ``key_fields`` (a name or a list):
DESIGN.md calls it ``key``, but that is every node's own key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..definition import (
    JSON,
    LITERAL_PATTERN,
    OPERATORS,
    UNARY_FUNCTIONS,
    Compiled,
    Fields,
    compile_regex,
    compile_value,
)
from ..errors import NodeError
from ..store._collection_service import CollectionService
from ..store._collections import COLLECTION_PATTERN, FIELD_PATTERN, Filter, Sort, check_field
from ..store._records import JobRecord
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

_OPERATOR_NAMES = ", ".join((*OPERATORS, *UNARY_FUNCTIONS))


@attrs.frozen
class Condition:
    """One ``where`` condition, its operand a template rendered per job."""

    field: str
    operator: str
    operand: Compiled

    def render(self, job: Job) -> Filter:
        try:
            return Filter(self.field, self.operator, job.render(self.operand))
        except ValueError as exc:
            raise NodeError(f"where.{self.field}: expected {exc}") from None


def _where(conditions: Sequence[Condition], job: Job) -> list[Filter]:
    return [condition.render(job) for condition in conditions]


def _values(values: Compiled, job: Job) -> Mapping[str, Any]:
    rendered = job.render(values)
    if not isinstance(rendered, Mapping):
        raise NodeError(f"values: expected an object of field values, got {rendered!r}")
    return rendered


def _service(job: Job) -> CollectionService:
    service = job.services.collections
    if not isinstance(service, CollectionService):
        raise NodeError("collections are not available: the engine has no store service")
    return service


def _job_record(job: Job) -> JobRecord:
    # The record the write commits with; the execution completes it (log, times) later.
    return JobRecord(
        execution_id=job.execution_id,
        node=job.node.key,
        type=job.node.type,
        status="succeeded",
        attempt=job.attempt,
        started_at=time.time(),
        scope=job.scope,
    )


@attrs.frozen
class CreateNode:
    """Add a record made of ``values``; the result is the record."""

    collection: str
    values: Compiled

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        values = _values(self.values, job)
        record = await _service(job).create(self.collection, values, job=_job_record(job))
        return NodeResult(output=record)


@attrs.frozen
class UpdateNode:
    """Set ``values`` on the records matching ``where``; the result is how many (with
    ``single``: the first match, updated, or null)."""

    collection: str
    where: tuple[Condition, ...]
    values: Compiled
    single: bool = False

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        where, values = _where(self.where, job), _values(self.values, job)
        result = await _service(job).update(
            self.collection, where, values, single=self.single, job=_job_record(job)
        )
        return NodeResult(output=result)


@attrs.frozen
class DeleteNode:
    """Delete the records matching ``where``; the result is how many."""

    collection: str
    where: tuple[Condition, ...]

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        where = _where(self.where, job)
        count = await _service(job).delete(self.collection, where, job=_job_record(job))
        return NodeResult(output=count)


@attrs.frozen
class QueryNode:
    """The records matching ``where``, in ``order_by`` order, at most ``limit``; with
    ``single``, the first one or null."""

    collection: str
    where: tuple[Condition, ...] = ()
    order_by: tuple[Sort, ...] = ()
    limit: int | None = None
    single: bool = False

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        limit = 1 if self.single else self.limit
        records = await _service(job).query(
            self.collection, _where(self.where, job), order_by=self.order_by, limit=limit
        )
        if self.single:
            return NodeResult(output=records[0] if records else None)
        rows: list[JSON] = list(records)
        return NodeResult(output=rows)


@attrs.frozen
class UpsertNode:
    """Update the record whose ``key`` fields (``key_fields:`` in a definition) equal
    those of ``values``, or create it; the result is the record."""

    collection: str
    key: tuple[str, ...]
    values: Compiled

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        values = _values(self.values, job)
        record = await _service(job).upsert(self.collection, self.key, values, job=_job_record(job))
        return NodeResult(output=record)


# -- parsing ---------------------------------------------------------------------------


def _collection(fields: Fields) -> str:
    return fields.string(
        "collection",
        pattern=COLLECTION_PATTERN,
        expected="a collection name such as 'customers' ([a-z][a-z0-9_]*, up to 63 characters)",
    )


def _field_name(fields: Fields, path: str, name: object, *, writable: bool = False) -> str:
    try:
        return check_field(name, writable=writable)
    except ValueError:
        reserved = ", other than id, created_at, updated_at and _types" if writable else ""
        fields.fail(path, f"a field name matching {FIELD_PATTERN}{reserved}", name)


def _parse_values(fields: Fields) -> tuple[Compiled, tuple[str, ...] | None]:
    """``values`` compiled, and its field names when written as a mapping."""
    raw = fields.value("values", expected="an object of field values")
    if isinstance(raw, Mapping):
        names = tuple(_field_name(fields, f"values.{name}", name, writable=True) for name in raw)
        return fields.compile("values", dict(raw)), names
    if not isinstance(raw, str):
        expected = "an object of field values, or a template such as '{{$context.data}}'"
        fields.fail("values", expected, raw)
    return fields.compile("values", raw), None


def _parse_where(fields: Fields, *, required: bool) -> tuple[Condition, ...]:
    if required and not fields.has("where"):
        fields.value("where", expected="conditions such as {id: 5} ({} for every record)")
    raw = fields.mapping("where", {})
    conditions: list[Condition] = []
    for name, spec in raw.items():
        path = f"where.{name}"
        field = _field_name(fields, path, name)
        if not isinstance(spec, Mapping):
            conditions.append(Condition(field, "equal", fields.compile(path, spec)))
            continue
        if not spec:
            fields.fail(path, f"a value, or operators such as {{gt: 5}} (one of {_OPERATOR_NAMES})")
        for operator, operand in spec.items():
            conditions.append(_condition(fields, f"{path}.{operator}", field, operator, operand))
    return tuple(conditions)


def _condition(
    fields: Fields, path: str, field: str, operator: object, operand: object
) -> Condition:
    if operator not in OPERATORS and operator not in UNARY_FUNCTIONS:
        fields.fail(path, f"an operator, one of {_OPERATOR_NAMES}", operator)
    compiled = fields.compile(path, operand)
    if operator in UNARY_FUNCTIONS and compiled.is_static and not isinstance(operand, bool):
        fields.fail(path, "true or false", operand)
    if operator == "matches":
        # A templated pattern would let a sender choose the regular expression.
        if not compiled.is_static:
            fields.fail(path, LITERAL_PATTERN, operand)
        if not isinstance(operand, str):
            fields.fail(path, "a regular expression (a string)", operand)
        try:
            compiled = compile_value(compile_regex(operand))
        except ValueError as exc:
            fields.fail(path, f"a regular expression RE2 accepts ({exc})", operand)
    return Condition(field, str(operator), compiled)


def _parse_order_by(fields: Fields) -> tuple[Sort, ...]:
    raw = fields.value("order_by", None)
    items = [raw] if isinstance(raw, str) else raw
    if items is None:
        return ()
    if not isinstance(items, list):
        fields.fail("order_by", "a field name, '-name' for descending, or a list of them", raw)
    sorts: list[Sort] = []
    for index, item in enumerate(items):
        path = "order_by" if isinstance(raw, str) else f"order_by[{index}]"
        try:
            sorts.append(Sort.parse(item))
        except ValueError:
            fields.fail(path, "a field name, or '-name' for descending", item)
    return tuple(sorts)


def _parse_key(fields: Fields, names: tuple[str, ...] | None) -> tuple[str, ...]:
    # DESIGN names this field `key`, but `key` is every node's own key.
    name = "key_fields"
    raw = fields.value(name, expected="a field name or a list of field names")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        fields.fail(name, "a field name or a non-empty list of field names", raw)
    key: list[str] = []
    for index, item in enumerate(items):
        path = name if isinstance(raw, str) else f"{name}[{index}]"
        key.append(_field_name(fields, path, item, writable=True))
        if names is not None and item not in names:
            fields.fail(path, f"a field given in values ({', '.join(names)})", item)
    return tuple(key)


@register("create")
def parse_create(fields: Fields, nodes: NodeListParser) -> CreateNode:
    return CreateNode(collection=_collection(fields), values=_parse_values(fields)[0])


@register("update")
def parse_update(fields: Fields, nodes: NodeListParser) -> UpdateNode:
    return UpdateNode(
        collection=_collection(fields),
        where=_parse_where(fields, required=True),
        values=_parse_values(fields)[0],
        single=fields.boolean("single", default=False),
    )


@register("delete")
def parse_delete(fields: Fields, nodes: NodeListParser) -> DeleteNode:
    # `where` is required: deleting every record takes an explicit `where: {}`.
    return DeleteNode(collection=_collection(fields), where=_parse_where(fields, required=True))


@register("query")
def parse_query(fields: Fields, nodes: NodeListParser) -> QueryNode:
    return QueryNode(
        collection=_collection(fields),
        where=_parse_where(fields, required=False),
        order_by=_parse_order_by(fields),
        limit=fields.integer("limit", None, low=1),
        single=fields.boolean("single", default=False),
    )


@register("upsert")
def parse_upsert(fields: Fields, nodes: NodeListParser) -> UpsertNode:
    collection = _collection(fields)
    values, names = _parse_values(fields)
    return UpsertNode(collection=collection, key=_parse_key(fields, names), values=values)
