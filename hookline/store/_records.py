"""The store's vocabulary: frozen records of deliveries, executions, jobs and answers.

Everything the engine persists or reads back is one of these classes; nothing is passed
around as a bare dict. Payload fields (``context``, ``output``, ``body``) hold plain
Python values (dict, list, str, number, bool, None), stored as msgpack blobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

import attrs

from ..definition import JSON

ExecutionStatus = Literal[
    "queued", "throttled", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"
]
JobStatus = Literal["running", "succeeded", "failed", "cancelled", "timed_out", "skipped"]
Verdict = Literal["accepted", "rejected", "duplicate"]

FINISHED_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
#: An execution not finished yet: ``queued`` (``throttled``: queued, held back by
#: ``throttle`` until its booked start), ``running``, or ``waiting`` (started, parked on
#: a ``wait`` node: it holds no concurrency slot). Never pruned; cancellable.
LIVE_STATUSES: tuple[ExecutionStatus, ...] = ("queued", "throttled", "running", "waiting")
#: The live executions that a restart (or the process adopting a dead one's) queues
#: again: all but ``waiting`` ones, which go on when their event or timeout comes.
RESUMABLE_STATUSES: tuple[ExecutionStatus, ...] = ("queued", "throttled", "running")

T = TypeVar("T")


@attrs.frozen
class Answer:
    """An HTTP answer as sent to a webhook sender, kept so a retry gets it again."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@attrs.frozen
class DeliveryRecord:
    """One received request, accepted or not. Secret headers are already redacted."""

    id: str
    workflow: str | None
    received_at: float
    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, Any]
    body: bytes
    remote_addr: str
    verdict: Verdict
    reason: str | None = None
    status: int | None = None
    execution_id: str | None = None


@attrs.frozen
class ExecutionRecord:
    """One run of a workflow. ``context`` is the ``$context`` object it started from.

    ``order_key`` is the rendered ``concurrency.order_by`` of its workflow (None: not
    ordered); executions with the same key run one at a time, in creation order, also
    after a restart. ``flow_key`` is the rendered ``debounce`` key of a debounced
    workflow's execution (None otherwise): processes sharing a store find by it the
    newer executions that supersede one.
    """

    id: str
    workflow: str
    delivery_id: str | None
    status: ExecutionStatus
    created_at: float
    context: Mapping[str, Any]
    started_at: float | None = None
    finished_at: float | None = None
    output: JSON = None
    error: str | None = None
    order_key: str | None = None
    #: The :class:`WorkflowVersionRecord` number of the definition it runs with (None:
    #: not known, as for executions stored before versions were kept).
    workflow_version: int | None = None
    flow_key: str | None = None


@attrs.frozen
class JobRecord:
    """One run (attempt) of one node within an execution.

    A job is known by (execution_id, node, scope, attempt). ``scope`` tells the runs of
    a node inside loops apart: ``""`` outside any loop, ``each[3]`` in iteration 3 of
    loop ``each``, ``each[3]/inner[0]`` nested.
    """

    execution_id: str
    node: str
    type: str
    status: JobStatus
    attempt: int
    started_at: float
    finished_at: float | None = None
    output: JSON = None
    error: str | None = None
    log: tuple[str, ...] = ()
    scope: str = ""


@attrs.frozen
class WaitRecord:
    """A job of an execution parked on a ``wait`` node: what it waits for, and until
    when (wall time). Known by (execution_id, node, scope); ``attempt`` and
    ``started_at`` are its job's, so that ending the wait records that job."""

    execution_id: str
    node: str
    scope: str
    attempt: int
    workflow: str
    event: str
    match: str
    until: float
    started_at: float | None = None


@attrs.frozen
class IdempotencyRecord:
    """The first delivery seen for an idempotency key, scoped by workflow.

    ``answer`` is None while the first delivery is still being processed.
    """

    workflow: str
    key: str
    body_hash: str
    execution_id: str
    created_at: float
    expires_at: float
    answer: Answer | None = None


@attrs.frozen
class WorkflowRecord:
    """A workflow definition as loaded, kept with its source text."""

    key: str
    title: str
    enabled: bool
    source: str
    digest: str
    updated_at: float


@attrs.frozen
class WorkflowVersionRecord:
    """One distinct definition a workflow has had, numbered 1, 2, ... per workflow in
    the order they were first saved. The same text saved again is the same version."""

    workflow: str
    version: int
    digest: str
    source: str
    created_at: float


@attrs.frozen
class Page(Generic[T]):
    """One page of a list; pass ``cursor`` back for the next page (None: no more)."""

    items: tuple[T, ...]
    cursor: str | None
