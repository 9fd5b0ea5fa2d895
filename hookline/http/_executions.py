"""Admin reads of executions and deliveries (DESIGN.md section 5)."""

from __future__ import annotations

import base64
from typing import Any

from quart import Blueprint, Response, current_app, request

from ..engine._engine import Engine
from ..errors import NotFound
from ..store._records import FINISHED_STATUSES, DeliveryRecord, ExecutionRecord, JobRecord
from ._responses import json_response, problem_response

executions = Blueprint("executions", __name__)

EXECUTION_STATUSES = ("queued", "running", *sorted(FINISHED_STATUSES))
MAX_LIMIT = 500


def _engine() -> Engine:
    engine: Engine = current_app.config["HOOKLINE_ENGINE"]
    return engine


def job_json(job: JobRecord) -> dict[str, Any]:
    return {
        "node": job.node,
        "type": job.type,
        "status": job.status,
        "attempt": job.attempt,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "output": job.output,
        "error": job.error,
        "log": list(job.log),
    }


def execution_json(record: ExecutionRecord, jobs: list[JobRecord] | None = None) -> dict[str, Any]:
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
    }
    if jobs is not None:
        document["jobs"] = [job_json(job) for job in jobs]
    return document


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "workflow": record.workflow,
        "received_at": record.received_at,
        "method": record.method,
        "path": record.path,
        "headers": record.headers,
        "query": record.query,
        "body": record.body.decode("utf-8", "replace"),
        "body_base64": base64.b64encode(record.body).decode(),
        "remote_addr": record.remote_addr,
        "verdict": record.verdict,
        "reason": record.reason,
        "status": record.status,
        "execution_id": record.execution_id,
    }


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


@executions.get("/api/executions")
async def list_executions() -> Response:
    status = request.args.get("status")
    try:
        limit = _limit()
        if status is not None and status not in EXECUTION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
    except ValueError as exc:
        return problem_response(400, "Bad query", str(exc))
    page = await _engine().store.list_executions(
        workflow=request.args.get("workflow"),
        status=status,
        limit=limit,
        cursor=request.args.get("cursor"),
    )
    return json_response(
        {"executions": [execution_json(r) for r in page.items], "cursor": page.cursor}
    )


@executions.get("/api/executions/<execution_id>")
async def show_execution(execution_id: str) -> Response:
    store = _engine().store
    record = await store.get_execution(execution_id)
    if record is None:
        return problem_response(404, "Not found", f"there is no execution {execution_id}")
    return json_response(execution_json(record, await store.list_jobs(execution_id)))


@executions.post("/api/executions/<execution_id>/cancel")
async def cancel_execution(execution_id: str) -> Response:
    try:
        cancelled = await _engine().cancel(execution_id)
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    if not cancelled:
        return problem_response(409, "Not running", f"execution {execution_id} is not live")
    return json_response({"id": execution_id, "cancel_requested": True}, 202)


@executions.get("/api/deliveries")
async def list_deliveries() -> Response:
    try:
        limit = _limit()
    except ValueError as exc:
        return problem_response(400, "Bad query", str(exc))
    page = await _engine().store.list_deliveries(
        workflow=request.args.get("workflow"),
        verdict=request.args.get("verdict"),
        limit=limit,
        cursor=request.args.get("cursor"),
    )
    return json_response(
        {"deliveries": [delivery_json(r) for r in page.items], "cursor": page.cursor}
    )
