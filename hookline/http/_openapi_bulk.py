"""The OpenAPI entries of the bulk actions (:mod:`._bulk_api`)."""

from __future__ import annotations

import copy
from typing import Any

from ._list_query import EXECUTION_STATUSES
from ._openapi_parts import ADMIN, json_content, nullable, object_schema, path_parameter, problems

__all__ = ["with_bulk"]

_TIME = {
    "oneOf": [{"type": "number"}, {"type": "string"}],
    "description": "ISO 8601 or seconds since the epoch",
}
_FILTER = {
    "workflow": nullable({"type": "string"}),
    "status": nullable({"type": "string", "enum": list(EXECUTION_STATUSES)}),
    "since": nullable(_TIME),
    "until": nullable(_TIME),
    "error": nullable({"type": "string", "description": "text the error contains (any case)"}),
}
_PROGRESS = object_schema(
    {
        "id": {"type": "string"},
        "action": {"type": "string", "enum": ["replay", "retry"]},
        "filter": object_schema(_FILTER),
        "state": {"type": "string", "enum": ["running", "finished", "cancelled"]},
        "total": {"type": "integer"},
        "done": {"type": "integer"},
        "failed": {"type": "integer"},
        "created_at": {"type": "number"},
        "finished_at": nullable({"type": "number"}),
        "started": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    required=("id", "action", "state", "total", "done", "failed"),
)


def with_bulk(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with the bulk replay and retry routes added."""
    paths = copy.copy(paths)
    run = path_parameter("id", "The bulk run's id")
    paths["/api/bulk"] = {
        "get": {
            "summary": "This server's recent bulk runs, newest first",
            "responses": {
                "200": json_content(
                    "The runs",
                    object_schema(
                        {"runs": {"type": "array", "items": _PROGRESS}}, required=("runs",)
                    ),
                ),
                **problems(*ADMIN),
            },
        },
        "post": {
            "summary": "Replay or retry every execution matching a filter (paced; dry_run counts)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": object_schema(
                            {
                                "action": {"type": "string", "enum": ["replay", "retry"]},
                                **_FILTER,
                                "dry_run": {"type": "boolean"},
                            },
                            required=("action",),
                        )
                    }
                },
            },
            "responses": {
                "200": json_content(
                    "The dry run's count",
                    object_schema(
                        {
                            "action": {"type": "string"},
                            "matched": {"type": "integer"},
                            "dry_run": {"type": "boolean"},
                        },
                        required=("action", "matched", "dry_run"),
                    ),
                ),
                "202": json_content("Started (see Location)", _PROGRESS),
                **problems(400, *ADMIN, 422),
            },
        },
    }
    paths["/api/bulk/{id}"] = {
        "parameters": [run],
        "get": {
            "summary": "A bulk run's progress",
            "responses": {"200": json_content("Its progress", _PROGRESS), **problems(*ADMIN, 404)},
        },
    }
    paths["/api/bulk/{id}/cancel"] = {
        "parameters": [run],
        "post": {
            "summary": "Stop a bulk run before its next execution",
            "responses": {
                "200": json_content("Its progress", _PROGRESS),
                **problems(*ADMIN, 404),
            },
        },
    }
    return paths
