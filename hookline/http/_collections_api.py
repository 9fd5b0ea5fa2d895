"""Admin routes for collection records.

Reading: ``GET /api/collections`` (the names) and
``GET /api/collections/<name>/records?limit=&cursor=`` (a page, newest first).

Writing: ``POST .../records`` (a JSON object) creates a record, ``PATCH
.../records/<id>`` sets fields (null removes one), ``DELETE .../records/<id>`` deletes
it; ``POST .../import?format=jsonl|csv`` adds one record per line (or row) and ``GET
.../export?format=jsonl|csv`` gives every record. Each write is saved as node writes are,
with a job record (execution ``admin-<id>``, node ``admin``, type
``collection.create|update|delete|import``, started and finished when it happened, its
log naming who: the admin key's fingerprint, or the loopback client), in the same
transaction as the write; answers carry it as ``written``.

A collection that was never written has no records (an empty page, not 404); a name
that cannot be a collection's, or a value that cannot be stored, is answered 400.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from quart import Blueprint, Response, request

from ..engine._engine import Engine
from ..errors import NodeError
from ..store._collection_service import CollectionService, admin_job
from ..store._collections import Filter, Record
from ..store._records import JobRecord, Page
from ._executions import current_engine
from ._list_query import BadQuery, page_args
from ._responses import json_response, problem_response

__all__ = ["collections_api", "list_records", "records_csv", "rows_from_csv"]

collections_api = Blueprint("collections_api", __name__)

#: The largest body an import takes, and the most lines (rows) in one.
MAX_IMPORT = 10 * 1024 * 1024
MAX_IMPORT_LINES = 100_000
SYSTEM_FIELDS = ("id", "created_at", "updated_at")
FORMATS = ("jsonl", "csv")


async def list_records(
    engine: Engine, collection: str, *, limit: int, cursor: str | None
) -> Page[Record]:
    """A page of ``collection`` through the engine's collection service (the store's
    own read when no service is set). Raises ValueError for a bad collection name."""
    service: Any = engine.services.collections
    if service is not None:
        page: Page[Record] = await service.list_records(collection, limit=limit, cursor=cursor)
        return page
    return await engine.store.list_records(collection, limit=limit, cursor=cursor)


def _service(engine: Engine) -> CollectionService:
    service = engine.services.collections
    return service if isinstance(service, CollectionService) else CollectionService(engine.store)


def _who() -> str:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip().encode()
        return f"admin key sha256:{hashlib.sha256(token).hexdigest()[:12]}"
    return f"loopback client {request.remote_addr or '?'}"


def _written(job: JobRecord) -> dict[str, Any]:
    return {"execution_id": job.execution_id, "by": job.log[0][3:], "at": job.started_at}


async def _object_body() -> dict[str, Any] | None:
    body = await request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def _format() -> str:
    found = request.args.get("format", "jsonl")
    if found not in FORMATS:
        raise ValueError(f"format must be jsonl or csv, got {found!r}")
    return found


@collections_api.get("/api/collections")
async def list_collections() -> Response:
    names = await current_engine().store.list_collections()
    return json_response({"collections": names})


@collections_api.get("/api/collections/<name>/records")
async def collection_records(name: str) -> Response:
    try:
        limit, cursor, _since = page_args()
        page = await list_records(current_engine(), name, limit=limit, cursor=cursor)
    except BadQuery as exc:
        return problem_response(400, "Bad query", str(exc))
    except ValueError as exc:
        return problem_response(400, "Bad collection", str(exc))
    return json_response({"records": list(page.items), "cursor": page.cursor})


@collections_api.post("/api/collections/<name>/records")
async def create_record(name: str) -> Response:
    values = await _object_body()
    if values is None:
        return problem_response(400, "Bad record", "send the record's fields as a JSON object")
    engine = current_engine()
    job = admin_job("create", _who(), engine.clock())
    try:
        record = await _service(engine).create(name, _without_system(values), job=job)
    except NodeError as exc:
        return problem_response(400, "Bad record", str(exc))
    response = json_response({"record": record, "written": _written(job)}, 201)
    response.headers["location"] = f"/api/collections/{name}/records/{record['id']}"
    return response


@collections_api.patch("/api/collections/<name>/records/<record_id>")
async def update_record(name: str, record_id: str) -> Response:
    values = await _object_body()
    if values is None:
        return problem_response(400, "Bad record", "send the fields to set as a JSON object")
    engine = current_engine()
    job = admin_job("update", _who(), engine.clock())
    try:
        where = [Filter("id", "equal", record_id)]
        found = await _service(engine).update(
            name, where, _without_system(values), single=True, job=job
        )
    except NodeError as exc:
        return problem_response(400, "Bad record", str(exc))
    if not isinstance(found, Mapping):
        return problem_response(404, "Not found", f"collection {name} has no record {record_id}")
    return json_response({"record": found, "written": _written(job)})


@collections_api.delete("/api/collections/<name>/records/<record_id>")
async def delete_record(name: str, record_id: str) -> Response:
    engine = current_engine()
    job = admin_job("delete", _who(), engine.clock())
    try:
        count = await _service(engine).delete(name, [Filter("id", "equal", record_id)], job=job)
    except NodeError as exc:
        return problem_response(400, "Bad collection", str(exc))
    if not count:
        return problem_response(404, "Not found", f"collection {name} has no record {record_id}")
    return Response(b"", status=204)


@collections_api.post("/api/collections/<name>/import")
async def import_records(name: str) -> Response:
    try:
        kind = _format()
    except ValueError as exc:
        return problem_response(400, "Bad query", str(exc))
    raw = await request.get_data(cache=False)
    assert isinstance(raw, bytes)
    if len(raw) > MAX_IMPORT:
        return problem_response(413, "Payload too large", "an import is at most 10 MiB")
    try:
        text = raw.decode("utf-8-sig")
        rows = list(rows_from_csv(text) if kind == "csv" else _rows_from_jsonl(text))
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        return problem_response(400, "Bad import", str(exc))
    if len(rows) > MAX_IMPORT_LINES:
        return problem_response(413, "Payload too large", "an import is at most 100,000 lines")
    engine = current_engine()
    service = _service(engine)
    who = _who()
    first = admin_job("import", who, engine.clock())
    # One made-up execution for the whole import; each line is a job of its own, so
    # each is written once however often it is retried.
    for number, values in enumerate(rows, start=1):
        job = admin_job(
            "import", who, engine.clock(), execution_id=first.execution_id, scope=f"line[{number}]"
        )
        try:
            await service.create(name, _without_system(values), job=job)
        except NodeError as exc:
            return problem_response(
                400,
                "Bad import",
                f"line {number}: {exc}; lines before it were imported",
                line=number,
                imported=number - 1,
            )
    return json_response({"imported": len(rows), "written": _written(first)})


@collections_api.get("/api/collections/<name>/export")
async def export_records(name: str) -> Response:
    try:
        kind = _format()
        records = [record async for record in _every_record(current_engine(), name)]
    except ValueError as exc:
        return problem_response(400, "Bad export", str(exc))
    if kind == "csv":
        body, mimetype = records_csv(records), "text/csv"
    else:
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        mimetype = "application/jsonl"
    response = Response(body.encode(), mimetype=mimetype)
    response.headers["content-disposition"] = f'attachment; filename="{name}.{kind}"'
    return response


async def _every_record(engine: Engine, name: str) -> AsyncIterator[Record]:
    cursor: str | None = None
    while True:
        page = await list_records(engine, name, limit=500, cursor=cursor)
        for record in page.items:
            yield record
        cursor = page.cursor
        if cursor is None:
            return


def _without_system(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in SYSTEM_FIELDS}


def _rows_from_jsonl(text: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ValueError(f"line {number}: expected a JSON object")
        yield value


def rows_from_csv(text: str) -> Iterator[dict[str, Any]]:
    """Records from CSV with a header row. A cell that reads as a JSON number, true,
    false, an array or an object becomes that value; an empty cell leaves the field
    out; anything else is text."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    for number, row in enumerate(reader, start=2):
        if len(row) > len(header):
            raise ValueError(f"line {number}: more cells than the header has names")
        yield {name: _cell(cell) for name, cell in zip(header, row, strict=False) if cell != ""}


def _cell(cell: str) -> Any:
    if cell[:1] in "-0123456789[{tf":
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    return cell


def records_csv(records: list[Record]) -> str:
    """Records as CSV: the system fields, then every other field in the order first
    seen; a value that is not text is written as JSON."""
    names = list(SYSTEM_FIELDS)
    for record in records:
        names.extend(k for k in record if k not in names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow(["" if name not in record else _text(record[name]) for name in names])
    return out.getvalue()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
