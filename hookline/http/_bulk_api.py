"""Admin routes for bulk actions (:mod:`hookline.engine._bulk`).

``POST /api/bulk`` with ``{"action": "replay" | "retry", "workflow", "status", "since",
"until", "error", "dry_run"}`` answers a dry run with the count (200) and otherwise
starts the run in the background (202, ``Location: /api/bulk/<id>``). ``GET
/api/bulk`` lists this server's recent runs, ``GET /api/bulk/<id>`` shows one's
progress, ``POST /api/bulk/<id>/cancel`` stops it before the next execution. Runs live
in the serving process: a restart forgets them (what they started stays started).
"""

from __future__ import annotations

import weakref
from typing import Any

from quart import Blueprint, Response, current_app, request

from ..engine._bulk import Action, BulkFilter, BulkProgress, BulkRun, matching
from ..engine._engine import Engine
from ._executions import current_engine
from ._list_query import EXECUTION_STATUSES, BadQuery, parse_time
from ._responses import json_response, problem_response

__all__ = ["bulk_api", "filter_from", "find_run", "progress_json", "start_run"]

bulk_api = Blueprint("bulk_api", __name__)

#: Finished runs kept for GET /api/bulk, newest last.
KEPT = 50
_FIELDS = ("action", "workflow", "status", "since", "until", "error", "dry_run")
_RUNS: weakref.WeakKeyDictionary[Engine, dict[str, BulkRun]] = weakref.WeakKeyDictionary()


def _runs(engine: Engine) -> dict[str, BulkRun]:
    return _RUNS.setdefault(engine, {})


def filter_from(body: dict[str, Any]) -> BulkFilter:
    """The filter a request asks for. Raises BadQuery naming the field."""
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise BadQuery(f"unknown fields: {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    for name in ("workflow", "status", "error"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadQuery(f"{name} must be a string")
    if body.get("status") is not None and body["status"] not in EXECUTION_STATUSES:
        raise BadQuery(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        raw = body.get(name)
        if raw is None:
            times[name] = None
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            times[name] = float(raw)
        elif isinstance(raw, str):
            times[name] = parse_time(raw, name)
        else:
            raise BadQuery(f"{name} must be ISO 8601 or seconds since the epoch")
    return BulkFilter(
        workflow=body.get("workflow"),
        status=body.get("status"),
        since=times["since"],
        until=times["until"],
        error=body.get("error") or None,
    )


def start_run(engine: Engine, action: Action, selector: BulkFilter, ids: list[str]) -> BulkRun:
    """Start a bulk run of ``ids`` in the app's background; it is kept for GET."""
    run = BulkRun(action, selector, ids, clock=engine.clock)
    runs = _runs(engine)
    runs[run.id] = run
    for old in [r for r in runs.values() if r.state != "running"][:-KEPT]:
        del runs[old.id]
    current_app.add_background_task(run.run, engine)
    return run


def find_run(engine: Engine, run_id: str) -> BulkRun | None:
    """A bulk run this server started (and still keeps)."""
    return _runs(engine).get(run_id)


def progress_json(progress: BulkProgress) -> dict[str, Any]:
    """A run's progress as the admin API shows it."""
    selector = progress.filter
    return {
        "id": progress.id,
        "action": progress.action,
        "filter": {
            "workflow": selector.workflow,
            "status": selector.status,
            "since": selector.since,
            "until": selector.until,
            "error": selector.error,
        },
        "state": progress.state,
        "total": progress.total,
        "done": progress.done,
        "failed": progress.failed,
        "created_at": progress.created_at,
        "finished_at": progress.finished_at,
        "started": list(progress.started),
        "errors": [{"execution_id": i, "error": e} for i, e in progress.errors],
    }


@bulk_api.post("/api/bulk")
async def start_bulk() -> Response:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return problem_response(400, "Bad request", "send the bulk action as a JSON object")
    action = body.get("action")
    if action not in ("replay", "retry"):
        return problem_response(
            422, "Invalid bulk action", "action must be replay or retry", field="action"
        )
    try:
        selector = filter_from(body)
    except BadQuery as exc:
        return problem_response(400, "Bad filter", str(exc))
    engine = current_engine()
    ids = await matching(engine, selector)
    if body.get("dry_run") is True:
        return json_response({"action": action, "matched": len(ids), "dry_run": True})
    run = start_run(engine, action, selector, ids)
    response = json_response(progress_json(run.progress()), 202)
    response.headers["location"] = f"/api/bulk/{run.id}"
    return response


@bulk_api.get("/api/bulk")
async def list_bulk() -> Response:
    runs = _runs(current_engine()).values()
    return json_response({"runs": [progress_json(r.progress()) for r in reversed(list(runs))]})


@bulk_api.get("/api/bulk/<run_id>")
async def show_bulk(run_id: str) -> Response:
    run = find_run(current_engine(), run_id)
    if run is None:
        return problem_response(404, "Not found", f"there is no bulk run '{run_id}'")
    return json_response(progress_json(run.progress()))


@bulk_api.post("/api/bulk/<run_id>/cancel")
async def cancel_bulk(run_id: str) -> Response:
    run = find_run(current_engine(), run_id)
    if run is None:
        return problem_response(404, "Not found", f"there is no bulk run '{run_id}'")
    run.cancel()
    return json_response(progress_json(run.progress()))
