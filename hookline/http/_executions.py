"""Admin routes for executions and deliveries (DESIGN.md section 5).

Lists are pages, newest first, filtered by ``workflow``, ``status`` (executions) or
``verdict`` (deliveries) and by time (``since``, ``until``: ISO 8601 or seconds since
the epoch, both inclusive). An execution can be cancelled, replayed (a new execution
from the same delivery) or retried (continued from its failed node).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import attrs
from quart import Blueprint, Response, current_app, request

from .._ids import id_time
from ..engine._definition import Workflow
from ..engine._delivery import REDACTED, redact_headers
from ..engine._engine import Engine
from ..engine._loader import load_workflow_text
from ..engine._workflow_supervisor import Admission
from ..errors import DefinitionError, NotFound, Rejected
from ..store._records import FINISHED_STATUSES, DeliveryRecord, ExecutionRecord, JobRecord, Page
from ._responses import json_response, problem_response, rejection_response
from ._ui_tree import TreeRow, node_rows

__all__ = [
    "EXECUTION_STATUSES",
    "VERDICTS",
    "RanWith",
    "current_engine",
    "definition_digest",
    "definition_format",
    "delivery_json",
    "execution_json",
    "executions",
    "job_json",
    "parse_time",
    "ran_with",
]

executions = Blueprint("executions", __name__)

EXECUTION_STATUSES = ("queued", "running", *sorted(FINISHED_STATUSES))
VERDICTS = ("accepted", "rejected", "duplicate")
MAX_LIMIT = 500

_SECRET_QUERY = re.compile(r"token|secret|sig|passw|key|auth|code", re.IGNORECASE)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_LENGTH = 26
_RANDOM_BITS = 80

T = TypeVar("T")


class BadQuery(ValueError):
    """A list query parameter is invalid; answered 400."""


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


def definition_digest(text: str) -> str:
    """The digest a definition text is stored under (as the engine saves it)."""
    return hashlib.sha256(text.encode()).hexdigest()


def definition_format(text: str) -> Literal["json", "yaml"]:
    """``json`` for a definition written as a JSON object, else ``yaml``."""
    if text.lstrip().startswith("{"):
        try:
            return "json" if isinstance(json.loads(text), dict) else "yaml"
        except ValueError:
            pass
    return "yaml"


@functools.lru_cache(maxsize=64)
def _load_version(key: str, version: int, text: str) -> Workflow | None:
    # Cached: a live execution page reloads every second. Stored text never changes
    # under a (key, version), and the text is part of the cache key anyway.
    suffix = definition_format(text)
    try:
        return load_workflow_text(text, source=f"{key}@{version}.{suffix}", env=os.environ)
    except DefinitionError:
        # Secrets it named may be gone, or node types unregistered since.
        return None


@attrs.frozen
class RanWith:
    """The definition an execution's node tree is drawn from.

    ``version`` is the stored version the execution ran with (None: not recorded, as
    for executions from before versions were kept). ``changed``: the workflow's current
    definition is another one. ``fallback``: that version could not be used (not
    stored, or it no longer loads), so ``workflow`` is the current definition.
    ``workflow`` is None when the workflow is gone and nothing else could be used.
    """

    workflow: Workflow | None
    version: int | None = None
    changed: bool = False
    fallback: bool = False


async def ran_with(engine: Engine, record: ExecutionRecord) -> RanWith:
    """The definition ``record`` ran with: its stored version when that still loads,
    else the workflow's current definition. Never raises for a bad stored version."""
    current = engine.workflows.get(record.workflow)
    version = record.workflow_version
    if version is None:
        return RanWith(current)
    stored = await engine.store.get_workflow_version(record.workflow, version)
    if stored is None:
        return RanWith(current, version, fallback=True)
    if current is not None and definition_digest(current.text) == stored.digest:
        return RanWith(current, version)
    loaded = _load_version(record.workflow, version, stored.source)
    if loaded is None:
        return RanWith(current, version, changed=True, fallback=True)
    return RanWith(loaded, version, changed=True)


def parse_time(raw: str, name: str) -> float:
    """Seconds since the epoch from ``raw``: a number, or ISO 8601 (no zone: UTC).
    Raises BadQuery naming the parameter."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(
            f"{name} must be ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds, got {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _id_after(at: float) -> str:
    """The smallest id made after millisecond ``at``: a cursor that lists ids made at
    or before ``at`` (ids start with their creation time; see hookline._ids)."""
    value = (int(at * 1000) + 1) << _RANDOM_BITS
    chars = []
    for _ in range(_ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def page_args() -> tuple[int, str | None, float | None]:
    """``limit``, the effective ``cursor`` and ``since`` from the query string.

    ``until`` becomes a cursor (the smaller of it and a given ``cursor`` wins). Raises
    BadQuery for a bad limit, cursor or time.
    """
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    cursor = request.args.get("cursor") or None
    if cursor is not None:
        try:
            id_time(cursor)
        except ValueError:
            raise BadQuery(
                f"cursor must be a cursor from a previous page, got {cursor!r}"
            ) from None
        cursor = cursor.upper()
    until = request.args.get("until")
    if until:
        bound = _id_after(parse_time(until, "until"))
        cursor = bound if cursor is None else min(cursor, bound)
    since = request.args.get("since")
    return int(raw), cursor, None if not since else parse_time(since, "since")


def choice_arg(name: str, allowed: Sequence[str]) -> str | None:
    """Query parameter ``name``, which must be one of ``allowed`` when given."""
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise BadQuery(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def since_page(page: Page[T], since: float | None, at: Callable[[T], float]) -> Page[T]:
    """``page`` without the items older than ``since``; past them nothing newer can
    follow (pages go newest first), so the cursor ends."""
    if since is None:
        return page
    items = tuple(item for item in page.items if at(item) >= since)
    return page if len(items) == len(page.items) else Page(items, None)


async def list_execution_page(engine: Engine) -> Page[ExecutionRecord]:
    """The page of executions the request's query asks for. Raises BadQuery."""
    status = choice_arg("status", EXECUTION_STATUSES)
    limit, cursor, since = page_args()
    page = await engine.store.list_executions(
        workflow=request.args.get("workflow") or None, status=status, limit=limit, cursor=cursor
    )
    return since_page(page, since, lambda record: record.created_at)


async def list_delivery_page(engine: Engine) -> Page[DeliveryRecord]:
    """The page of deliveries the request's query asks for. Raises BadQuery."""
    verdict = choice_arg("verdict", VERDICTS)
    limit, cursor, since = page_args()
    page = await engine.store.list_deliveries(
        workflow=request.args.get("workflow") or None, verdict=verdict, limit=limit, cursor=cursor
    )
    return since_page(page, since, lambda record: record.received_at)


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
