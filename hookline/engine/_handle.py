"""The handle of a live execution: what admission gives its callers to wait on its
answer and outcome, and to cancel it."""

from __future__ import annotations

from typing import Any, Protocol

import trio

from ..store._records import Answer
from ._answers import ExecutionOutcome
from ._definition import Workflow
from ._delivery import Delivery


class Cancellable(Protocol):
    """What a handle's cancel reaches: a cancel scope, or the execution's driver."""

    def cancel(self) -> None: ...


class ExecutionHandle:
    """A live execution as its callers hold it: its answer, its outcome, its cancel.

    ``resumed`` marks an execution that ran before (found unfinished at start-up, or
    retried from its failed node): it reuses the outputs of the jobs that succeeded.
    ``started_at`` is when a resumed execution first started (None: it never did, and
    it records its start when it runs now). ``context`` is the delivery's ``$context``
    when admission built it already. ``priority`` orders the workflow's queue (higher
    first) when it has a ``priority``. ``parked``: its execution waits for an event (no
    task runs it); its waiters go on waiting, for the end after it resumes.
    """

    def __init__(
        self,
        execution_id: str,
        workflow: Workflow,
        delivery: Delivery,
        *,
        idempotency_key: str | None = None,
        resumed: bool = False,
        started_at: float | None = None,
        context: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> None:
        self.id = execution_id
        self.priority = priority
        self.workflow = workflow
        self.delivery = delivery
        self.idempotency_key = idempotency_key
        self.resumed = resumed
        self.started_at = started_at
        self.context = context
        self.answer: Answer | None = None
        self.outcome: ExecutionOutcome | None = None
        self.cancel_requested = False
        self.parked = False
        # Why it was cancelled, when not on request (superseded by a debounce).
        self.cancel_reason: str | None = None
        self._scope: Cancellable | None = None
        self._answered = trio.Event()
        self._finished = trio.Event()
        # Set by whichever comes first: what a sync sender waits for.
        self._settled = trio.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def template_context(self) -> dict[str, Any]:
        """The execution's ``$context``: admission's, or built again from its delivery."""
        return self.context if self.context is not None else self.delivery.context()

    def cancel(self) -> None:
        """Cancel the execution: queued, it never starts; running, its jobs are cancelled."""
        self.cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def attach(self, scope: Cancellable) -> None:
        """Let :meth:`cancel` reach ``scope`` from now on (at once if it came already)."""
        self._scope = scope
        if self.cancel_requested:
            scope.cancel()

    def detach(self, scope: Cancellable) -> None:
        if self._scope is scope:
            self._scope = None

    def set_answer(self, answer: Answer) -> bool:
        """Keep the first answer (a ``response`` node or the end); False if already set."""
        if self._answered.is_set():
            return False
        self.answer = answer
        self._answered.set()
        self._settled.set()
        return True

    def park(self) -> None:
        """The execution parked: this handle leaves its runner, and comes back (if
        still held) when the execution resumes."""
        self.parked = True
        self._scope = None

    def unpark(self, started_at: float | None) -> None:
        """The execution resumes from its records (``started_at``: its first start)."""
        self.parked = False
        self.resumed = True
        self.started_at = started_at

    def set_outcome(self, outcome: ExecutionOutcome) -> None:
        self.outcome = outcome
        self._finished.set()
        self._settled.set()

    async def wait_answer(self) -> Answer:
        await self._answered.wait()
        assert self.answer is not None
        return self.answer

    async def wait_answered_or_finished(self) -> None:
        """Return once the execution answered or ended, whichever comes first."""
        await self._settled.wait()

    async def wait_finished(self) -> ExecutionOutcome:
        await self._finished.wait()
        assert self.outcome is not None
        return self.outcome
