"""``GET /api/openapi.json``: the OpenAPI 3.0 description of hookline's HTTP interface.

Built from small helpers so each route reads as one entry; the test suite validates the
document with openapi-spec-validator and fuzzes the live server with schemathesis
against it.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ..engine._definition import HTTP_METHODS
from ..store._collections import COLLECTION_PATTERN
from ._executions import EXECUTION_STATUSES, MAX_LIMIT, VERDICTS
from ._responses import json_response
from ._workflows_api import MAX_VERSION

__all__ = ["openapi", "openapi_document"]

openapi = Blueprint("openapi", __name__)

Schema = dict[str, Any]

PROBLEM = "application/problem+json"
JOB_STATUSES = ("running", "succeeded", "failed", "cancelled", "timed_out", "skipped")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _object(properties: dict[str, Schema], *, required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _page(item: str, name: str) -> Schema:
    return _object(
        {name: {"type": "array", "items": _ref(item)}, "cursor": _nullable({"type": "string"})},
        required=(name, "cursor"),
    )


def _json(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
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
            "content": {PROBLEM: {"schema": _ref("Problem")}},
        }
        for status in statuses
    }


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str, pattern: str | None = None) -> Schema:
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
PAGE_PARAMETERS = [
    _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    _query("cursor", "The cursor of the previous page"),
    _query("since", "Only items made at or after (ISO 8601 or epoch seconds)"),
    _query("until", "Only items made at or before (ISO 8601 or epoch seconds)"),
]


def _schemas() -> dict[str, Schema]:
    any_value: Schema = {}
    timestamp = {"type": "number", "description": "seconds since the epoch"}
    return {
        "Problem": _object(
            {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            required=("type", "title", "status", "detail"),
        ),
        "Job": _object(
            {
                "node": {"type": "string"},
                "type": {"type": "string"},
                "status": {"type": "string", "enum": list(JOB_STATUSES)},
                "attempt": {"type": "integer"},
                "started_at": timestamp,
                "finished_at": _nullable(timestamp),
                "output": any_value,
                "error": _nullable({"type": "string"}),
                "log": {"type": "array", "items": {"type": "string"}},
            },
            required=("node", "type", "status", "attempt", "started_at"),
        ),
        "Execution": _object(
            {
                "id": {"type": "string"},
                "workflow": {"type": "string"},
                "status": {"type": "string", "enum": list(EXECUTION_STATUSES)},
                "delivery_id": _nullable({"type": "string"}),
                "created_at": timestamp,
                "started_at": _nullable(timestamp),
                "finished_at": _nullable(timestamp),
                "context": {"type": "object"},
                "output": any_value,
                "error": _nullable({"type": "string"}),
                "workflow_version": _nullable(
                    {
                        "type": "integer",
                        "description": "the version of the workflow's definition it runs "
                        "with (see /api/workflows/{key}/versions); null: not recorded",
                    }
                ),
                "jobs": {"type": "array", "items": _ref("Job")},
                "tree": {
                    "type": "array",
                    "description": "the node tree, one row per node or branch label, "
                    "nested by depth, with each node's last job status",
                    "items": {"type": "object"},
                },
            },
            required=("id", "workflow", "status", "created_at"),
        ),
        "Delivery": _object(
            {
                "id": {"type": "string"},
                "workflow": _nullable({"type": "string"}),
                "received_at": timestamp,
                "method": {"type": "string"},
                "path": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "query": {"type": "object"},
                "body": {"type": "string"},
                "body_base64": {"type": "string"},
                "remote_addr": {"type": "string"},
                "verdict": {"type": "string", "enum": list(VERDICTS)},
                "reason": _nullable({"type": "string"}),
                "status": _nullable({"type": "integer"}),
                "execution_id": _nullable({"type": "string"}),
            },
            required=("id", "method", "path", "verdict"),
        ),
        "Workflow": _object(
            {
                "key": {"type": "string"},
                "title": {"type": "string"},
                "enabled": {"type": "boolean"},
                "source": {"type": "string"},
                "trigger": _object(
                    {
                        "path": {"type": "string"},
                        "methods": {"type": "array", "items": {"type": "string"}},
                        "mode": {"type": "string", "enum": ["async", "sync"]},
                    }
                ),
                "nodes": {"type": "integer"},
                "statistics": _nullable({"type": "object"}),
                "format": {"type": "string", "enum": ["yaml", "json"]},
                "definition": {"type": "string", "description": "the source text"},
            },
            required=("key", "enabled", "trigger"),
        ),
        "WorkflowVersion": _object(
            {
                "workflow": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "digest": {"type": "string", "description": "SHA-256 of the text, in hex"},
                "created_at": timestamp,
                "current": {
                    "type": "boolean",
                    "description": "the workflow's definition in force now",
                },
                "format": {"type": "string", "enum": ["yaml", "json"]},
                "definition": {"type": "string", "description": "the source text"},
            },
            required=("workflow", "version", "digest", "created_at", "current", "format"),
        ),
        "Accepted": _object(
            {"execution_id": {"type": "string"}, "status": {"type": "string"}},
            required=("execution_id", "status"),
        ),
    }


def _paths() -> dict[str, Any]:
    key = _path("key", "The workflow key", "^[a-z0-9][a-z0-9_-]*$")
    execution = _path("id", "The execution id")
    restart = {
        "202": _json("A new execution was queued (see Location)", _ref("Accepted")),
        **_problems(*ADMIN, 404, 409, 429, 503),
    }
    webhook = {
        "summary": "Deliver a webhook to the workflow listening on this path",
        "security": [],
        "parameters": [_path("path", "The workflow's trigger path")],
        "responses": {
            "200": {"description": "The sync workflow's answer"},
            "202": _json("Accepted (async), or still running past sync_timeout", _ref("Accepted")),
            **_problems(400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503),
        },
    }
    return {
        "/api/webhooks/{path}": {
            method.lower(): webhook for method in HTTP_METHODS if method != "HEAD"
        },
        "/api/workflows": {
            "get": {
                "summary": "List the workflows, with the files that did not load",
                "responses": {
                    "200": _json("The workflows", _page("Workflow", "workflows")),
                    **_problems(*ADMIN),
                },
            }
        },
        "/api/workflows/{key}": {
            "parameters": [key],
            "get": {
                "summary": "One workflow with its definition",
                "responses": {
                    "200": _json("The workflow", _ref("Workflow")),
                    **_problems(*ADMIN, 404),
                },
            },
            "put": {
                "summary": "Create or replace a workflow from YAML or JSON",
                "parameters": [_query("dry_run", "true: only validate", {"type": "boolean"})],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/yaml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json("Replaced (or valid, with dry_run)", _ref("Workflow")),
                    "201": _json("Created", _ref("Workflow")),
                    **_problems(400, *ADMIN, 413, 422),
                },
            },
            "delete": {
                "summary": "Remove a workflow (running executions finish)",
                "responses": {"204": {"description": "Removed"}, **_problems(*ADMIN, 404)},
            },
            "patch": {
                "summary": "Enable or disable a workflow",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {"enabled": {"type": "boolean"}}, required=("enabled",)
                            )
                        }
                    },
                },
                "responses": {
                    "200": _json("The workflow", _ref("Workflow")),
                    **_problems(*ADMIN, 404, 422),
                },
            },
        },
        "/api/workflows/{key}/versions": {
            "parameters": [key],
            "get": {
                "summary": "Every distinct definition the workflow has had, newest first",
                "parameters": [
                    PAGE_PARAMETERS[0],
                    _query(
                        "cursor",
                        "The cursor of the previous page (a version number)",
                        {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
                    ),
                ],
                "responses": {
                    "200": _json("A page", _page("WorkflowVersion", "versions")),
                    **_problems(400, *ADMIN, 404),
                },
            },
        },
        "/api/workflows/{key}/versions/{version}": {
            "parameters": [
                key,
                {
                    "name": "version",
                    "in": "path",
                    "required": True,
                    "description": "The version number",
                    "schema": {"type": "integer", "minimum": 1},
                },
            ],
            "get": {
                "summary": "One version of the workflow's definition, with its text",
                "responses": {
                    "200": _json("The version", _ref("WorkflowVersion")),
                    **_problems(*ADMIN, 404),
                },
            },
        },
        "/api/executions": {
            "get": {
                "summary": "Executions, newest first",
                "parameters": [
                    _query("workflow", "Only this workflow's"),
                    _query(
                        "status",
                        "Only this status",
                        {"type": "string", "enum": list(EXECUTION_STATUSES)},
                    ),
                    *PAGE_PARAMETERS,
                ],
                "responses": {
                    "200": _json("A page", _page("Execution", "executions")),
                    **_problems(400, *ADMIN),
                },
            }
        },
        "/api/executions/{id}": {
            "parameters": [execution],
            "get": {
                "summary": "One execution with its jobs",
                "responses": {
                    "200": _json("The execution", _ref("Execution")),
                    **_problems(*ADMIN, 404),
                },
            },
        },
        "/api/executions/{id}/cancel": {
            "parameters": [execution],
            "post": {
                "summary": "Cancel a queued or running execution",
                "responses": {
                    "202": {"description": "Cancellation requested"},
                    **_problems(*ADMIN, 404, 409),
                },
            },
        },
        "/api/executions/{id}/replay": {
            "parameters": [execution],
            "post": {
                "summary": "Run the execution's delivery again, as a new execution",
                "responses": restart,
            },
        },
        "/api/executions/{id}/retry": {
            "parameters": [execution],
            "post": {
                "summary": "Continue a failed execution from its failed node",
                "responses": restart,
            },
        },
        "/api/deliveries": {
            "get": {
                "summary": "Every request received, newest first, rejected ones with their reason",
                "parameters": [
                    _query("workflow", "Only this workflow's"),
                    _query(
                        "verdict", "Only this verdict", {"type": "string", "enum": list(VERDICTS)}
                    ),
                    *PAGE_PARAMETERS,
                ],
                "responses": {
                    "200": _json("A page", _page("Delivery", "deliveries")),
                    **_problems(400, *ADMIN),
                },
            }
        },
        "/api/deliveries/{id}": {
            "parameters": [_path("id", "The delivery id")],
            "get": {
                "summary": "One request as received, secrets redacted",
                "responses": {
                    "200": _json("The delivery", _ref("Delivery")),
                    **_problems(*ADMIN, 404),
                },
            },
        },
        "/api/collections": {
            "get": {
                "summary": "The names of the collections",
                "responses": {
                    "200": _json(
                        "The names",
                        _object({"collections": {"type": "array", "items": {"type": "string"}}}),
                    ),
                    **_problems(*ADMIN),
                },
            }
        },
        "/api/collections/{name}/records": {
            "parameters": [_path("name", "The collection", f"^{COLLECTION_PATTERN}$")],
            "get": {
                "summary": "A page of records, newest first",
                "parameters": PAGE_PARAMETERS[:2],
                "responses": {
                    "200": _json(
                        "A page",
                        _object(
                            {
                                "records": {"type": "array", "items": {"type": "object"}},
                                "cursor": _nullable({"type": "string"}),
                            },
                            required=("records", "cursor"),
                        ),
                    ),
                    **_problems(400, *ADMIN),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json("OpenAPI 3.0", {"type": "object"}), **_problems(*ADMIN)},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Alive",
                "security": [],
                "responses": {"200": _json("Alive", {"type": "object"})},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Ready: store reachable, workflows loaded, not shutting down",
                "security": [],
                "responses": {"200": _json("Ready", {"type": "object"}), **_problems(503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_problems(*ADMIN),
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the webhook route, the admin API and the probes."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hookline",
            "version": "1",
            "description": "Webhook workflows: ingress, admin API, health and metrics.",
        },
        "security": [{"adminKey": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of admin.api_keys; with none set, loopback clients only",
                }
            },
        },
    }


@openapi.get("/api/openapi.json")
async def openapi_json() -> Response:
    return json_response(openapi_document())
