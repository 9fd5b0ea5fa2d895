"""The routes of the OpenAPI document: ingress, admin API, health and metrics."""

from __future__ import annotations

from typing import Any

from ..engine._definition import HTTP_METHODS
from ..store._collections import COLLECTION_PATTERN
from ._list_query import EXECUTION_STATUSES, VERDICTS
from ._openapi_parts import (
    ADMIN,
    PAGE_PARAMETERS,
    json_content,
    nullable,
    object_schema,
    page_schema,
    path_parameter,
    problems,
    query_parameter,
    ref,
)
from ._workflows_api import MAX_VERSION

__all__ = ["paths"]


def paths() -> dict[str, Any]:
    """The ``paths`` of the document: the webhook route, the admin API and the probes."""
    key = path_parameter("key", "The workflow key", "^[a-z0-9][a-z0-9_-]*$")
    execution = path_parameter("id", "The execution id")
    restart = {
        "202": json_content("A new execution was queued (see Location)", ref("Accepted")),
        **problems(*ADMIN, 404, 409, 429, 503),
    }
    webhook = {
        "summary": "Deliver a webhook to the workflow listening on this path",
        "security": [],
        "parameters": [path_parameter("path", "The workflow's trigger path")],
        "responses": {
            "200": {"description": "The sync workflow's answer"},
            "202": json_content(
                "Accepted (async), or still running past sync_timeout", ref("Accepted")
            ),
            **problems(400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503),
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
                    "200": json_content("The workflows", page_schema("Workflow", "workflows")),
                    **problems(*ADMIN),
                },
            }
        },
        "/api/workflows/{key}": {
            "parameters": [key],
            "get": {
                "summary": "One workflow with its definition",
                "responses": {
                    "200": json_content("The workflow", ref("Workflow")),
                    **problems(*ADMIN, 404),
                },
            },
            "put": {
                "summary": "Create or replace a workflow from YAML or JSON",
                "parameters": [
                    query_parameter("dry_run", "true: only validate", {"type": "boolean"})
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/yaml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": json_content("Replaced (or valid, with dry_run)", ref("Workflow")),
                    "201": json_content("Created", ref("Workflow")),
                    **problems(400, *ADMIN, 413, 422),
                },
            },
            "delete": {
                "summary": "Remove a workflow (running executions finish)",
                "responses": {"204": {"description": "Removed"}, **problems(*ADMIN, 404)},
            },
            "patch": {
                "summary": "Enable or disable a workflow",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": object_schema(
                                {"enabled": {"type": "boolean"}}, required=("enabled",)
                            )
                        }
                    },
                },
                "responses": {
                    "200": json_content("The workflow", ref("Workflow")),
                    **problems(*ADMIN, 404, 422),
                },
            },
        },
        "/api/workflows/{key}/versions": {
            "parameters": [key],
            "get": {
                "summary": "Every distinct definition the workflow has had, newest first",
                "parameters": [
                    PAGE_PARAMETERS[0],
                    query_parameter(
                        "cursor",
                        "The cursor of the previous page (a version number)",
                        {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
                    ),
                ],
                "responses": {
                    "200": json_content("A page", page_schema("WorkflowVersion", "versions")),
                    **problems(400, *ADMIN, 404),
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
                    "200": json_content("The version", ref("WorkflowVersion")),
                    **problems(*ADMIN, 404),
                },
            },
        },
        "/api/workflows/validate": {
            "post": {
                "summary": "Check a draft definition (nothing is saved): its errors with "
                "their lines, and its node tree",
                "parameters": [
                    query_parameter("key", "The workflow the draft edits (its key must stay)")
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/yaml": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": json_content("The draft checked", ref("DraftCheck")),
                    **problems(400, *ADMIN, 413),
                },
            },
        },
        "/api/workflows/{key}/diff": {
            "parameters": [key],
            "get": {
                "summary": "The unified diff between two stored versions",
                "parameters": [
                    query_parameter("from", "The older version", {"type": "integer", "minimum": 1}),
                    query_parameter("to", "The newer version", {"type": "integer", "minimum": 1}),
                ],
                "responses": {
                    "200": json_content(
                        "The diff",
                        object_schema(
                            {
                                "workflow": {"type": "string"},
                                "from": {"type": "integer"},
                                "to": {"type": "integer"},
                                "diff": {"type": "string"},
                            },
                            required=("workflow", "from", "to", "diff"),
                        ),
                    ),
                    **problems(400, *ADMIN, 404),
                },
            },
        },
        "/api/test-runs": {
            "post": {
                "summary": "Run a definition (saved or not) on a test delivery, in an engine "
                "of its own: never in the executions, metrics or success rates",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": object_schema(
                                {
                                    "definition": {"type": "string"},
                                    "delivery": object_schema(
                                        {
                                            "method": {"type": "string"},
                                            "headers": {"type": "object"},
                                            "body": {},
                                        }
                                    ),
                                    "delivery_id": {"type": "string"},
                                    "answered_from": {
                                        "type": "string",
                                        "description": "an execution whose job outputs "
                                        "answer the outside nodes (absent: they run live)",
                                    },
                                    "skip_verify": {"type": "boolean"},
                                },
                                required=("definition",),
                            )
                        }
                    },
                },
                "responses": {
                    "202": json_content("Started (see Location)", ref("TestRun")),
                    **problems(*ADMIN, 404, 422),
                },
            },
        },
        "/api/test-runs/{id}": {
            "parameters": [path_parameter("id", "The test run id")],
            "get": {
                "summary": "A test run, its node tree filling in while it runs",
                "responses": {
                    "200": json_content("The test run", ref("TestRun")),
                    **problems(*ADMIN, 404),
                },
            },
        },
        "/api/workflows/{key}/rollback": {
            "parameters": [key],
            "post": {
                "summary": "Make a stored version the workflow's definition again",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": object_schema(
                                {"version": {"type": "integer", "minimum": 1}},
                                required=("version",),
                            )
                        }
                    },
                },
                "responses": {
                    "200": json_content("The workflow, with its version", ref("Workflow")),
                    **problems(*ADMIN, 404, 422),
                },
            },
        },
        "/api/executions": {
            "get": {
                "summary": "Executions, newest first",
                "parameters": [
                    query_parameter("workflow", "Only this workflow's"),
                    query_parameter(
                        "status",
                        "Only this status",
                        {"type": "string", "enum": list(EXECUTION_STATUSES)},
                    ),
                    *PAGE_PARAMETERS,
                ],
                "responses": {
                    "200": json_content("A page", page_schema("Execution", "executions")),
                    **problems(400, *ADMIN),
                },
            }
        },
        "/api/executions/{id}": {
            "parameters": [execution],
            "get": {
                "summary": "One execution with its jobs",
                "responses": {
                    "200": json_content("The execution", ref("Execution")),
                    **problems(*ADMIN, 404),
                },
            },
        },
        "/api/executions/{id}/cancel": {
            "parameters": [execution],
            "post": {
                "summary": "Cancel a queued or running execution",
                "responses": {
                    "202": {"description": "Cancellation requested"},
                    **problems(*ADMIN, 404, 409),
                },
            },
        },
        "/api/executions/{id}/release": {
            "parameters": [execution],
            "post": {
                "summary": "End a waiting execution's wait as if its event came",
                "description": "The optional JSON body is the event's data: the wait node "
                "runs its then nodes with $nodes.<key> = {data, released_by: operator}.",
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {}}},
                },
                "responses": {
                    "202": {"description": "Released"},
                    **problems(*ADMIN, 400, 409),
                },
            },
        },
        "/api/executions/{id}/time-out": {
            "parameters": [execution],
            "post": {
                "summary": "Time a waiting execution's wait out now",
                "responses": {
                    "202": {"description": "Timed out: it runs its timed_out nodes"},
                    **problems(*ADMIN, 409),
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
                "responses": {
                    **restart,
                    "202": json_content(
                        "The same execution was queued again, under its own id", ref("Accepted")
                    ),
                },
            },
        },
        "/api/deliveries": {
            "get": {
                "summary": "Every request received, newest first, rejected ones with their reason",
                "parameters": [
                    query_parameter("workflow", "Only this workflow's"),
                    query_parameter(
                        "verdict", "Only this verdict", {"type": "string", "enum": list(VERDICTS)}
                    ),
                    *PAGE_PARAMETERS,
                ],
                "responses": {
                    "200": json_content("A page", page_schema("Delivery", "deliveries")),
                    **problems(400, *ADMIN),
                },
            }
        },
        "/api/deliveries/{id}": {
            "parameters": [path_parameter("id", "The delivery id")],
            "get": {
                "summary": "One request as received, secrets redacted",
                "responses": {
                    "200": json_content("The delivery", ref("Delivery")),
                    **problems(*ADMIN, 404),
                },
            },
        },
        "/api/workers": {
            "get": {
                "summary": "The hookline processes sharing the store (PostgreSQL)",
                "responses": {
                    "200": json_content(
                        "The workers, with how long each has been silent",
                        object_schema(
                            {
                                "shared_store": {"type": "boolean"},
                                "worker": nullable({"type": "string"}),
                                "items": {"type": "array", "items": ref("Worker")},
                            },
                            required=("shared_store", "worker", "items"),
                        ),
                    ),
                    **problems(*ADMIN, 503),
                },
            }
        },
        "/api/collections": {
            "get": {
                "summary": "The names of the collections",
                "responses": {
                    "200": json_content(
                        "The names",
                        object_schema(
                            {"collections": {"type": "array", "items": {"type": "string"}}}
                        ),
                    ),
                    **problems(*ADMIN),
                },
            }
        },
        "/api/collections/{name}/records": {
            "parameters": [path_parameter("name", "The collection", f"^{COLLECTION_PATTERN}$")],
            "get": {
                "summary": "A page of records, newest first",
                "parameters": PAGE_PARAMETERS[:2],
                "responses": {
                    "200": json_content(
                        "A page",
                        object_schema(
                            {
                                "records": {"type": "array", "items": {"type": "object"}},
                                "cursor": nullable({"type": "string"}),
                            },
                            required=("records", "cursor"),
                        ),
                    ),
                    **problems(400, *ADMIN),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": json_content("OpenAPI 3.0", {"type": "object"}),
                    **problems(*ADMIN),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Alive",
                "security": [],
                "responses": {"200": json_content("Alive", {"type": "object"})},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Ready: store reachable, workflows loaded, not shutting down",
                "security": [],
                "responses": {"200": json_content("Ready", {"type": "object"}), **problems(503)},
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
                    **problems(*ADMIN),
                },
            }
        },
    }
