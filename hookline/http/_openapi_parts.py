"""The building blocks of the OpenAPI document: schemas, parameters and responses.

Small helpers so that each schema and route of :mod:`._openapi_schemas` and
:mod:`._openapi_paths` reads as one entry.
"""

from __future__ import annotations

from typing import Any

from ._list_query import MAX_LIMIT

__all__ = [
    "ADMIN",
    "PAGE_PARAMETERS",
    "PROBLEM",
    "Schema",
    "json_content",
    "nullable",
    "object_schema",
    "page_schema",
    "path_parameter",
    "problems",
    "query_parameter",
    "ref",
]

Schema = dict[str, Any]

PROBLEM = "application/problem+json"


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` that may also be null."""
    return {**schema, "nullable": True}


def object_schema(properties: dict[str, Schema], *, required: tuple[str, ...] = ()) -> Schema:
    """An object with ``properties``, of which ``required`` must be present."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def page_schema(item: str, name: str) -> Schema:
    """One page of a list: ``name`` holds the ``item`` components, ``cursor`` the next."""
    return object_schema(
        {name: {"type": "array", "items": ref(item)}, "cursor": nullable({"type": "string"})},
        required=(name, "cursor"),
    )


def json_content(description: str, schema: Schema) -> dict[str, Any]:
    """A response or request body of JSON shaped by ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problems(*statuses: int) -> dict[str, Any]:
    """The problem+json responses for ``statuses``, each with its usual reason."""
    reasons = {
        400: "The query or body is invalid",
        401: "No admin key was sent",
        403: "The admin key is wrong, or the client is not on loopback (no keys set)",
        404: "Not found",
        405: "Method not allowed (see Allow)",
        409: "Conflict with the current state",
        413: "The body is too large",
        415: "Unsupported media type",
        422: "The definition or change does not validate",
        429: "The workflow's queue is full (see Retry-After)",
        500: "The execution failed (sync webhooks)",
        503: "Unavailable (see Retry-After)",
    }
    return {
        str(status): {
            "description": reasons[status],
            "content": {PROBLEM: {"schema": ref("Problem")}},
        }
        for status in statuses
    }


def query_parameter(name: str, description: str, schema: Schema | None = None) -> Schema:
    """An optional query parameter (a string unless ``schema`` says otherwise)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def path_parameter(name: str, description: str, pattern: str | None = None) -> Schema:
    """A path parameter, a string matching ``pattern`` when given."""
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


ADMIN = (401, 403)
"""What every admin route may answer: no key, or the wrong one."""
PAGE_PARAMETERS = [
    query_parameter("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    query_parameter("cursor", "The cursor of the previous page"),
    query_parameter("since", "Only items made at or after (ISO 8601 or epoch seconds)"),
    query_parameter("until", "Only items made at or before (ISO 8601 or epoch seconds)"),
]
