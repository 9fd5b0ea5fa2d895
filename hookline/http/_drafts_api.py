"""Admin routes for authoring: check a draft, compare two versions, roll back.

- ``POST /api/workflows/validate[?key=K]`` takes a draft (YAML or JSON text) and answers
  200 with ``valid``, its ``errors`` (each with ``field``, ``line`` and ``column``) and
  its node ``tree``: what the editor shows as you type. Nothing is saved.
- ``GET /api/workflows/<key>/diff?from=V1&to=V2`` answers the unified diff between two
  stored versions.
- ``POST /api/workflows/<key>/rollback`` with ``{"version": V}`` makes version V's text
  the workflow's definition again (the same text is the same version: no new number).

Saving a draft as the next version is ``PUT /api/workflows/<key>``.

- ``POST /api/test-runs`` runs a definition (saved or not) on a test delivery
  (``delivery: {method, headers, body}`` or a recorded ``delivery_id``), outside nodes
  live or ``answered_from`` a recorded execution, ``skip_verify`` when asked; 202 with
  its id. ``GET /api/test-runs/<id>`` shows it (its tree filling in): see
  :mod:`._test_runs`.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, current_app, request

from ..engine._engine import Engine
from ..errors import DefinitionError, NotFound
from ._definition_versions import definition_digest, definition_format
from ._draft import DraftCheck, check_draft, draft_error, version_diff
from ._executions import current_engine, execution_json, tree_row_json
from ._responses import json_response, problem_response
from ._test_runs import TestDelivery, TestRun, test_runs
from ._ui_tree import node_rows
from ._workflows_api import MAX_DEFINITION, MAX_VERSION, workflow_editor, workflow_json

__all__ = ["current_version", "draft_json", "drafts_api", "rollback"]

drafts_api = Blueprint("drafts_api", __name__)


def draft_json(check: DraftCheck) -> dict[str, Any]:
    workflow = check.workflow
    return {
        "valid": check.valid,
        "key": workflow.key if workflow is not None else None,
        "errors": [
            {
                "field": error.field,
                "line": error.line,
                "column": error.column,
                "message": error.message,
                "expected": error.expected,
            }
            for error in check.errors
        ],
        "tree": [tree_row_json(row) for row in node_rows(workflow, [])] if workflow else [],
    }


def engine_draft(
    engine: Engine, text: str, key: str | None, *, creating: bool = False
) -> DraftCheck:
    """``text`` checked as saving it into ``engine`` would check it; ``creating``: a new
    workflow, whose key must not be taken (saving it would replace that workflow)."""
    check = check_draft(text, engine.workflows.values(), key=key, nodes=dict(engine.nodes))
    if creating and check.workflow is not None and check.workflow.key in engine.workflows:
        taken = check.workflow.key
        error = DefinitionError("draft", "key", "a key no workflow has (edit that one)", taken)
        return DraftCheck(None, (draft_error(text, error),))
    return check


async def current_version(engine: Engine, key: str) -> int | None:
    """The stored version number of ``key``'s definition in force, if stored."""
    workflow = engine.workflows.get(key)
    if workflow is None:
        return None
    digest = definition_digest(workflow.text)
    cursor = None
    while True:
        page = await engine.store.list_workflow_versions(key, limit=500, cursor=cursor)
        for version in page.items:
            if version.digest == digest:
                return version.version
        if page.cursor is None:
            return None
        cursor = int(page.cursor)


async def rollback(engine: Engine, key: str, number: int) -> int:
    """Make version ``number`` of ``key`` its definition again; returns the number.
    Raises LookupError for an unknown version, DefinitionError if it no longer loads."""
    version = await engine.store.get_workflow_version(key, number)
    if version is None:
        raise LookupError(f"workflow '{key}' has no version {number}")
    json_text = definition_format(version.source) == "json"
    await workflow_editor(engine).put(key, version.source, json_text=json_text)
    return number


async def _text() -> str | Response:
    raw = await request.get_data(cache=False)
    assert isinstance(raw, bytes)
    if len(raw) > MAX_DEFINITION:
        return problem_response(413, "Payload too large", "a definition is at most 1 MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return problem_response(400, "Bad request", "a definition must be UTF-8 text")


@drafts_api.post("/api/workflows/validate")
async def validate_draft() -> Response:
    text = await _text()
    if isinstance(text, Response):
        return text
    key = request.args.get("key") or None
    return json_response(draft_json(engine_draft(current_engine(), text, key)))


def _version_number(name: str) -> int:
    raw = request.args.get(name, "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_VERSION:
        raise ValueError(f"{name} must be a version number, got {raw!r}")
    return int(raw)


@drafts_api.get("/api/workflows/<key>/diff")
async def diff_versions(key: str) -> Response:
    try:
        old, new = _version_number("from"), _version_number("to")
    except ValueError as exc:
        return problem_response(400, "Bad query", str(exc))
    store = current_engine().store
    texts = {}
    for number in (old, new):
        version = await store.get_workflow_version(key, number)
        if version is None:
            return problem_response(404, "Not found", f"workflow '{key}' has no version {number}")
        texts[number] = version.source
    diff = version_diff(key, (old, texts[old]), (new, texts[new]))
    return json_response({"workflow": key, "from": old, "to": new, "diff": diff})


@drafts_api.post("/api/workflows/<key>/rollback")
async def rollback_workflow(key: str) -> Response:
    body = await request.get_json(force=True, silent=True)
    number = body.get("version") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_VERSION:
        return problem_response(
            422, "Invalid rollback", 'send {"version": N}, a stored version', field="version"
        )
    engine = current_engine()
    try:
        await rollback(engine, key, number)
    except LookupError as exc:
        return problem_response(404, "Not found", str(exc))
    except DefinitionError as exc:
        return problem_response(
            422, "Version no longer loads", str(exc), field=exc.path, expected=exc.expected
        )
    document = workflow_json(engine.workflows[key], engine.workflow_statistics(key))
    document["version"] = number
    return json_response(document)


def _test_run_json(run: TestRun, status: str, record: Any, jobs: Any) -> dict[str, Any]:
    answer = None
    if run.answer is not None:
        answer = {
            "status": run.answer.status,
            "headers": dict(run.answer.headers),
            "body": run.answer.body.decode("utf-8", "replace"),
        }
    return {
        "id": run.id,
        "workflow": run.workflow.key,
        "test": True,
        "status": status,
        "error": run.error,
        "answered_from": run.answered_from,
        "skip_verify": run.skip_verify,
        "started_at": run.started_at,
        "answer": answer,
        "execution": execution_json(record, jobs) if record is not None else None,
        "tree": [tree_row_json(row) for row in node_rows(run.workflow, jobs)],
    }


@drafts_api.post("/api/test-runs")
async def start_test_run() -> Response:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("definition"), str):
        return problem_response(
            422, "Invalid test run", "send {definition, delivery, ...}", field="definition"
        )
    engine = current_engine()
    sent = body.get("delivery") or {}
    recorded_id = body.get("delivery_id")
    if isinstance(recorded_id, str):
        record = await engine.store.get_delivery(recorded_id)
        if record is None:
            return problem_response(404, "Not found", f"there is no delivery {recorded_id}")
        delivery = TestDelivery(record.method, dict(record.headers), record.body, record.query)
    elif isinstance(sent, dict) and isinstance(sent.get("headers", {}), dict):
        raw = sent.get("body", "")
        delivery = TestDelivery(
            method=str(sent.get("method") or "POST").upper(),
            headers={str(k): str(v) for k, v in sent.get("headers", {}).items()},
            body=(raw if isinstance(raw, str) else json.dumps(raw)).encode(),
        )
    else:
        return problem_response(422, "Invalid test run", "delivery: expected an object")
    answered_from = body.get("answered_from")
    try:
        run = await test_runs(current_app.config).start(
            current_app.nursery,  # type: ignore[attr-defined]
            engine,
            body["definition"],
            delivery,
            answered_from=answered_from if isinstance(answered_from, str) else None,
            skip_verify=body.get("skip_verify") is True,
        )
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    except DefinitionError as exc:
        return problem_response(
            422, "Invalid workflow definition", str(exc), field=exc.path, expected=exc.expected
        )
    response = json_response(_test_run_json(run, "running", None, ()), 202)
    response.headers["location"] = f"/api/test-runs/{run.id}"
    return response


@drafts_api.get("/api/test-runs/<run_id>")
async def show_test_run(run_id: str) -> Response:
    run = test_runs(current_app.config).get(run_id)
    if run is None:
        return problem_response(404, "Not found", f"there is no test run {run_id}")
    status, record, jobs = await run.snapshot()
    return json_response(_test_run_json(run, status, record, jobs))
