"""Rebuilding what an execution started from, after a restart, a retry or for a replay.

An :class:`~hookline.store._records.ExecutionRecord` keeps the ``$context`` its
execution started from, less the body (its delivery record keeps that, exactly as
received); these functions turn the two back into the :class:`Delivery` the engine runs
executions with, and decide which stored executions a starting engine resumes. All but
:func:`recovered_delivery`, which reads the delivery record, are pure code.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from ..errors import ExecutionConflict
from ..store._records import DeliveryRecord, ExecutionRecord, ExecutionStatus
from ._delivery import Delivery, file_info

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
        "raw_base64",
        "files",
        "form",
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


class DeliveryReader(Protocol):
    """What :func:`recovered_delivery` needs of the store."""

    async def get_delivery(self, id: str) -> DeliveryRecord | None: ...


async def recovered_delivery(store: DeliveryReader, record: ExecutionRecord) -> Delivery:
    """The delivery ``record`` started from, its body read back from its delivery record
    (see :func:`stored_delivery`). A context that kept its body itself (written before
    bodies were left to the delivery record) needs no read."""
    context = record.context if isinstance(record.context, Mapping) else {}
    body = None
    if "raw" not in context and "raw_base64" not in context and record.delivery_id:
        delivery = await store.get_delivery(record.delivery_id)
        body = delivery.body if delivery is not None else None
    return stored_delivery(record, body)


def stored_delivery(record: ExecutionRecord, body: bytes | None = None) -> Delivery:
    """The delivery ``record`` started from, rebuilt from its stored context.

    ``body`` is the raw body (from the delivery record): ``$context.raw`` and
    ``raw_base64`` are worked out from it as on the first run. Without it, the body is
    the context's ``raw_base64`` or ``raw`` when it kept one (contexts stored before
    bodies were left out), else empty. Secret headers stay redacted: they were never
    stored, so a resumed execution reads ``[redacted]`` where the first run read the
    credential.
    """
    context = _mapping(record.context)
    text = None
    if body is None:
        body, text = _stored_body(context)
    delivery_id = context.get("delivery_id")
    form = context.get("form")
    return Delivery(
        id=str(delivery_id) if delivery_id else (record.delivery_id or record.id),
        workflow=record.workflow,
        received_at=_timestamp(context.get("received_at"), record.created_at),
        method=str(context.get("method") or "POST"),
        path=str(context.get("path") or ""),
        headers={str(k): str(v) for k, v in _mapping(context.get("headers")).items()},
        query=_mapping(context.get("query")),
        params={str(k): str(v) for k, v in _mapping(context.get("params")).items()},
        body=body,
        data=context.get("data"),
        text=text,
        files={str(k): file_info(_mapping(v)) for k, v in _mapping(context.get("files")).items()},
        form=dict(form) if isinstance(form, Mapping) else None,
        remote_addr=str(context.get("remote_addr") or ""),
        extra={k: v for k, v in context.items() if k not in _OWN_KEYS},
    )


def _stored_body(context: Mapping[str, Any]) -> tuple[bytes, str | None]:
    """The body and its text kept in an old context, or nothing."""
    encoded = context.get("raw_base64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True), None
        except binascii.Error:
            pass
    raw = context.get("raw")
    if isinstance(raw, str):
        return raw.encode(), raw
    return b"", None


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
