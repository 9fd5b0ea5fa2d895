"""The workflow editor pages: ``/ui/workflows/new`` and ``/ui/workflows/<key>/edit``.

A YAML editor (CodeMirror, vendored: ``static/vendor/codemirror.js``) whose text the
server checks as you type (``POST /ui/workflows/draft``, the admin API's
``/api/workflows/validate`` behind the UI's session): errors are shown at their line,
and the node tree is drawn from the draft. Saving makes the next version
(``PUT /api/workflows/<key>``'s editor); each workflow's page lists its versions, shows
the diff between any two and rolls back to one. Without JavaScript the text area still
saves.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from quart import Blueprint, Response, flash, redirect, render_template, request, session, url_for

from ..errors import DefinitionError
from ..store._records import LIVE_STATUSES
from ._definition_versions import definition_format
from ._draft import version_diff
from ._drafts_api import current_version, draft_json, engine_draft, rollback
from ._executions import current_engine
from ._ui import error_page
from ._ui_charts import workflow_charts
from ._ui_tree import BOX_WIDTH, node_rows, svg_size
from ._workflows_api import MAX_DEFINITION, workflow_editor

__all__ = ["STARTER", "ui_editor"]

ui_editor = Blueprint("ui_editor", __name__)

STARTER = """\
key: my-workflow
title: A new workflow
trigger:
  type: webhook
  path: my-workflow
  mode: sync
nodes:
  - key: greeting
    type: set
    values:
      message: "Hello, {{$context.data.name}}"
  - key: reply
    type: response
    status: 200
    body: {message: "{{$nodes.greeting.message}}"}
"""

_EXPIRED = "the form expired (CSRF token missing or wrong): reload the page"


def _token_ok(sent: str) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def _tree_html(text_check: Any) -> str:
    workflow = text_check.workflow
    rows = node_rows(workflow, []) if workflow is not None else []
    width, height = svg_size(rows)
    return await render_template(
        "_draft_tree.html", rows=rows, width=width, height=height, box_width=BOX_WIDTH
    )


async def _editor_page(key: str | None, text: str, status: int = 200) -> Response:
    engine = current_engine()
    check = engine_draft(engine, text, key, creating=key is None)
    versions: list[Any] = []
    deliveries: list[Any] = []
    executions: list[Any] = []
    current = None
    if key is not None:
        page = await engine.store.list_workflow_versions(key, limit=100, cursor=None)
        versions = list(page.items)
        current = await current_version(engine, key)
        received = await engine.store.list_deliveries(workflow=key, verdict="accepted", limit=20)
        deliveries = list(received.items)
        ran = await engine.store.list_executions(workflow=key, limit=20)
        executions = [e for e in ran.items if e.status not in LIVE_STATUSES]
    page_html = await render_template(
        "editor.html",
        key=key,
        text=text,
        check=draft_json(check),
        tree=await _tree_html(check),
        versions=versions,
        current=current,
        deliveries=deliveries,
        executions=executions,
    )
    return Response(page_html, status, content_type="text/html; charset=utf-8")


@ui_editor.get("/ui/workflows/new")
async def new_workflow() -> Response:
    return await _editor_page(None, STARTER)


@ui_editor.get("/ui/workflows/<key>")
async def workflow_page(key: str) -> Response:
    """One workflow: where it listens, its links, and its charts."""
    engine = current_engine()
    workflow = engine.workflows.get(key)
    if workflow is None:
        return await error_page(404, "Not found", f"there is no workflow '{key}'")
    charts = await workflow_charts(engine, key, time.time())
    page = await render_template("workflow.html", workflow=workflow, charts=charts)
    return Response(page, 200, content_type="text/html; charset=utf-8")


@ui_editor.get("/ui/workflows/<key>/edit")
async def edit_workflow(key: str) -> Response:
    workflow = current_engine().workflows.get(key)
    if workflow is None:
        return await error_page(404, "Not found", f"there is no workflow '{key}'")
    return await _editor_page(key, workflow.text)


@ui_editor.post("/ui/workflows/draft")
async def check_draft_text() -> Response:
    """The editor's live check: ``{text, key}`` in, the draft's errors and tree out."""
    if not _token_ok(request.headers.get("x-csrf-token", "")):
        return Response(json.dumps({"error": _EXPIRED}), 403, content_type="application/json")
    body = await request.get_json(force=True, silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(text, str) or len(text) > MAX_DEFINITION:
        return Response(
            json.dumps({"error": "send {text, key}"}), 400, content_type="application/json"
        )
    editing = key if isinstance(key, str) and key else None
    check = engine_draft(current_engine(), text, editing, creating=editing is None)
    document = draft_json(check)
    document["tree_html"] = await _tree_html(check)
    return Response(json.dumps(document), 200, content_type="application/json")


@ui_editor.post("/ui/workflows/save")
async def save_workflow() -> Response:
    form = await request.form
    if not _token_ok(form.get("csrf", "")):
        return await error_page(403, "Forbidden", _EXPIRED)
    text = form.get("text", "").replace("\r\n", "\n")
    key = form.get("key") or None
    engine = current_engine()
    check = engine_draft(engine, text, key, creating=key is None)
    if check.workflow is None:
        await flash(f"not saved: {check.errors[0].message}")
        return await _editor_page(key, text, 422)
    saved = check.workflow.key
    try:
        await workflow_editor(engine).put(saved, text, json_text=definition_format(text) == "json")
    except DefinitionError as exc:
        await flash(f"not saved: {exc}")
        return await _editor_page(key, text, 422)
    number = await current_version(engine, saved)
    await flash(f"saved {saved} as version {number}" if number else f"saved {saved}")
    return redirect(url_for("ui_editor.edit_workflow", key=saved), 303)  # type: ignore[return-value]


@ui_editor.get("/ui/workflows/<key>/diff")
async def diff_page(key: str) -> Response:
    store = current_engine().store
    texts = {}
    numbers = []
    for name in ("from", "to"):
        raw = request.args.get(name, "")
        version = await store.get_workflow_version(key, int(raw)) if raw.isdigit() else None
        if version is None:
            return await error_page(404, "Not found", f"workflow '{key}' has no version {raw!r}")
        texts[version.version] = version.source
        numbers.append(version.version)
    diff = version_diff(key, (numbers[0], texts[numbers[0]]), (numbers[1], texts[numbers[1]]))
    page = await render_template(
        "diff.html", key=key, old=numbers[0], new=numbers[1], lines=diff.splitlines()
    )
    return Response(page, 200, content_type="text/html; charset=utf-8")


@ui_editor.post("/ui/workflows/<key>/rollback")
async def rollback_page(key: str) -> Response:
    form = await request.form
    if not _token_ok(form.get("csrf", "")):
        return await error_page(403, "Forbidden", _EXPIRED)
    raw = form.get("version", "")
    if not raw.isdigit():
        return await error_page(400, "Bad request", "pick a version to roll back to")
    try:
        await rollback(current_engine(), key, int(raw))
    except LookupError as exc:
        return await error_page(404, "Not found", str(exc))
    except DefinitionError as exc:
        await flash(f"rollback refused: {exc}")
    else:
        await flash(f"{key} rolled back to version {raw}")
    return redirect(url_for("ui_editor.edit_workflow", key=key), 303)  # type: ignore[return-value]
