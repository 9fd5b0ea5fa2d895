"""The operator's web pages at ``/ui/``: server-rendered Jinja templates, no build step.

Pages: workflows (enabled state, recent success rate, enable/disable), executions
(filters, live refresh), one execution (its node tree as SVG coloured by job status;
each node opens its jobs: definition, output, error, log, attempts; replay, retry,
cancel), deliveries and one delivery (the request as received, secrets redacted).

Access is the admin API's: with admin keys, a Bearer header or a session opened by
signing in with a key at ``/ui/login``; with none, loopback clients only. Every form
posts a CSRF token kept in the session, and session cookies are ``SameSite=Strict``,
``Secure`` over HTTPS, and end on the server when their owner signs out (see
:mod:`._ui_sessions`). Every page, error pages included, is a template: Jinja escapes
whatever a request or a record puts in it.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

import yaml
from quart import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..engine._alert_monitor import alert_monitor
from ..engine._definition import Workflow
from ..engine._engine import Engine
from ..errors import HooklineError, NotFound
from ..store._records import LIVE_STATUSES
from ._access import admin_refusal
from ._definition_versions import ran_with
from ._executions import current_engine, delivery_json, restart_execution
from ._list_query import (
    EXECUTION_STATUSES,
    VERDICTS,
    BadQuery,
    list_delivery_page,
    list_execution_page,
)
from ._ui_charts import workflow_charts
from ._ui_sessions import SessionRegistry
from ._ui_tree import BOX_WIDTH, node_rows, svg_size
from ._workflows_api import workflow_editor

__all__ = ["UI_PREFIX", "UI_SESSIONS", "error_page", "ui", "ui_refusal"]

UI_PREFIX = "/ui/"
UI_SESSIONS = "HOOKLINE_UI_SESSIONS"  # app.config key of the SessionRegistry
RECENT = 50  # executions a workflow's success rate is computed over

ui = Blueprint(
    "ui",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)

_OPEN = (f"{UI_PREFIX}static/", f"{UI_PREFIX}login")


async def error_page(status: int, title: str, detail: str) -> Response:
    """An HTML error page through the ``error.html`` template: ``detail`` may quote the
    request (an id, a query value), and the template escapes it."""
    page = await render_template("error.html", title=title, detail=detail)
    return Response(page, status, content_type="text/html; charset=utf-8")


def _sessions() -> SessionRegistry:
    sessions: SessionRegistry = current_app.config[UI_SESSIONS]
    return sessions


def _signed_in() -> bool:
    """Whether the request's session signed in and the server still holds it."""
    return session.get("admin") is True and _sessions().is_live(session.get("sid"))


async def ui_refusal(
    client_ip: str, authorization: str, keys: Sequence[bytes], *, forwarded: bool = False
) -> Response | None:
    """None when a UI request may proceed; otherwise the login page (a browser without
    a session, keys set) or a 403 page (not loopback, or forwarded, no keys set)."""
    if request.path.startswith(_OPEN):
        return None
    if keys and _signed_in():
        return None
    if admin_refusal(client_ip, authorization, keys, forwarded=forwarded) is None:
        return None
    if not keys:
        detail = "the web UI answers loopback clients only (no admin keys set)"
        return await error_page(403, "Forbidden", detail)
    if request.method == "GET":
        return redirect(url_for("ui.login", next=request.full_path))  # type: ignore[return-value]
    return await error_page(403, "Forbidden", "sign in first")


def csrf_token() -> str:
    """The session's CSRF token (made on first use) for the page's forms."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


async def _csrf_ok() -> bool:
    form = await request.form
    expected = session.get("csrf")
    sent = form.get("csrf", "")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


@ui.app_context_processor
def _globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "signed_in": _signed_in()}


@ui.app_template_filter("when")
def _when(at: float | None) -> str:
    if at is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}"


@ui.app_template_filter("took")
def _took(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


@ui.app_template_filter("pretty")
def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# -- sign in ---------------------------------------------------------------------------


@ui.route("/ui/login", methods=["GET", "POST"])
async def login() -> Response | str:
    keys: Sequence[bytes] = current_app.config["HOOKLINE_ADMIN_KEYS"]
    error = None
    target = request.args.get("next", "")
    if not target.startswith(UI_PREFIX):
        target = UI_PREFIX
    if request.method == "POST":
        form = await request.form
        key = form.get("key", "").strip()
        if keys and key and admin_refusal("", f"Bearer {key}", keys) is None:
            _sessions().close(session.get("sid"))
            session.clear()
            session["admin"] = True
            session["sid"] = _sessions().open()
            csrf_token()
            return redirect(target)  # type: ignore[return-value]
        error = "that key is not one of the admin keys"
    return await render_template("login.html", error=error, keys=bool(keys), target=target)


@ui.post("/ui/logout")
async def logout() -> Response:
    if await _csrf_ok():
        # Ended here, not only in this browser: a copy of the cookie no longer works.
        _sessions().close(session.get("sid"))
        session.clear()
    return redirect(url_for("ui.login"))  # type: ignore[return-value]


# -- pages -----------------------------------------------------------------------------


async def _success_rate(engine: Engine, key: str) -> tuple[float | None, int]:
    page = await engine.store.list_executions(workflow=key, limit=RECENT)
    finished = [r for r in page.items if r.status not in LIVE_STATUSES]
    if not finished:
        return None, 0
    return sum(r.status == "succeeded" for r in finished) / len(finished), len(finished)


@ui.get("/ui/")
async def workflows_page() -> str:
    engine = current_engine()
    stats = {s.workflow: s for s in engine.statistics().workflows}
    rows = []
    for workflow in sorted(engine.workflows.values(), key=lambda w: w.key):
        rate, count = await _success_rate(engine, workflow.key)
        rows.append(
            {"workflow": workflow, "stats": stats.get(workflow.key), "rate": rate, "count": count}
        )
    monitor = alert_monitor(engine)
    alerts = monitor.states() if monitor is not None else []
    charts = await workflow_charts(engine, None, time.time())
    return await render_template(
        "workflows.html",
        rows=rows,
        errors=engine.load_errors,
        alerts=alerts,
        charts=charts,
        waiting_for_events=engine.events.statistics().waiting,
    )


@ui.get("/ui/executions")
async def executions_page() -> str | Response:
    engine = current_engine()
    try:
        page = await list_execution_page(engine)
    except BadQuery as exc:
        return await error_page(400, "Bad request", str(exc))
    return await render_template(
        "executions.html",
        page=page,
        statuses=EXECUTION_STATUSES,
        workflows=sorted(engine.workflows),
        query=request.args,
    )


def _definitions(workflow: Workflow | None) -> dict[str, str]:
    """Each node's definition as written (YAML), by key: what the node was given."""
    if workflow is None or not workflow.text:
        return {}
    try:
        data = yaml.safe_load(workflow.text)
    except yaml.YAMLError:
        return {}
    found: dict[str, str] = {}

    def visit(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("key"), str) and isinstance(value.get("type"), str):
                shown = {
                    k: v
                    for k, v in value.items()
                    if not isinstance(v, list) or k in ("values", "to")
                }
                found.setdefault(
                    value["key"], yaml.safe_dump(shown, sort_keys=False, allow_unicode=True)
                )
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(data.get("nodes") if isinstance(data, dict) else None)
    return found


@ui.get("/ui/executions/<execution_id>")
async def execution_page(execution_id: str) -> str | Response:
    engine = current_engine()
    record = await engine.store.get_execution(execution_id)
    if record is None:
        return await error_page(404, "Not found", f"there is no execution {execution_id}")
    jobs = await engine.store.list_jobs(execution_id)
    # Drawn as it ran: the definition version the execution recorded, if it loads.
    drawn = await ran_with(engine, record)
    workflow = drawn.workflow
    rows = node_rows(workflow, jobs)
    width, height = svg_size(rows)
    by_node: dict[str, list[Any]] = {}
    for job in jobs:
        by_node.setdefault(job.node, []).append(job)
    return await render_template(
        "execution.html",
        record=record,
        jobs=jobs,
        by_node=by_node,
        rows=rows,
        width=width,
        height=height,
        box_width=BOX_WIDTH,
        definitions=_definitions(workflow),
        drawn=drawn,
        live=record.status in LIVE_STATUSES,
    )


@ui.get("/ui/deliveries")
async def deliveries_page() -> str | Response:
    engine = current_engine()
    try:
        page = await list_delivery_page(engine)
    except BadQuery as exc:
        return await error_page(400, "Bad request", str(exc))
    return await render_template(
        "deliveries.html",
        page=page,
        verdicts=VERDICTS,
        workflows=sorted(engine.workflows),
        query=request.args,
    )


@ui.get("/ui/deliveries/<delivery_id>")
async def delivery_page(delivery_id: str) -> str | Response:
    record = await current_engine().store.get_delivery(delivery_id)
    if record is None:
        return await error_page(404, "Not found", f"there is no delivery {delivery_id}")
    return await render_template("delivery.html", delivery=delivery_json(record))


# -- actions ---------------------------------------------------------------------------

_EXPIRED = "the form expired (CSRF token missing or wrong): reload the page"


def _back(default: str) -> Response:
    return redirect(default, 303)  # type: ignore[return-value]


@ui.post("/ui/executions/<execution_id>/<action>")
async def execution_action(execution_id: str, action: str) -> Response:
    here = url_for("ui.execution_page", execution_id=execution_id)
    if not await _csrf_ok():
        return await error_page(403, "Forbidden", _EXPIRED)
    if action == "cancel":
        try:
            cancelled = await current_engine().cancel(execution_id)
        except NotFound:
            return await error_page(404, "Not found", f"there is no execution {execution_id}")
        await flash("cancel requested" if cancelled else "the execution is not running")
        return _back(here)
    if action not in ("replay", "retry"):
        return await error_page(404, "Not found", f"there is no action {action!r}")
    outcome = await restart_execution(execution_id, "replay" if action == "replay" else "retry")
    if isinstance(outcome, Response):
        problem = json.loads(await outcome.get_data(as_text=True))
        await flash(f"{action} refused: {problem.get('detail', problem.get('title'))}")
        return _back(here)
    return _back(url_for("ui.execution_page", execution_id=outcome.execution_id))


@ui.post("/ui/workflows/<key>/<action>")
async def workflow_action(key: str, action: str) -> Response:
    if action not in ("enable", "disable"):
        return await error_page(404, "Not found", f"there is no action {action!r}")
    if not await _csrf_ok():
        return await error_page(403, "Forbidden", _EXPIRED)
    try:
        await workflow_editor(current_engine()).set_enabled(key, enabled=action == "enable")
    except HooklineError as exc:
        await flash(f"{action} failed: {exc}")
    else:
        await flash(f"{key} {action}d")
    return _back(url_for("ui.workflows_page"))
