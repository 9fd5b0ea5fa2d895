"""What a webhook sender is answered, decided in pure code (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..definition import JSON, problem_body
from ..store._records import Answer, ExecutionStatus
from ._definition import Workflow

JSON_TYPE = "application/json"
PROBLEM = "application/problem+json"


@attrs.frozen
class ExecutionOutcome:
    """How an execution ended."""

    execution_id: str
    workflow: str
    status: ExecutionStatus
    output: JSON = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_answer(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, (("content-type", JSON_TYPE), *headers), encode_json(value))


def location(execution_id: str) -> tuple[str, str]:
    return ("location", f"/api/executions/{execution_id}")


def accepted_answer(workflow: Workflow, execution_id: str, roots: Mapping[str, Any]) -> Answer:
    """The immediate answer of an async webhook: the configured ``response`` or 202."""
    spec = workflow.trigger.response
    if spec is None:
        return json_answer(
            202, {"execution_id": execution_id, "status": "queued"}, (location(execution_id),)
        )
    headers = spec.headers.render(roots) if spec.headers is not None else {}
    body = spec.body.render(roots) if spec.body is not None else None
    return render_answer(spec.status, headers, body)


def render_answer(status: int, headers: Mapping[str, Any] | None, body: Any) -> Answer:
    """An answer from rendered parts: text bodies as text, other values as JSON."""
    pairs = tuple((str(k).lower(), str(v)) for k, v in (headers or {}).items())
    has_type = any(name == "content-type" for name, _ in pairs)
    if body is None:
        return Answer(status, pairs, b"")
    if isinstance(body, bytes):
        payload = body
        default_type = "application/octet-stream"
    elif isinstance(body, str):
        payload = body.encode()
        default_type = "text/plain; charset=utf-8"
    else:
        payload = encode_json(body)
        default_type = JSON_TYPE
    if not has_type:
        pairs = (("content-type", default_type), *pairs)
    return Answer(status, pairs, payload)


def still_running_answer(execution_id: str, status: str = "running") -> Answer:
    """A sync webhook past its ``sync_timeout`` (or whose execution parked on a
    ``wait``: ``status`` ``waiting``): 202, the execution goes on."""
    return json_answer(
        202, {"execution_id": execution_id, "status": status}, (location(execution_id),)
    )


def finished_answer(outcome: ExecutionOutcome) -> Answer:
    """A sync webhook whose execution ended without a ``response`` node answering."""
    if outcome.succeeded:
        return json_answer(
            200,
            {
                "execution_id": outcome.execution_id,
                "status": outcome.status,
                "output": outcome.output,
            },
        )
    detail = outcome.error or f"the execution ended {outcome.status}"
    body = problem_body(
        500,
        "Execution failed",
        detail,
        type=f"https://hookline.dev/problems/execution-{outcome.status.replace('_', '-')}",
        execution_id=outcome.execution_id,
        status_text=outcome.status,
        output=outcome.output,
    )
    return Answer(500, (("content-type", PROBLEM), location(outcome.execution_id)), body)
