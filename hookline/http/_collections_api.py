"""Admin routes for collection records: ``GET /api/collections`` (the names) and
``GET /api/collections/<name>/records?limit=&cursor=`` (a page, newest first).

A collection that was never written has no records (an empty page, not 404); a name
that cannot be a collection's is answered 400.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ..engine._engine import Engine
from ..store._collections import Record
from ..store._records import Page
from ._executions import current_engine
from ._list_query import BadQuery, page_args
from ._responses import json_response, problem_response

__all__ = ["collections_api", "list_records"]

collections_api = Blueprint("collections_api", __name__)


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
