"""The OpenAPI entries of the collection writes (:mod:`._collections_api`)."""

from __future__ import annotations

import copy
from typing import Any

from ..store._collections import COLLECTION_PATTERN
from ._openapi_parts import ADMIN, json_content, object_schema, path_parameter, problems

__all__ = ["with_collection_writes"]

_WRITTEN = object_schema(
    {
        "execution_id": {"type": "string", "description": "the job record's execution id"},
        "by": {"type": "string", "description": "the admin key's fingerprint or the client"},
        "at": {"type": "number", "description": "Unix seconds"},
    },
    required=("execution_id", "by", "at"),
)
_RECORD_WRITTEN = object_schema(
    {"record": {"type": "object"}, "written": _WRITTEN}, required=("record", "written")
)
_FORMAT = {
    "name": "format",
    "in": "query",
    "description": "jsonl (one JSON object a line, the default) or csv (a header row)",
    "schema": {"type": "string", "enum": ["jsonl", "csv"]},
}


def with_collection_writes(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with the record writes, import and export added."""
    paths = copy.copy(paths)
    name = path_parameter("name", "The collection", f"^{COLLECTION_PATTERN}$")
    record_id = path_parameter("id", "The record's id")
    fields = {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    records = dict(paths.get("/api/collections/{name}/records", {"parameters": [name]}))
    records["post"] = {
        "summary": "Create a record (system fields id, created_at, updated_at are ignored)",
        "requestBody": fields,
        "responses": {
            "201": json_content("Created (see Location)", _RECORD_WRITTEN),
            **problems(400, *ADMIN),
        },
    }
    paths["/api/collections/{name}/records"] = records
    paths["/api/collections/{name}/records/{id}"] = {
        "parameters": [name, record_id],
        "patch": {
            "summary": "Set fields of a record (null removes one)",
            "requestBody": fields,
            "responses": {
                "200": json_content("Updated", _RECORD_WRITTEN),
                **problems(400, *ADMIN, 404),
            },
        },
        "delete": {
            "summary": "Delete a record",
            "responses": {"204": {"description": "Deleted"}, **problems(400, *ADMIN, 404)},
        },
    }
    paths["/api/collections/{name}/import"] = {
        "parameters": [name],
        "post": {
            "summary": "Add one record per JSON line or CSV row (at most 10 MiB, 100,000 lines)",
            "parameters": [_FORMAT],
            "requestBody": {
                "required": True,
                "content": {
                    "application/jsonl": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": json_content(
                    "Imported",
                    object_schema(
                        {"imported": {"type": "integer"}, "written": _WRITTEN},
                        required=("imported", "written"),
                    ),
                ),
                **problems(400, *ADMIN, 413),
            },
        },
    }
    paths["/api/collections/{name}/export"] = {
        "parameters": [name],
        "get": {
            "summary": "Every record, as JSON lines or CSV",
            "parameters": [_FORMAT],
            "responses": {
                "200": {
                    "description": "The records",
                    "content": {
                        "application/jsonl": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **problems(400, *ADMIN),
            },
        },
    }
    return paths
