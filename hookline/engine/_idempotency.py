"""Idempotency keys (DESIGN.md section 7): which key a delivery carries, and what a
repeated delivery is answered. Pure code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import IdempotencyConflict, IdempotencyMismatch
from ..store._records import Answer, IdempotencyRecord
from ._definition import Workflow
from ._delivery import Delivery

# First found wins. X-Gitlab-Event-UUID is deliberately absent: it repeats across chained hooks.
AUTOMATIC_HEADERS = (
    "idempotency-key",
    "webhook-id",
    "svix-id",
    "x-github-delivery",
    "x-shopify-webhook-id",
)

REPLAYED_HEADER = ("idempotent-replayed", "true")


def unquote(value: str) -> str:
    """A structured-header string value, quoted (``"abc"``) or not."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def idempotency_key(workflow: Workflow, delivery: Delivery, roots: Mapping[str, Any]) -> str | None:
    """The delivery's idempotency key, or None when it has none."""
    template = workflow.trigger.idempotency.key
    if template is not None:
        value = template.render(roots)
        return None if value in (None, "") else str(value)
    for name in AUTOMATIC_HEADERS:
        raw = delivery.headers.get(name)
        if raw:
            key = unquote(raw)
            if key:
                return key
    return None


def replay(record: IdempotencyRecord, body_hash: str) -> Answer:
    """The answer for a delivery whose key was seen before.

    Raises IdempotencyMismatch (422) when the body differs, IdempotencyConflict (409)
    while the first delivery is still being processed.
    """
    if record.body_hash != body_hash:
        raise IdempotencyMismatch(
            "this idempotency key was already used with a different request body"
        )
    if record.answer is None:
        raise IdempotencyConflict(
            f"a delivery with this idempotency key is still being processed "
            f"(execution {record.execution_id})",
            retry_after=1.0,
        )
    answer = record.answer
    return Answer(answer.status, (*answer.headers, REPLAYED_HEADER), answer.body)
