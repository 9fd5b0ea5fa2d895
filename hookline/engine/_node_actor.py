"""The NodeActor: runs one node's jobs, each under its timeout, cancellable one by one."""

from __future__ import annotations

import logging
import math
import traceback

import trio

from ..definition import format_duration
from ..errors import NodeError
from ..nodes._base import ExecutionEnded, NodeResult, NodeSpec
from ..store._records import JobStatus
from ._actor import Actor
from ._job import JobTicket, RunningJob

Outcome = tuple[JobStatus, NodeResult | None, str | None]

log = logging.getLogger("hookline.engine")


def describe_failure(exc: BaseException) -> str:
    """A job's error text: the message of a NodeError, type and message otherwise."""
    if isinstance(exc, NodeError):
        return str(exc)
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return describe_failure(exc.exceptions[0])
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _not_a_result(value: object) -> Outcome:
    return "failed", None, f"the node returned {type(value).__name__}, not a NodeResult"


class NodeActor(Actor[JobTicket]):
    """One actor per node of a workflow: runs its jobs and counts them.

    An execution's driver runs jobs through :meth:`run_inline` (node types that never
    wait: no task, no cancel scope) or :meth:`run_job` (in a task of the execution,
    under the node's timeout and ``concurrency``). Either way a node raising, or
    returning something other than a NodeResult, is a failed job, never a crash.

    Jobs sent to the mailbox instead (the original protocol, kept for tests and tools)
    each run in their own task (up to the node's ``concurrency``) under
    ``trio.fail_after(node.timeout)``. A node raising is a failed job, never a crash of
    this actor. If the actor itself crashes, the jobs it was running end ``cancelled``
    (their executions see it at once) and its supervisor restarts it; jobs still in the
    mailbox are run by the restarted actor.
    """

    counts_own_jobs = True

    def __init__(self, workflow: str, node: NodeSpec, *, capacity: int = 256) -> None:
        super().__init__(f"{workflow}/{node.key}", capacity=capacity)
        self.node = node
        # No limiter at all without a limit: it would count every job for nothing.
        self._limiter = (
            trio.CapacityLimiter(node.concurrency) if node.concurrency is not None else None
        )
        self._nursery: trio.Nursery | None = None
        # Parking types (``wait``) never await either: their driver runs them inline.
        config = node.config
        self.inline: bool = getattr(config, "inline", False) or getattr(config, "parks", False)
        # A crash an execution's driver saw in this actor's code (never a node failing),
        # raised by the actor's own task so that its supervisor restarts it.
        self._crash: Exception | None = None
        self._crashed = trio.Event()

    def crash(self, exc: Exception) -> None:
        """Report a bug in this actor seen while running a job outside its task: the
        actor crashes with ``exc`` and its supervisor restarts it."""
        if self._crash is None:
            self._crash = exc
            self._crashed.set()

    async def _raise_crash(self) -> None:
        await self._crashed.wait()
        crash, self._crash = self._crash, None
        self._crashed = trio.Event()
        assert crash is not None
        raise crash

    def run_inline(self, job: RunningJob, *, count: bool = True) -> Outcome:
        """Run an inline node's job to its end, synchronously. Without ``count`` the
        caller counts it later with :meth:`count_inline` (once it is kept)."""
        outcome = self._run_inline(job)
        if count:
            self.count_inline(succeeded=outcome[0] == "succeeded")
        return outcome

    def count_inline(self, *, succeeded: bool) -> None:
        self.jobs_started()
        self.jobs_finished(failed=not succeeded)

    def _run_inline(self, job: RunningJob) -> Outcome:
        coroutine = self.node.config.run(job)
        try:
            coroutine.send(None)
        except StopIteration as stop:
            result = stop.value
        except Exception as exc:  # noqa: BLE001 (a node failing is its job failing)
            return self._job_failed(job, exc)
        else:
            coroutine.close()
            return "failed", None, "an inline node type awaited: declare it inline = False"
        if not isinstance(result, NodeResult):
            return _not_a_result(result)
        return "succeeded", result, None

    def _job_failed(self, job: RunningJob, exc: Exception) -> Outcome:
        """A node raised: its job failed. A NodeError is the node saying why; anything
        else is a bug somewhere, whose traceback the job's log keeps."""
        log.debug("job of %s failed", self.name, exc_info=True)
        if not isinstance(exc, NodeError):
            job.log("".join(traceback.format_exception(exc)).rstrip())
        return "failed", None, describe_failure(exc)

    async def run_job(self, job: RunningJob, *, deadline: float = math.inf) -> Outcome:
        """Run a job in the caller's task under the node's timeout and concurrency;
        :meth:`RunningJob.cancel` cancels it. Cancellation from outside propagates.
        Past ``deadline`` (the caller's, when earlier than the node's timeout) the job
        ends ``cancelled``: the caller knows why."""
        timeout = self.node.timeout
        limiter = self._limiter
        self.jobs_started()
        outcome: Outcome = ("cancelled", None, "cancelled")
        acquired = False
        timed_out_at = trio.current_time() + timeout
        try:
            # One scope for the node's timeout, the caller's deadline and the job's
            # cancel (the job and the deadlines say which): a scope with a deadline
            # costs about as much as a short node's whole run.
            with trio.CancelScope(deadline=min(timed_out_at, deadline)) as scope:
                job.attach(scope)
                if limiter is not None:
                    await limiter.acquire_on_behalf_of(job)
                    acquired = True
                try:
                    # Cancelled while it waited: a node that never checkpoints would
                    # otherwise run to its end (and do its side effects).
                    await trio.lowlevel.checkpoint_if_cancelled()
                    result = await self.node.config.run(job)
                except trio.TooSlowError:
                    outcome = ("timed_out", None, f"timed out after {format_duration(timeout)}")
                except Exception as exc:  # noqa: BLE001 (a node failing is its job failing)
                    outcome = self._job_failed(job, exc)
                else:
                    outcome = (
                        ("succeeded", result, None)
                        if isinstance(result, NodeResult)
                        else _not_a_result(result)
                    )
                finally:
                    if acquired:
                        assert limiter is not None
                        limiter.release_on_behalf_of(job)
            if scope.cancelled_caught and not job.cancelled and timed_out_at <= deadline:
                outcome = ("timed_out", None, f"timed out after {format_duration(timeout)}")
            return outcome
        finally:
            self.jobs_finished(failed=outcome[0] != "succeeded")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run jobs until the mailbox is closed and drained, or until cancelled.

        A crash (a bug in this actor, never a node failing) ends the running jobs as
        ``cancelled`` and raises the error itself, not wrapped in a group, so that its
        supervisor reports what broke.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._raise_crash)
                await super().run(task_status=task_status)
                nursery.cancel_scope.cancel()  # retired: stop watching for crashes
        except BaseExceptionGroup as group:
            # Jobs never raise (their failures are recorded), so a lone Exception in the
            # group is the crash of the actor's own loop.
            crash = group.exceptions[0]
            if len(group.exceptions) == 1 and isinstance(crash, Exception):
                raise crash from crash.__cause__
            raise

    async def handle(self, message: JobTicket) -> None:
        try:
            await self.dispatch(message)
        except Exception as exc:
            # The message is out of the mailbox: whoever waits for it must hear of it.
            message.finish("failed", error=f"the node actor crashed: {describe_failure(exc)}")
            raise
        except BaseException:
            message.finish("cancelled", error="node actor stopped")
            raise

    async def dispatch(self, ticket: JobTicket) -> None:
        """Start the job in its own task once the node's concurrency allows."""
        limiter = self._limiter
        if not ticket.cancel_requested:
            if limiter is not None:
                try:
                    # Taken at once when free: receiving the ticket was the checkpoint.
                    limiter.acquire_on_behalf_of_nowait(ticket)
                except trio.WouldBlock:
                    await limiter.acquire_on_behalf_of(ticket)
            if not ticket.cancel_requested:
                assert self._nursery is not None
                self.jobs_started()
                self._nursery.start_soon(self._run_job, ticket)
                return
            if limiter is not None:
                limiter.release_on_behalf_of(ticket)
        ticket.finish("cancelled", error="cancelled before it started")

    async def _run_job(self, ticket: JobTicket) -> None:
        timeout = self.node.timeout
        try:
            # One scope for the node's timeout and the ticket's cancel (the ticket says
            # which): entering a cancel scope costs more than a quick node's whole run.
            with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
                ticket.attach(scope)
                # Cancelled between dispatch and now: a node that never checkpoints
                # would otherwise run to its end (and do its side effects).
                await trio.lowlevel.checkpoint_if_cancelled()
                try:
                    result = await self.node.config.run(ticket.job)
                except trio.TooSlowError:
                    ticket.finish("timed_out", error=f"timed out after {format_duration(timeout)}")
                except ExecutionEnded as ended:
                    # An `end` ran in the nodes this one ran: it stopped, it did not fail.
                    ticket.finish("cancelled", error=str(ended))
                except Exception as exc:
                    log.debug("job of %s failed", self.name, exc_info=True)
                    ticket.finish("failed", error=describe_failure(exc))
                else:
                    ticket.finish("succeeded", result)
            if scope.cancelled_caught:
                if ticket.cancel_requested:
                    ticket.finish("cancelled", error="cancelled")
                else:
                    ticket.finish("timed_out", error=f"timed out after {format_duration(timeout)}")
        finally:
            ticket.finish("cancelled", error="node actor stopped")
            if self._limiter is not None:
                self._limiter.release_on_behalf_of(ticket)
            self.jobs_finished(failed=ticket.status != "succeeded")
