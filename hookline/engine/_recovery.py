"""Rebuilding what an execution started from, after a restart, a retry or for a replay.

Pure code: an :class:`~hookline.store._records.ExecutionRecord` keeps the ``$context``
its execution started from; these functions turn it back into the :class:`Delivery` the
engine runs executions with, and decide which stored executions a starting engine
resumes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ..errors import ExecutionConflict
from ..store._records import ExecutionRecord, ExecutionStatus
from ._delivery import Delivery

# The statuses an operator may retry an execution from.
RETRYABLE: tuple[ExecutionStatus, ...] = ("failed", "timed_out", "cancelled")

# The keys Delivery.context() builds itself; any other key of a stored context came
# from Delivery.extra and goes back there.
_OWN_KEYS = frozenset(
    {
        "data",
        "headers",
        "query",
        "params",
        "method",
        "path",
        "remote_addr",
        "raw",
        "files",
        "delivery_id",
        "received_at",
    }
)


def _timestamp(value: Any, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def stored_delivery(record: ExecutionRecord, body: bytes | None = None) -> Delivery:
    """The delivery ``record`` started from, rebuilt from its stored context.

    ``body`` is the raw body (from the delivery record); without it, the body is the
    context's ``raw`` text. Secret headers stay redacted: they were never stored, so a
    resumed execution reads ``[redacted]`` where the first run read the credential.
    """
    context = _mapping(record.context)
    raw = context.get("raw")
    text = raw if isinstance(raw, str) else ""
    delivery_id = context.get("delivery_id")
    return Delivery(
        id=str(delivery_id) if delivery_id else (record.delivery_id or record.id),
        workflow=record.workflow,
        received_at=_timestamp(context.get("received_at"), record.created_at),
        method=str(context.get("method") or "POST"),
        path=str(context.get("path") or ""),
        headers={str(k): str(v) for k, v in _mapping(context.get("headers")).items()},
        query=_mapping(context.get("query")),
        params={str(k): str(v) for k, v in _mapping(context.get("params")).items()},
        body=body if body is not None else text.encode(),
        data=context.get("data"),
        text=text,
        files={str(k): _mapping(v) for k, v in _mapping(context.get("files")).items()},
        remote_addr=str(context.get("remote_addr") or ""),
        extra={k: v for k, v in context.items() if k not in _OWN_KEYS},
    )


@attrs.frozen
class ResumePlan:
    """Which unfinished executions a starting engine queues again (oldest first), and
    which it leaves as they are because their workflow is gone or disabled."""

    resume: tuple[ExecutionRecord, ...]
    left: tuple[ExecutionRecord, ...]


def plan_resume(records: Iterable[ExecutionRecord], runnable: Callable[[str], bool]) -> ResumePlan:
    """Split stored ``queued``/``running`` executions by ``runnable(workflow key)``,
    each part ordered by creation (id order: ids sort by creation time)."""
    resume: list[ExecutionRecord] = []
    left: list[ExecutionRecord] = []
    for record in sorted(records, key=lambda r: (r.id, r.created_at)):
        (resume if runnable(record.workflow) else left).append(record)
    return ResumePlan(tuple(resume), tuple(left))


def not_retryable(record: ExecutionRecord) -> ExecutionConflict:
    """The error for a retry of ``record`` while it is not in a RETRYABLE status."""
    return ExecutionConflict(
        f"execution {record.id} is {record.status}: only failed, timed out and "
        "cancelled executions can be retried"
    )
