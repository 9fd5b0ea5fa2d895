"""Admin routes for executions and deliveries (DESIGN.md section 5).

Lists are pages, newest first, read from the query as :mod:`._list_query` says. An
execution can be cancelled, replayed (a new execution from the same delivery) or
retried (continued from its failed node).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from quart import Blueprint, Response, current_app, request

from ..engine._delivery import REDACTED, redact_headers
from ..engine._engine import Engine
from ..engine._workflow_supervisor import Admission
from ..errors import NotFound, Rejected
from ..store._batching import batch_deliveries
from ..store._records import DeliveryRecord, ExecutionRecord, JobRecord
from ._definition_versions import ran_with
from ._list_query import BadQuery, list_delivery_page, list_execution_page
from ._responses import json_response, problem_response, rejection_response
from ._ui_tree import TreeRow, node_rows

__all__ = [
    "admission_response",
    "current_engine",
    "delivery_json",
    "execution_json",
    "executions",
    "job_json",
    "restart_execution",
    "tree_row_json",
]

executions = Blueprint("executions", __name__)

_SECRET_QUERY = re.compile(r"token|secret|sig|passw|key|auth|code", re.IGNORECASE)


def current_engine() -> Engine:
    """The engine the app in context serves."""
    engine: Engine = current_app.config["HOOKLINE_ENGINE"]
    return engine


def job_json(job: JobRecord) -> dict[str, Any]:
    return {
        "node": job.node,
        "scope": job.scope,
        "type": job.type,
        "status": job.status,
        "attempt": job.attempt,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "output": job.output,
        "error": job.error,
        "log": list(job.log),
    }


def execution_json(
    record: ExecutionRecord, jobs: Sequence[JobRecord] | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": record.id,
        "workflow": record.workflow,
        "status": record.status,
        "delivery_id": record.delivery_id,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "context": record.context,
        "output": record.output,
        "error": record.error,
        "workflow_version": record.workflow_version,
    }
    if jobs is not None:
        document["jobs"] = [job_json(job) for job in jobs]
    return document


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    """A delivery as the admin API shows it: secret headers (already redacted when
    stored) and query parameters named like credentials (``token``, ``sig``...) read
    ``[redacted]``."""
    query = {
        name: REDACTED if _SECRET_QUERY.search(name) else value
        for name, value in record.query.items()
    }
    return {
        "id": record.id,
        "workflow": record.workflow,
        "received_at": record.received_at,
        "method": record.method,
        "path": record.path,
        "headers": redact_headers(record.headers),
        "query": query,
        "body": record.body.decode("utf-8", "replace"),
        "body_base64": base64.b64encode(record.body).decode(),
        "remote_addr": record.remote_addr,
        "verdict": record.verdict,
        "reason": record.reason,
        "status": record.status,
        "execution_id": record.execution_id,
    }


@executions.get("/api/executions")
async def list_executions() -> Response:
    try:
        page = await list_execution_page(current_engine())
    except BadQuery as exc:
        return problem_response(400, "Bad query", str(exc))
    return json_response(
        {"executions": [execution_json(r) for r in page.items], "cursor": page.cursor}
    )


@executions.get("/api/executions/<execution_id>")
async def show_execution(execution_id: str) -> Response:
    store = current_engine().store
    record = await store.get_execution(execution_id)
    if record is None:
        return problem_response(404, "Not found", f"there is no execution {execution_id}")
    jobs = await store.list_jobs(execution_id)
    document = execution_json(record, jobs)
    batch = batch_deliveries(record.context)
    if batch is not None:
        document["batch"] = batch  # a batch's execution: the deliveries it holds
    if record.status in ("queued", "throttled", "waiting"):
        document["waiting_for"] = current_engine().waiting_for(execution_id)
    drawn = await ran_with(current_engine(), record)
    document["tree"] = [tree_row_json(row) for row in node_rows(drawn.workflow, jobs)]
    return json_response(document)


def tree_row_json(row: TreeRow) -> dict[str, Any]:
    """One row of an execution's node tree: a node (``label`` null) with its last
    job's status, or a branch label; ``depth`` nests them."""
    return {
        "depth": row.depth,
        "key": row.key,
        "type": row.type,
        "label": row.label,
        "status": row.status,
        "attempts": row.attempts,
        "seconds": row.seconds,
        "error": row.error,
    }


@executions.post("/api/executions/<execution_id>/cancel")
async def cancel_execution(execution_id: str) -> Response:
    try:
        cancelled = await current_engine().cancel(execution_id)
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    if not cancelled:
        return problem_response(409, "Not running", f"execution {execution_id} is not live")
    return json_response({"id": execution_id, "cancel_requested": True}, 202)


@executions.post("/api/executions/<execution_id>/release")
async def release_execution(execution_id: str) -> Response:
    """End a ``wait`` by hand: the JSON body is the event's ``data`` (optional)."""
    body = await request.get_data()
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        return problem_response(400, "Bad request", f"the body is not JSON: {exc}")
    context = {"data": data, "released_by": "operator"}
    if not await current_engine().events.release(execution_id, context):
        return problem_response(409, "Not waiting", f"execution {execution_id} waits for no event")
    return json_response({"id": execution_id, "released": True}, 202)


@executions.post("/api/executions/<execution_id>/time-out")
async def time_out_execution(execution_id: str) -> Response:
    """Time a ``wait`` out by hand: it takes its ``timed_out`` nodes now."""
    if not await current_engine().events.expire(execution_id):
        return problem_response(409, "Not waiting", f"execution {execution_id} waits for no event")
    return json_response({"id": execution_id, "timed_out": True}, 202)


def admission_response(admission: Admission) -> Response:
    """202 with the new execution's id and its Location."""
    response = json_response({"execution_id": admission.execution_id, "status": "queued"}, 202)
    response.headers["location"] = f"/api/executions/{admission.execution_id}"
    return response


async def restart_execution(
    execution_id: str, how: Literal["replay", "retry"]
) -> Admission | Response:
    """``engine.replay`` or ``engine.retry`` (``how``): the Admission, or the problem
    answer for an unknown execution (404), one whose state does not allow it (409), or
    a refusal (503 for a disabled workflow, 429 for a full queue)."""
    engine = current_engine()
    restart = engine.replay if how == "replay" else engine.retry
    try:
        return await restart(execution_id)
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    except Rejected as exc:
        return rejection_response(exc)


@executions.post("/api/executions/<execution_id>/replay")
async def replay_execution(execution_id: str) -> Response:
    outcome = await restart_execution(execution_id, "replay")
    return outcome if isinstance(outcome, Response) else admission_response(outcome)


@executions.post("/api/executions/<execution_id>/retry")
async def retry_execution(execution_id: str) -> Response:
    outcome = await restart_execution(execution_id, "retry")
    return outcome if isinstance(outcome, Response) else admission_response(outcome)


@executions.get("/api/deliveries")
async def list_deliveries() -> Response:
    try:
        page = await list_delivery_page(current_engine())
    except BadQuery as exc:
        return problem_response(400, "Bad query", str(exc))
    return json_response(
        {"deliveries": [delivery_json(r) for r in page.items], "cursor": page.cursor}
    )


@executions.get("/api/deliveries/<delivery_id>")
async def show_delivery(delivery_id: str) -> Response:
    record = await current_engine().store.get_delivery(delivery_id)
    if record is None:
        return problem_response(404, "Not found", f"there is no delivery {delivery_id}")
    return json_response(delivery_json(record))
