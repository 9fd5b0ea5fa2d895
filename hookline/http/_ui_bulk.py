"""The web UI's bulk actions: the executions page's "Retry all" and "Replay all"
buttons start a paced bulk run (:mod:`._bulk_api`) over the page's filter, and
``/ui/bulk/<id>`` shows its progress (refreshing itself) with a Cancel button."""

from __future__ import annotations

from typing import cast

from quart import Blueprint, Response, flash, render_template, request, url_for

from ..engine._bulk import Action, matching
from ._bulk_api import filter_from, find_run, progress_json, start_run
from ._executions import current_engine
from ._list_query import BadQuery
from ._ui import _EXPIRED, _back, _csrf_ok, error_page

__all__ = ["ui_bulk"]

ui_bulk = Blueprint("ui_bulk", __name__)


@ui_bulk.post("/ui/bulk")
async def start_bulk() -> Response:
    if not await _csrf_ok():
        return await error_page(403, "Forbidden", _EXPIRED)
    form = await request.form
    action = form.get("action", "")
    if action not in ("replay", "retry"):
        return await error_page(400, "Bad request", "the action is replay or retry")
    fields = {name: form.get(name) or None for name in ("workflow", "status", "since")}
    try:
        selector = filter_from(fields)
    except BadQuery as exc:
        await flash(f"bulk {action} refused: {exc}")
        return _back(url_for("ui.executions_page", **{k: v for k, v in fields.items() if v}))
    engine = current_engine()
    ids = await matching(engine, selector)
    run = start_run(engine, cast(Action, action), selector, ids)
    await flash(f"bulk {action} of {len(ids)} executions started")
    return _back(url_for("ui_bulk.bulk_page", run_id=run.id))


@ui_bulk.get("/ui/bulk/<run_id>")
async def bulk_page(run_id: str) -> str | Response:
    run = find_run(current_engine(), run_id)
    if run is None:
        return await error_page(404, "Not found", f"there is no bulk run {run_id!r}")
    return await render_template("bulk.html", run=progress_json(run.progress()))


@ui_bulk.post("/ui/bulk/<run_id>/cancel")
async def cancel_bulk(run_id: str) -> Response:
    if not await _csrf_ok():
        return await error_page(403, "Forbidden", _EXPIRED)
    run = find_run(current_engine(), run_id)
    if run is None:
        return await error_page(404, "Not found", f"there is no bulk run {run_id!r}")
    run.cancel()
    await flash("bulk run cancelled")
    return _back(url_for("ui_bulk.bulk_page", run_id=run_id))
