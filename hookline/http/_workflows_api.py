"""Admin routes for workflow definitions, and the :class:`WorkflowEditor` behind them.

``GET /api/workflows`` lists the loaded workflows (with the files that failed to load),
``GET /api/workflows/<key>`` shows one with its definition text, ``PUT`` replaces or
creates one from YAML or JSON (``?dry_run=true`` only validates), ``DELETE`` removes
one and ``PATCH`` with ``{"enabled": false}`` disables one (requests then get 503).
``GET /api/workflows/<key>/versions`` lists every distinct definition the workflow has
had, newest first (kept after it is deleted: its executions still name them), and
``.../versions/<n>`` gives one with its text.

A definition that does not validate is answered 422 (problem+json) with ``field`` (the
field path, as in ``nodes[1].then[0].timeout``), ``expected`` and ``source``. When the
engine serves a workflows folder, changes are written there too (one file per
workflow), so they survive a restart.
"""

from __future__ import annotations

import json
import os
import re
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
import yaml
from quart import Blueprint, Response, request

from ..engine._definition import Workflow
from ..engine._engine import Engine
from ..engine._loader import check_conflicts, load_workflow_text
from ..engine._workflow_supervisor import WorkflowStatistics
from ..errors import DefinitionError, NotFound
from ..store._records import WorkflowVersionRecord
from ._definition_versions import definition_digest, definition_format
from ._executions import current_engine
from ._list_query import MAX_LIMIT
from ._responses import json_response, problem_response

__all__ = [
    "MAX_VERSION",
    "WorkflowEditor",
    "error_json",
    "file_errors",
    "version_json",
    "workflow_editor",
    "workflow_json",
    "workflows_api",
]

workflows_api = Blueprint("workflows_api", __name__)

MAX_DEFINITION = 1024 * 1024
#: The largest version number asked about: past it none exists (and SQLite's integers
#: end not far beyond).
MAX_VERSION = 2**31 - 1
JSON_TYPES = ("application/json",)
_ENABLED_LINE = re.compile(r"^enabled[ \t]*:.*$", re.MULTILINE)
_KEY_LINE = re.compile(r"^key[ \t]*:.*$", re.MULTILINE)


class WorkflowEditor:
    """Changes an engine's workflows one at a time (a lock orders concurrent edits):
    validates, applies with ``engine.apply`` and keeps the workflows folder in step."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = trio.Lock()

    def _path(self, key: str, suffix: str) -> Path | None:
        folder = self.engine.folder
        return None if folder is None else folder / f"{key}{suffix}"

    def validate(self, key: str, text: str, *, json_text: bool) -> Workflow:
        """The workflow ``text`` defines, checked against the others. Raises
        DefinitionError (its key must be ``key``; its route must not clash)."""
        suffix = ".json" if json_text else ".yaml"
        path = self._path(key, suffix)
        source = str(path) if path is not None else f"{key}{suffix}"
        workflow = load_workflow_text(text, source=source, env=os.environ, nodes=self.engine.nodes)
        if workflow.key != key:
            raise DefinitionError(source, "key", f"the key in the URL ({key!r})", workflow.key)
        check_conflicts(workflow, [w for w in self.engine.workflows.values() if w.key != key])
        return workflow

    async def put(self, key: str, text: str, *, json_text: bool) -> tuple[Workflow, bool]:
        """Create or replace workflow ``key``; returns it and whether it is new.
        Raises DefinitionError."""
        async with self._lock:
            workflow = self.validate(key, text, json_text=json_text)
            old = self.engine.workflows.get(key)
            await self._write(workflow, old)
            await self._apply(workflow)
            return workflow, old is None

    async def delete(self, key: str) -> None:
        """Remove workflow ``key`` (running executions finish). Raises NotFound."""
        async with self._lock:
            old = self.engine.workflows.get(key)
            if old is None:
                raise NotFound(f"there is no workflow '{key}'")
            await self._remove_file(old)
            await self.engine.apply(w for w in self.engine.workflows.values() if w.key != key)
            await self.engine.definitions_changed()

    async def set_enabled(self, key: str, *, enabled: bool) -> Workflow:
        """Enable or disable workflow ``key``, its definition text changed to match.
        Raises NotFound."""
        async with self._lock:
            old = self.engine.workflows.get(key)
            if old is None:
                raise NotFound(f"there is no workflow '{key}'")
            if old.enabled == enabled:
                return old
            json_text = old.source.endswith(".json")
            text = with_enabled(old.text, enabled=enabled, json_text=json_text)
            source = old.source if self._in_folder(old.source) else None
            if source is None:
                path = self._path(key, ".json" if json_text else ".yaml")
                source = old.source if path is None else str(path)
            workflow = load_workflow_text(
                text, source=source, env=os.environ, nodes=self.engine.nodes
            )
            await self._write(workflow, old)
            await self._apply(workflow)
            return workflow

    async def _apply(self, workflow: Workflow) -> None:
        current = dict(self.engine.workflows)
        current[workflow.key] = workflow
        await self.engine.apply(current.values())
        await self.engine.definitions_changed()

    async def _write(self, workflow: Workflow, old: Workflow | None) -> None:
        if not self._in_folder(workflow.source):
            return
        path = Path(workflow.source)
        if old is not None and old.source != workflow.source:
            await self._remove_file(old)

        def write() -> None:
            partial = path.with_name(f".{path.name}.tmp")
            partial.write_text(workflow.text, encoding="utf-8")
            os.replace(partial, path)

        await trio.to_thread.run_sync(write)

    def _in_folder(self, source: str) -> bool:
        # Only files of the workflows folder are written: a source may name anything.
        folder = self.engine.folder
        return folder is not None and Path(source).parent.resolve() == folder.resolve()

    async def _remove_file(self, workflow: Workflow) -> None:
        if self._in_folder(workflow.source):
            path = Path(workflow.source)
            await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))


def with_enabled(text: str, *, enabled: bool, json_text: bool) -> str:
    """``text`` with its top-level ``enabled`` set; YAML comments and layout are kept
    when the definition is in block style."""
    if json_text:
        data = json.loads(text)
        data["enabled"] = enabled
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    line = f"enabled: {'true' if enabled else 'false'}"
    if _ENABLED_LINE.search(text):
        changed = _ENABLED_LINE.sub(line, text, count=1)
    elif _KEY_LINE.search(text):
        changed = _KEY_LINE.sub(lambda m: f"{m.group(0)}\n{line}", text, count=1)
    else:
        changed = ""
    parsed = yaml.safe_load(changed) if changed else None
    if isinstance(parsed, Mapping) and parsed.get("enabled") is enabled:
        return changed
    # Flow style ({key: ..., enabled: ...}) or something the lines did not catch.
    data = yaml.safe_load(text)
    data["enabled"] = enabled
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


_EDITORS: weakref.WeakKeyDictionary[Engine, WorkflowEditor] = weakref.WeakKeyDictionary()


def workflow_editor(engine: Engine) -> WorkflowEditor:
    """The one editor of ``engine`` (shared by the API and the UI)."""
    editor = _EDITORS.get(engine)
    if editor is None:
        editor = _EDITORS[engine] = WorkflowEditor(engine)
    return editor


def workflow_json(
    workflow: Workflow,
    stats: WorkflowStatistics | None = None,
    *,
    definition: bool = False,
    errors: tuple[DefinitionError, ...] = (),
) -> dict[str, Any]:
    """A workflow as the admin API shows it; ``definition`` adds its source text.
    ``errors`` are its file's, when the file no longer validates (this version, loaded
    before, keeps serving): the workflow is then ``invalid``."""
    trigger = workflow.trigger
    document: dict[str, Any] = {
        "key": workflow.key,
        "title": workflow.title,
        "enabled": workflow.enabled,
        "source": workflow.source,
        "trigger": {
            "path": trigger.path,
            "methods": list(trigger.methods),
            "mode": trigger.mode,
        },
        "nodes": sum(1 for _ in workflow.walk()),
        "statistics": None,
        "invalid": bool(errors),
        "errors": [error_json(e) for e in errors],
    }
    if stats is not None:
        document["statistics"] = {
            "queued": stats.queue.depth,
            "running": stats.running,
            "completed": stats.completed,
            "failed": stats.failed,
            "cancelled": stats.cancelled,
            "timed_out": stats.timed_out,
        }
    if definition:
        document["format"] = "json" if workflow.source.endswith(".json") else "yaml"
        document["definition"] = workflow.text
    return document


def error_json(error: DefinitionError) -> dict[str, str]:
    """A definition error as the admin API shows it."""
    return {
        "source": error.source,
        "field": error.path,
        "expected": error.expected,
        "message": str(error),
    }


def file_errors(engine: Engine, workflow: Workflow) -> tuple[DefinitionError, ...]:
    """The errors of ``workflow``'s file at the last reload (empty when it loaded)."""
    return tuple(e for e in engine.load_errors if e.source == workflow.source)


def _stats(engine: Engine) -> dict[str, WorkflowStatistics]:
    return {stats.workflow: stats for stats in engine.statistics().workflows}


def definition_problem(exc: DefinitionError) -> Response:
    """422 naming the field path, what was expected and the source."""
    return problem_response(
        422,
        "Invalid workflow definition",
        str(exc),
        field=exc.path,
        expected=exc.expected,
        source=exc.source,
    )


@workflows_api.get("/api/workflows")
async def list_workflows() -> Response:
    engine = current_engine()
    stats = _stats(engine)
    items = [
        workflow_json(w, stats.get(w.key), errors=file_errors(engine, w))
        for w in sorted(engine.workflows.values(), key=lambda w: w.key)
    ]
    errors = [error_json(e) for e in engine.load_errors]
    return json_response({"workflows": items, "cursor": None, "errors": errors})


@workflows_api.get("/api/workflows/<key>")
async def show_workflow(key: str) -> Response:
    engine = current_engine()
    workflow = engine.workflows.get(key)
    if workflow is None:
        return problem_response(404, "Not found", f"there is no workflow '{key}'")
    stats = engine.workflow_statistics(key)
    errors = file_errors(engine, workflow)
    return json_response(workflow_json(workflow, stats, definition=True, errors=errors))


@workflows_api.put("/api/workflows/<key>")
async def put_workflow(key: str) -> Response:
    raw = await request.get_data(cache=False)
    assert isinstance(raw, bytes)
    if len(raw) > MAX_DEFINITION:
        return problem_response(413, "Payload too large", "a definition is at most 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return problem_response(400, "Bad request", "a definition must be UTF-8 text")
    json_text = (request.mimetype or "") in JSON_TYPES
    editor = workflow_editor(current_engine())
    try:
        if request.args.get("dry_run", "").lower() in ("1", "true", "yes"):
            workflow = editor.validate(key, text, json_text=json_text)
            return json_response({**workflow_json(workflow), "valid": True})
        workflow, created = await editor.put(key, text, json_text=json_text)
    except DefinitionError as exc:
        return definition_problem(exc)
    response = json_response(workflow_json(workflow, definition=True), 201 if created else 200)
    response.headers["location"] = f"/api/workflows/{key}"
    return response


@workflows_api.delete("/api/workflows/<key>")
async def delete_workflow(key: str) -> Response:
    try:
        await workflow_editor(current_engine()).delete(key)
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    return Response(b"", status=204)


@workflows_api.patch("/api/workflows/<key>")
async def patch_workflow(key: str) -> Response:
    body = await request.get_json(force=True, silent=True)
    if (
        not isinstance(body, dict)
        or set(body) != {"enabled"}
        or not isinstance(body["enabled"], bool)
    ):
        return problem_response(
            422,
            "Invalid change",
            'send {"enabled": true} or {"enabled": false}',
            field="enabled" if isinstance(body, dict) else "",
        )
    try:
        workflow = await workflow_editor(current_engine()).set_enabled(key, enabled=body["enabled"])
    except NotFound as exc:
        return problem_response(404, "Not found", str(exc))
    return json_response(workflow_json(workflow, current_engine().workflow_statistics(key)))


def version_json(
    version: WorkflowVersionRecord, current: Workflow | None, *, definition: bool = False
) -> dict[str, Any]:
    """A stored definition as the admin API shows it; ``current`` (the loaded workflow,
    if any) tells whether it is the one in force; ``definition`` adds its text."""
    document: dict[str, Any] = {
        "workflow": version.workflow,
        "version": version.version,
        "digest": version.digest,
        "created_at": version.created_at,
        "current": current is not None and definition_digest(current.text) == version.digest,
        "format": definition_format(version.source),
    }
    if definition:
        document["definition"] = version.source
    return document


def _positive(name: str, raw: str | None, *, upto: int | None = None) -> int | None:
    """Query parameter ``name`` as a whole number from 1 (to ``upto``); None if absent.
    Raises ValueError with the message a 400 answer gives."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) < 1 or (upto is not None and int(raw) > upto):
        bound = f" to {upto}" if upto is not None else ""
        raise ValueError(f"{name} must be a whole number from 1{bound}, got {raw!r}")
    return int(raw)


@workflows_api.get("/api/workflows/<key>/versions")
async def list_versions(key: str) -> Response:
    engine = current_engine()
    try:
        limit = _positive("limit", request.args.get("limit"), upto=MAX_LIMIT) or 50
        cursor = _positive("cursor", request.args.get("cursor"), upto=MAX_VERSION)
    except ValueError as exc:
        return problem_response(400, "Bad query", str(exc))
    page = await engine.store.list_workflow_versions(key, limit=limit, cursor=cursor)
    current = engine.workflows.get(key)
    if not page.items and current is None and cursor is None:
        return problem_response(404, "Not found", f"there is no workflow '{key}'")
    return json_response(
        {"versions": [version_json(v, current) for v in page.items], "cursor": page.cursor}
    )


@workflows_api.get("/api/workflows/<key>/versions/<int:number>")
async def show_version(key: str, number: int) -> Response:
    engine = current_engine()
    version = None
    if number <= MAX_VERSION:
        version = await engine.store.get_workflow_version(key, number)
    if version is None:
        return problem_response(404, "Not found", f"workflow '{key}' has no version {number}")
    return json_response(version_json(version, engine.workflows.get(key), definition=True))
