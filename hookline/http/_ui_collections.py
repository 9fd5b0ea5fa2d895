"""The web UI's collection pages: ``/ui/collections`` lists every collection with its
record count, ``/ui/collections/<name>`` shows its records as a table with filters,
a sort and pages.

A filter is a field, a ``where`` operator and a value, written in the query string as
repeated ``field``, ``op`` and ``value`` parameters (all must hold); ``sort`` is a field,
``-field`` for descending (default ``-id``: newest first). Pages are ``offset`` and
``limit``. Records are read by the collection service's ``query``, the path of the
``query`` node: this module writes no SQL. The value is read as the operator needs it
(see :func:`parse_filter`); a filter that cannot be one is shown on the page with 400.

Access is every UI page's (the app's guard on ``/ui/``); values are the webhooks'
and reach the page only through the autoescaping templates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from quart import Blueprint, Response, render_template, request

from ..definition import OPERATORS, UNARY_FUNCTIONS, compile_regex
from ..engine._engine import Engine
from ..errors import NodeError
from ..store._collection_service import CollectionService
from ..store._collections import SYSTEM_FIELDS, Filter, Record, Sort, check_collection
from ._executions import current_engine
from ._ui import error_page

__all__ = [
    "COUNT_CAP",
    "MAX_OFFSET",
    "OPERATOR_NAMES",
    "BadFilter",
    "Listing",
    "columns_of",
    "parse_filter",
    "parse_listing",
    "ui_collections",
]

ui_collections = Blueprint("ui_collections", __name__)

OPERATOR_NAMES: tuple[str, ...] = (*OPERATORS, *UNARY_FUNCTIONS)
#: Counts on the list page stop here ("10000+"): the store has no count, so counting
#: reads records, and a page view must not read a whole big collection.
COUNT_CAP = 10_000
#: Pages go this deep at most: each page reads the records before it.
MAX_OFFSET = 10_000
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_ORDERED = ("gt", "gte", "lt", "lte")
_TEXT = ("starts_with", "ends_with")


class BadFilter(ValueError):
    """A filter, sort or page that cannot be one; the message says what was expected."""


@attrs.frozen
class Listing:
    """What a collection page asks for: filters, sort and page."""

    where: tuple[Filter, ...] = ()
    sort: Sort = attrs.field(factory=lambda: Sort("id", descending=True))
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def _json_or_text(text: str) -> Any:
    """A JSON number, true, false, array or object as that value; anything else as text
    (as a CSV import reads cells)."""
    if text[:1] in "-0123456789[{tf":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_filter(field: str, operator: str, value: str) -> Filter:
    """One filter from a form's field, operator and value text.

    The value is read as the operator needs it: ``exists`` and ``empty`` take
    ``true`` or ``false`` (empty: true); ``gt``, ``gte``, ``lt`` and ``lte`` a number;
    ``in`` a JSON array or comma-separated values; ``matches`` a regular expression RE2
    accepts; ``starts_with`` and ``ends_with`` text; the rest a JSON value or text.
    Raises BadFilter.
    """
    where = f"filter on {field!r}"
    if operator not in OPERATOR_NAMES:
        raise BadFilter(
            f"{where}: an operator, one of {', '.join(OPERATOR_NAMES)}, got {operator!r}"
        )
    operand: Any
    if operator in UNARY_FUNCTIONS:
        choices = {"": True, "true": True, "false": False}
        if value.strip().lower() not in choices:
            raise BadFilter(f"{where}: {operator} takes true or false, got {value!r}")
        operand = choices[value.strip().lower()]
    elif operator in _ORDERED:
        operand = _json_or_text(value.strip())
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise BadFilter(f"{where}: {operator} takes a number, got {value!r}")
    elif operator == "in":
        operand = _json_or_text(value.strip())
        if not isinstance(operand, list):
            operand = [_json_or_text(item.strip()) for item in value.split(",")]
    elif operator == "matches":
        try:
            operand = compile_regex(value)
        except ValueError as exc:
            raise BadFilter(f"{where}: a regular expression RE2 accepts ({exc})") from None
    elif operator in _TEXT:
        operand = value
    else:
        operand = _json_or_text(value)
    try:
        return Filter(field, operator, operand)
    except ValueError as exc:
        raise BadFilter(f"{where}: expected {exc}") from None


def _number(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = args.get(name, "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise BadFilter(f"{name}: a whole number from {low} to {high}, got {text!r}") from None
    if not low <= number <= high:
        raise BadFilter(f"{name}: a whole number from {low} to {high}, got {number}")
    return number


def parse_listing(
    fields: Sequence[str], operators: Sequence[str], values: Sequence[str], args: Mapping[str, str]
) -> Listing:
    """The listing a query string asks for: the i-th ``field``, ``op`` and ``value``
    make one filter (a row with no field is skipped), ``sort``, ``offset``, ``limit``.
    Raises BadFilter."""
    where = []
    for index, field in enumerate(fields):
        if not field.strip():
            continue
        operator = operators[index] if index < len(operators) else "equal"
        value = values[index] if index < len(values) else ""
        where.append(parse_filter(field.strip(), operator or "equal", value))
    sort_text = args.get("sort", "").strip() or "-id"
    try:
        sort = Sort.parse(sort_text)
    except ValueError:
        raise BadFilter(f"sort: a field name, or -name for descending, got {sort_text!r}") from None
    offset = _number(args, "offset", 0, 0, MAX_OFFSET)
    limit = _number(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return Listing(tuple(where), sort, offset, limit)


def columns_of(records: Sequence[Record]) -> list[str]:
    """The table's columns: ``id``, every other field in the order first seen, then
    ``created_at`` and ``updated_at``."""
    names: dict[str, None] = {"id": None}
    for record in records:
        names.update((name, None) for name in record if name not in SYSTEM_FIELDS)
    return [*names, "created_at", "updated_at"]


def _service(engine: Engine) -> CollectionService:
    service = engine.services.collections
    return service if isinstance(service, CollectionService) else CollectionService(engine.store)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@ui_collections.get("/ui/collections")
async def collections_page() -> str:
    engine = current_engine()
    service = _service(engine)
    rows = []
    for name in await engine.store.list_collections():
        found = await service.query(name, limit=COUNT_CAP + 1)
        rows.append(
            {"name": name, "count": min(len(found), COUNT_CAP), "more": len(found) > COUNT_CAP}
        )
    return await render_template("collections.html", rows=rows, cap=COUNT_CAP)


@ui_collections.get("/ui/collections/<name>")
async def collection_page(name: str) -> str | Response:
    try:
        check_collection(name)
    except ValueError:
        return await error_page(404, "Not found", f"there is no collection {name!r}")
    args = request.args
    fields, operators = args.getlist("field"), args.getlist("op")
    values = args.getlist("value")
    filters = [
        {
            "field": field,
            "op": operators[i] if i < len(operators) else "equal",
            "value": values[i] if i < len(values) else "",
        }
        for i, field in enumerate(fields)
        if field.strip()
    ]
    page: dict[str, Any] = {
        "name": name,
        "filters": filters,
        "operators": OPERATOR_NAMES,
        "sort": args.get("sort", "").strip() or "-id",
        "error": None,
        "records": [],
        "columns": columns_of([]),
        "known": list(SYSTEM_FIELDS),
        "offset": 0,
        "limit": args.get("limit", "").strip() or DEFAULT_LIMIT,
        "more": False,
    }
    try:
        listing = parse_listing(fields, operators, values, args)
        found = await _service(current_engine()).query(
            name,
            listing.where,
            order_by=[listing.sort],
            limit=listing.offset + listing.limit + 1,
        )
    except (BadFilter, NodeError) as exc:
        page["error"] = str(exc)
        body = await render_template("collection.html", **page, cell=_cell, base=_base(filters))
        return Response(body, 400, content_type="text/html; charset=utf-8")
    records = found[listing.offset : listing.offset + listing.limit]
    columns = columns_of(records)
    page.update(
        records=records,
        columns=columns,
        known=columns,
        offset=listing.offset,
        limit=listing.limit,
        more=len(found) > listing.offset + listing.limit,
        sort=("-" if listing.sort.descending else "") + listing.sort.field,
    )
    return await render_template("collection.html", **page, cell=_cell, base=_base(filters))


def _base(filters: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The query parameters that keep a page's filters, for its sort and page links."""
    keep: list[tuple[str, str]] = []
    for row in filters:
        keep += [("field", row["field"]), ("op", row["op"]), ("value", row["value"])]
    return keep
