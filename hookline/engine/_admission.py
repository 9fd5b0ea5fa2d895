"""What admitting a delivery decides, in pure code: its template roots, its order key,
the records its acceptance commits, and the answer a duplicate gets.

The :class:`~hookline.engine._workflow_supervisor.WorkflowSupervisor` carries these out
(store writes, queue slots); nothing here waits or touches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..nodes._base import Renderable
from ..store._ops import AcceptDelivery, IdempotencyClaim
from ..store._records import Answer, ExecutionRecord, IdempotencyRecord
from ._answers import accepted_answer
from ._definition import Workflow
from ._delivery import Delivery
from ._handle import ExecutionHandle
from ._idempotency import replay
from ._inline_run import InlineRun


@attrs.frozen
class Admission:
    """A delivery let in: a new execution, or the replayed answer of an earlier one."""

    execution_id: str
    handle: ExecutionHandle | None
    answer: Answer | None
    replayed: bool = False
    #: What the delivery correlates on (``trigger.correlate``), for ``cancel_on``.
    correlation: str | None = None


def template_roots(
    workflow: Workflow,
    context: dict[str, Any],
    execution_id: str | None,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """The template variables of an execution before any node ran (``$system`` is
    added per job)."""
    return {
        "context": context,
        "nodes": {},
        "scopes": {},
        "execution": {"id": execution_id},
        "workflow": {"key": workflow.key, "title": workflow.title},
        "env": env,  # read-only, and the engine's own: shared, never copied
    }


def rate_key(template: Renderable | None, roots: Mapping[str, Any]) -> str:
    """The key a ``rate_limit``/``throttle`` counts under: its template rendered as text
    ("" without one, or when it renders empty: one rate for the whole workflow)."""
    if template is None:
        return ""
    value = template.render(roots)
    return "" if value is None else str(value)


def cancel_keys(
    workflow: Workflow, context: dict[str, Any], execution_id: str, env: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """What an execution's ``cancel_on`` rules match: (event workflow, value) pairs."""
    if not workflow.cancel_on:
        return ()
    roots = template_roots(workflow, context, execution_id, env)
    return tuple(sorted({(rule.event, rate_key(rule.match, roots)) for rule in workflow.cancel_on}))


def priority(workflow: Workflow, roots: Mapping[str, Any]) -> int:
    """The ``priority`` of a new execution: the template's integer (a numeric string
    counts); 0 without one, or for anything else, so that what a sender writes can
    reorder the queue only within the integers the workflow's author allows."""
    template = workflow.priority
    if template is None:
        return 0
    value = template.render(roots)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return 0
    return value if type(value) is int else 0


def order_key(workflow: Workflow, roots: Mapping[str, Any]) -> str | None:
    """The ``concurrency.order_by`` key; None when the workflow has none or it renders
    empty (then the execution is not ordered)."""
    template = workflow.concurrency.order_by
    if template is None:
        return None
    value = template.render(roots)
    return None if value is None or value == "" else str(value)


def debounce_key(workflow: Workflow, roots: Mapping[str, Any], execution_id: str) -> str | None:
    """The ``debounce`` key of a new execution (:func:`rate_key`, rendered as the
    runner renders it: with its id); None when the workflow is not debounced."""
    rule = workflow.debounce
    if rule is None:
        return None
    return rate_key(rule.key, {**roots, "execution": {"id": execution_id}})


def accept_op(
    workflow: Workflow,
    delivery: Delivery,
    execution_id: str,
    *,
    now: float,
    key: str | None,
    body_hash: str,
    roots: dict[str, Any],
    version: int | None,
    reason: str | None = None,
    ran: InlineRun | None = None,
) -> AcceptDelivery:
    """The one write that accepts ``delivery``: its record, its new ``queued``
    execution, the idempotency claim of ``key`` and, in async mode, the immediate
    answer. ``roots`` (the intake template roots) get the execution id.

    With ``ran`` (a sync execution run whole in memory), the execution is stored
    finished, with its jobs, and the answer is the one its sender gets."""
    ordered_by = order_key(workflow, roots)
    answer = None if ran is None else ran.answer
    if workflow.trigger.mode == "async":
        roots["execution"] = {"id": execution_id}
        answer = accepted_answer(workflow, execution_id, roots)
    claim = None
    if key is not None:
        claim = IdempotencyClaim(key, body_hash, now + workflow.trigger.idempotency.ttl)
    record = delivery.record(
        "accepted",
        status=answer.status if answer is not None else None,
        execution_id=execution_id,
        reason=reason,
    )
    execution = ExecutionRecord(
        id=execution_id,
        workflow=workflow.key,
        delivery_id=delivery.id,
        status="queued" if ran is None else ran.status,
        created_at=now,
        started_at=None if ran is None else ran.started_at,
        finished_at=None if ran is None else ran.finished_at,
        context={**roots["context"], "headers": record.headers},
        output=None if ran is None else ran.output,
        error=None if ran is None else ran.error,
        order_key=ordered_by,
        workflow_version=version,
        flow_key=debounce_key(workflow, roots, execution_id),
    )
    return AcceptDelivery(record, execution, claim, answer, () if ran is None else ran.jobs)


def replayed(earlier: IdempotencyRecord, body_hash: str) -> Admission:
    """The admission of a duplicate of ``earlier``: its first answer again.

    Raises IdempotencyConflict (still running) or IdempotencyMismatch (another body).
    """
    answer = replay(earlier, body_hash)
    return Admission(earlier.execution_id, None, answer, replayed=True)
