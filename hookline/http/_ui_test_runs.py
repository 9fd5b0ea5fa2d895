"""Test runs from the editor page: ``POST /ui/test-runs`` starts one (the editor's text,
a recorded delivery or headers and a body written there, outside nodes live or answered
from a recorded execution), ``/ui/test-runs/<id>`` shows its node tree filling in.
See :mod:`._test_runs`."""

from __future__ import annotations

import hmac
from typing import Any

from quart import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..errors import HooklineError
from ._executions import current_engine
from ._test_runs import TestDelivery, test_runs
from ._ui import error_page
from ._ui_tree import BOX_WIDTH, node_rows, svg_size

__all__ = ["parse_headers", "ui_test_runs"]

ui_test_runs = Blueprint("ui_test_runs", __name__)

_EXPIRED = "the form expired (CSRF token missing or wrong): reload the page"


def parse_headers(text: str) -> dict[str, str]:
    """``Name: value`` lines as headers (names lower-case); other lines are ignored."""
    headers = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers


@ui_test_runs.post("/ui/test-runs")
async def start_test_run() -> Response:
    form = await request.form
    expected = session.get("csrf")
    sent = form.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        return await error_page(403, "Forbidden", _EXPIRED)
    engine = current_engine()
    if form.get("source") == "recorded":
        record = await engine.store.get_delivery(form.get("delivery_id", ""))
        if record is None:
            return await error_page(404, "Not found", "pick a recorded delivery")
        delivery = TestDelivery(
            method=record.method, headers=dict(record.headers), body=record.body, query=record.query
        )
    else:
        delivery = TestDelivery(
            method=(form.get("method") or "POST").upper(),
            headers=parse_headers(form.get("headers", "")),
            body=form.get("body", "").encode(),
        )
    answered_from = form.get("execution_id") if form.get("outside") == "recorded" else None
    try:
        run = await test_runs(current_app.config).start(
            current_app.nursery,  # type: ignore[attr-defined]
            engine,
            form.get("text", "").replace("\r\n", "\n"),
            delivery,
            answered_from=answered_from or None,
            skip_verify=form.get("skip_verify") == "on",
        )
    except HooklineError as exc:
        return await error_page(422, "Test run refused", str(exc))
    target = url_for("ui_test_runs.test_run_page", run_id=run.id)
    return redirect(target, 303)  # type: ignore[return-value]


@ui_test_runs.get("/ui/test-runs/<run_id>")
async def test_run_page(run_id: str) -> Response:
    run = test_runs(current_app.config).get(run_id)
    if run is None:
        return await error_page(404, "Not found", f"there is no test run {run_id}")
    status, record, jobs = await run.snapshot()
    rows = node_rows(run.workflow, jobs)
    width, height = svg_size(rows)
    by_node: dict[str, list[Any]] = {}
    for job in jobs:
        by_node.setdefault(job.node, []).append(job)
    answer = None
    if run.answer is not None:
        answer = {
            "status": run.answer.status,
            "body": run.answer.body.decode("utf-8", "replace"),
        }
    page = await render_template(
        "test_run.html",
        run=run,
        status=status,
        record=record,
        rows=rows,
        by_node=by_node,
        width=width,
        height=height,
        box_width=BOX_WIDTH,
        answer=answer,
        live=status == "running",
    )
    return Response(page, 200, content_type="text/html; charset=utf-8")
