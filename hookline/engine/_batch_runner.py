"""Carrying out one workflow's ``batch`` windows for its runner.

:mod:`._batch` decides which executions make a batch and when it closes; this module
forms each closed batch in the store (:class:`~hookline.store._batching.FormBatch`, one
transaction) and carries the result out on the live handles: the batch's execution
(its first member) goes on to ``throttle``, priority and concurrency with
``$context.batch``; the other members end ``succeeded`` with
``{"batched_into": <its id>}``. A member is a queued execution until then, so a restart
finds it queued and it joins a window again; a batch formed before a restart resumes as
one execution (its stored context holds ``batch``).

A sync sender of a batched workflow hears 202 + Location as soon as its delivery joins
a window: its execution cannot answer before the batch is full or times out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from ..errors import StoreClosed, StoreError
from ..store._batching import FormBatch, FormedBatch, is_batch, member_output
from ..store._ops import SaveAnswer
from ._answers import ExecutionOutcome, still_running_answer
from ._batch import Batches
from ._definition import BatchRule
from ._handle import ExecutionHandle

if TYPE_CHECKING:
    from ._workflow_runner import WorkflowRunner

__all__ = ["Batcher"]

log = logging.getLogger("hookline.engine")

# How long members whose batch could not be formed (the store failed) wait before they
# join a window again.
FORM_RETRY = 1.0


class Batcher:
    """The open ``batch`` windows of one runner, and the batches being formed."""

    def __init__(
        self, runner: WorkflowRunner, rule: BatchRule, key: Callable[[ExecutionHandle], str]
    ) -> None:
        self.runner = runner
        self.rule = rule
        self._key = key
        self.windows: Batches[ExecutionHandle] = Batches(rule.size, rule.timeout)
        self._forming = 0
        self._formed = trio.Event()  # set whenever no batch is being formed
        self._formed.set()

    @property
    def waiting(self) -> int:
        """Executions in open batches (or in batches being formed)."""
        return len(self.windows) + self._forming

    def next_due(self) -> float:
        return self.windows.next_due()

    def holds(self, handle: ExecutionHandle, now: float, nursery: trio.Nursery) -> bool:
        """Put ``handle`` in its key's window unless it is a batch's execution already
        (or started before a restart: it was one); True when it joined a window."""
        if handle.started_at is not None or is_batch(handle.template_context()):
            return False
        self._answer_accepted(handle, nursery)
        full = self.windows.offer(self._key(handle), handle, now, rank=handle.id)
        if full is not None:
            nursery.start_soon(self._form, full)
        return True

    def close_due(self, now: float, nursery: trio.Nursery) -> None:
        """Form every batch whose window timed out by ``now``."""
        for members in self.windows.close_due(now):
            nursery.start_soon(self._form, members)

    async def close_all(self) -> bool:
        """The workflow is retired and its queue drained: form every open batch now,
        and wait for those being formed, so that their executions run before the
        runner ends. False when there was none."""
        closing = self.windows.close_all()
        if not closing and self._formed.is_set():
            return False
        for members in closing:
            await self._form(members)
        await self._formed.wait()
        return True

    def discard(self, handle: ExecutionHandle) -> None:
        """``handle`` was cancelled: it leaves its window."""
        self.windows.discard(handle)

    def waiting_for(self, handle: ExecutionHandle, now: float) -> str | None:
        """What a member waits for, in words; None if no window holds it."""
        due = self.windows.due_of(handle)
        if due is None:
            return None
        held = self.windows.held(handle)
        return (
            f"batch: {held} of {self.rule.size} deliveries; starts when full or in "
            f"{max(0.0, due - now):.1f} s"
        )

    def _answer_accepted(self, handle: ExecutionHandle, nursery: trio.Nursery) -> None:
        """A sync sender hears 202 + Location now (recorded for its retries)."""
        if handle.workflow.trigger.mode != "sync" or handle.answer is not None:
            return
        answer = still_running_answer(handle.id)
        handle.set_answer(answer)
        workflow = handle.workflow.key
        nursery.start_soon(
            self._record, SaveAnswer(handle.delivery.id, answer, workflow, handle.idempotency_key)
        )

    async def _record(self, save: SaveAnswer) -> None:
        with contextlib.suppress(StoreClosed):  # stopping: answered again when it resumes
            await self.runner.store.post(save)

    async def _form(self, members: list[ExecutionHandle]) -> None:
        """Form the batch of ``members`` in the store, then carry it out here."""
        runner = self.runner
        live: dict[str, tuple[ExecutionHandle, str | None]] = {}
        for handle in members:
            # Out of the live ones while it forms: a cancel now finds it gone (409).
            if handle.id in runner.handles:
                live[handle.id] = (handle, runner.untrack(handle.id))
        if not live:
            return
        self._forming += len(live)
        if self._formed.is_set():
            self._formed = trio.Event()
        try:
            # Shielded: once queued it commits, and what it claimed must be run here.
            with trio.CancelScope(shield=True):
                formed = await runner.store.write(
                    FormBatch(tuple(live), finished_at=runner.services.clock())
                )
        except StoreError:
            log.exception("could not form a batch of workflow '%s'", runner.workflow.key)
            failed = True
        else:
            failed = False
        finally:
            self._forming -= len(live)
            if not self._forming:
                self._formed.set()
        if failed:
            await self._again(live)
        else:
            self._carry_out(formed, live)

    def _carry_out(
        self, formed: FormedBatch | None, live: dict[str, tuple[ExecutionHandle, str | None]]
    ) -> None:
        runner = self.runner
        claimed = set() if formed is None else set(formed.members)
        for id_, (handle, _) in live.items():
            if id_ not in claimed and not handle.finished:
                # Not ours to batch: another process holds it now, or it ended.
                why = "another process batches this execution now"
                handle.set_outcome(
                    ExecutionOutcome(id_, runner.workflow.key, "cancelled", None, why)
                )
        if formed is None:
            return
        head, order_key = live[formed.execution_id]
        extra = {**head.delivery.extra, "batch": list(formed.batch)}
        head.delivery = attrs.evolve(head.delivery, extra=extra)
        head.context = None  # made again from the delivery, with ``batch``
        runner.track(head, order_key)
        runner.make_ready(head)
        output = member_output(formed)
        for id_ in formed.members[1:]:
            outcome = ExecutionOutcome(id_, runner.workflow.key, "succeeded", output)
            live[id_][0].set_outcome(outcome)
            runner.count(outcome)

    async def _again(self, live: dict[str, tuple[ExecutionHandle, str | None]]) -> None:
        """The store failed: the members stay queued there; they join a window again
        shortly (or at the next start, if this one stops first)."""
        await trio.sleep(FORM_RETRY)
        for handle, order_key in live.values():
            self.runner.track(handle, order_key)
            self.runner.make_ready(handle)
