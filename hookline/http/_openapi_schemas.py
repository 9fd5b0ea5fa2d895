"""The component schemas of the OpenAPI document: what the admin API returns."""

from __future__ import annotations

from ._list_query import EXECUTION_STATUSES, VERDICTS
from ._openapi_parts import Schema, nullable, object_schema, ref

__all__ = ["schemas"]

JOB_STATUSES = ("running", "succeeded", "failed", "cancelled", "timed_out", "skipped")


def schemas() -> dict[str, Schema]:
    """The ``components.schemas`` of the document, by name."""
    any_value: Schema = {}
    timestamp = {"type": "number", "description": "seconds since the epoch"}
    return {
        "Problem": object_schema(
            {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            required=("type", "title", "status", "detail"),
        ),
        "Worker": object_schema(
            {
                "id": {"type": "string", "description": "host/pid/random"},
                "host": {"type": "string"},
                "pid": {"type": "integer"},
                "started_at": timestamp,
                "heartbeat_at": timestamp,
                "silent_seconds": {"type": "number"},
                "alive": {"type": "boolean"},
                "this_process": {"type": "boolean"},
            },
            required=("id", "host", "pid", "heartbeat_at", "silent_seconds", "alive"),
        ),
        "Job": object_schema(
            {
                "node": {"type": "string"},
                "type": {"type": "string"},
                "status": {"type": "string", "enum": list(JOB_STATUSES)},
                "attempt": {"type": "integer"},
                "started_at": timestamp,
                "finished_at": nullable(timestamp),
                "output": any_value,
                "error": nullable({"type": "string"}),
                "log": {"type": "array", "items": {"type": "string"}},
            },
            required=("node", "type", "status", "attempt", "started_at"),
        ),
        "Execution": object_schema(
            {
                "id": {"type": "string"},
                "workflow": {"type": "string"},
                "status": {"type": "string", "enum": list(EXECUTION_STATUSES)},
                "delivery_id": nullable({"type": "string"}),
                "created_at": timestamp,
                "started_at": nullable(timestamp),
                "finished_at": nullable(timestamp),
                "context": {"type": "object"},
                "output": any_value,
                "error": nullable({"type": "string"}),
                "workflow_version": nullable(
                    {
                        "type": "integer",
                        "description": "the version of the workflow's definition it runs "
                        "with (see /api/workflows/{key}/versions); null: not recorded",
                    }
                ),
                "jobs": {"type": "array", "items": ref("Job")},
                "batch": {
                    "type": "array",
                    "description": "a batch's execution only (workflow with batch): the "
                    "deliveries it holds, in arrival order",
                    "items": {
                        "type": "object",
                        "properties": {
                            "execution_id": {"type": "string"},
                            "delivery_id": {"type": "string"},
                            "received_at": {"type": "string"},
                        },
                    },
                },
                "waiting_for": nullable(
                    {
                        "type": "string",
                        "description": "queued and throttled ones only: what flow control holds it "
                        "back for (throttle, debounce), or null",
                    }
                ),
                "tree": {
                    "type": "array",
                    "description": "the node tree, one row per node or branch label, "
                    "nested by depth, with each node's last job status",
                    "items": {"type": "object"},
                },
            },
            required=("id", "workflow", "status", "created_at"),
        ),
        "Delivery": object_schema(
            {
                "id": {"type": "string"},
                "workflow": nullable({"type": "string"}),
                "received_at": timestamp,
                "method": {"type": "string"},
                "path": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "query": {"type": "object"},
                "body": {"type": "string"},
                "body_base64": {"type": "string"},
                "remote_addr": {"type": "string"},
                "verdict": {"type": "string", "enum": list(VERDICTS)},
                "reason": nullable({"type": "string"}),
                "status": nullable({"type": "integer"}),
                "execution_id": nullable({"type": "string"}),
            },
            required=("id", "method", "path", "verdict"),
        ),
        "Workflow": object_schema(
            {
                "key": {"type": "string"},
                "title": {"type": "string"},
                "enabled": {"type": "boolean"},
                "source": {"type": "string"},
                "trigger": object_schema(
                    {
                        "path": {"type": "string"},
                        "methods": {"type": "array", "items": {"type": "string"}},
                        "mode": {"type": "string", "enum": ["async", "sync"]},
                    }
                ),
                "nodes": {"type": "integer"},
                "statistics": nullable({"type": "object"}),
                "format": {"type": "string", "enum": ["yaml", "json"]},
                "definition": {"type": "string", "description": "the source text"},
                "invalid": {
                    "type": "boolean",
                    "description": "its file no longer validates; this version keeps serving",
                },
                "errors": {
                    "type": "array",
                    "description": "the errors of its file, when invalid",
                    "items": {"type": "object"},
                },
            },
            required=("key", "enabled", "trigger"),
        ),
        "WorkflowVersion": object_schema(
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
        "TestRun": object_schema(
            {
                "id": {"type": "string"},
                "workflow": {"type": "string"},
                "test": {"type": "boolean", "enum": [True]},
                "status": {"type": "string"},
                "error": nullable({"type": "string"}),
                "answered_from": nullable({"type": "string"}),
                "skip_verify": {"type": "boolean"},
                "started_at": timestamp,
                "answer": nullable({"type": "object"}),
                "execution": nullable({"type": "object"}),
                "tree": {"type": "array", "items": {"type": "object"}},
            },
            required=("id", "workflow", "test", "status", "tree"),
        ),
        "DraftCheck": object_schema(
            {
                "valid": {"type": "boolean"},
                "key": nullable({"type": "string"}),
                "errors": {
                    "type": "array",
                    "description": "the first error the loader met, placed at its line",
                    "items": object_schema(
                        {
                            "field": {
                                "type": "string",
                                "description": "its path, as nodes[0].type",
                            },
                            "line": {"type": "integer", "minimum": 1},
                            "column": {"type": "integer", "minimum": 1},
                            "message": {"type": "string"},
                            "expected": {"type": "string"},
                        },
                        required=("field", "line", "column", "message"),
                    ),
                },
                "tree": {
                    "type": "array",
                    "description": "the node tree's rows, as an execution's tree",
                    "items": {"type": "object"},
                },
            },
            required=("valid", "errors", "tree"),
        ),
        "Accepted": object_schema(
            {"execution_id": {"type": "string"}, "status": {"type": "string"}},
            required=("execution_id", "status"),
        ),
    }
