"""One execution's driver: carries out what its :class:`~._core.ExecutionCore` decides.

The core decides everything (which node runs next, retries, deadlines, loops, parallel
modes, cancel, resume, what is recorded); this module only does the I/O:

- a node whose type is inline (``set``, ``condition``, ``switch``, ``json_query``,
  ``end``, ``response``, or any type declaring ``inline = True``) runs right here,
  synchronously, through its :class:`~._node_actor.NodeActor` (which counts it), with
  no task, mailbox or cancel scope of its own;
- any other node runs as a task of the execution's own nursery, under its deadline;
  a node that ignores its cancellation has its job recorded ``cancelled`` at once, but
  keeps the execution (and its concurrency slot) until it really ends: the execution's
  end is recorded then;
- records are queued to the store in order; the end is committed before callers hear;
- when the core parks (every open path waits for an event), the waits and the
  ``waiting`` status are committed together, the engine's event board takes them, and
  the driver ends: the execution holds no task until a wait ends and it resumes.

After :data:`INLINE_BUDGET` inline nodes in a row the driver yields to the scheduler,
so a long loop of ``set`` nodes cannot starve ingress: at roughly 10 µs a node, that is
about 1 ms of work between two chances for the HTTP front to accept and answer.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from ..errors import StoreError
from ..nodes._base import NodeResult, NodeServices
from ..store._encoding import unstorable
from ..store._ops import ParkExecution, SaveAnswer, SaveJob, SaveJobs, UpdateExecution
from ..store._records import Answer, JobRecord, JobStatus, WaitRecord
from ..store._store import Store
from ._answers import ExecutionOutcome, finished_answer, still_running_answer
from ._core import (
    CancelJob,
    Command,
    ExecutionCore,
    Finish,
    Park,
    RunJob,
    SaveRecord,
    SendAnswer,
)
from ._handle import ExecutionHandle
from ._job import RunningJob
from ._node_actor import NodeActor, Outcome, describe_failure

# ExecutionHandle lives in ._handle; importers of it from here keep working.
__all__ = ["INLINE_BUDGET", "Execution", "ExecutionHandle"]

log = logging.getLogger("hookline.engine")

# Inline nodes run between two yields to the scheduler (see the module docstring).
INLINE_BUDGET = 100

_Report = tuple[RunningJob, JobStatus, NodeResult | None, str | None]


def run_inline_job(
    core: ExecutionCore,
    actor: NodeActor,
    job: RunningJob,
    clock: Callable[[], float],
    *,
    count: bool = True,
) -> list[Command]:
    """Run an inline node's job now and tell ``core``; what it decides next. Without
    ``count`` the actor's statistics are left to the caller (see NodeActor.run_inline)."""
    try:
        status, result, error = actor.run_inline(job, count=count)
    except Exception as exc:  # noqa: BLE001 (a bug: reported to its supervisor)
        status, result, error = _actor_crashed(actor, exc)
    return core.job_finished(job, status, result, error, now=trio.current_time(), wall=clock())


def _actor_crashed(actor: NodeActor, exc: Exception) -> Outcome:
    """A bug in the actor's own code (not the node's): the job fails, and the actor
    crashes so that its supervisor restarts it."""
    log.error("node actor %s crashed", actor.name, exc_info=exc)
    actor.crash(exc)
    return "failed", None, f"the node actor crashed: {describe_failure(exc)}"


class Execution:
    """Runs one execution to its end and records it.

    The execution runs under the workflow's timeout (``timed_out``) and can be
    cancelled through its handle (``cancelled``). When the task running it is
    cancelled from outside (engine shutdown), its record stays ``running`` so the next
    start can resume it.
    """

    def __init__(
        self,
        handle: ExecutionHandle,
        actors: Mapping[str, NodeActor],
        store: Store,
        *,
        services: NodeServices,
        quick: bool = False,
    ) -> None:
        self.handle = handle
        # Every node of the workflow is inline (see runs_inline): no task is needed.
        self.quick = quick
        self._started_at: float | None = None
        self.workflow = handle.workflow
        self.actors = actors
        self.store = store
        self.services = services
        self.clock = services.clock
        self.core = ExecutionCore(
            handle.id,
            self.workflow.nodes,
            {
                "context": (
                    handle.context if handle.context is not None else handle.delivery.context()
                ),
                "execution": {"id": handle.id},
                "workflow": {"key": self.workflow.key, "title": self.workflow.title},
                # Read-only, and the engine's own: shared, never copied per execution.
                "env": services.env,
            },
            timeout=self.workflow.timeout,
            services=services,
            host=self,
        )
        self._reports: deque[_Report] = deque()
        self._wake = trio.Event()
        self._cancel_requested = False
        self._nursery: trio.Nursery | None = None
        self._outcome: ExecutionOutcome | None = None
        self._records: list[JobRecord] = []

    @property
    def outputs(self) -> dict[str, Any]:
        return self.core.outputs

    def cancel(self) -> None:
        """Cancel on request (through the handle): the core decides, at once."""
        self._cancel_requested = True
        self._wake.set()

    async def run(self) -> ExecutionOutcome:
        """Run the execution; never raises except for cancellation from outside (and
        a store that cannot be read to resume, which leaves it to resume again)."""
        try:
            return await self._run()
        finally:
            # The core points back here (jobs ask it for checkpoints): without this
            # cycle, an ended execution is freed at once, not by the cycle collector,
            # whose passes would otherwise grow with the load.
            self.core.host = None

    async def _run(self) -> ExecutionOutcome:
        handle = self.handle
        if handle.cancel_requested:
            return await self._cancelled_before_start()
        # A resumed execution keeps the time it first started, if it had started.
        started_at = self.clock() if handle.started_at is None else None
        if self.quick and not handle.resumed:
            # Quick nodes only: over in moments, its end records its start too. (A
            # crash before leaves it queued, which resumes as running would.)
            self._started_at = started_at
        else:
            await self.store.post(UpdateExecution(handle.id, "running", started_at=started_at))
        records = await self.store.list_jobs(handle.id) if handle.resumed else ()
        if self.quick:
            await self._drive(records)  # no task to run: no nursery either
        else:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._drive(records)
                # Jobs still running were cancelled by the core (and recorded so): the
                # nursery waits for each to really end.
                nursery.cancel_scope.cancel()
        if self.core.parked is not None:
            return await self._park(self.core.parked)
        # The end is recorded only now: a node ignoring its cancel keeps the execution
        # running, and its concurrency slot taken (in every process sharing the store),
        # until its body really ended.
        assert self._outcome is not None
        await self.finish(self._outcome)
        return self._outcome

    async def _drive(self, records: Sequence[JobRecord]) -> None:
        """Feed the core its events and carry out its commands until it finishes."""
        core = self.core
        self.handle.attach(self)
        try:
            commands = core.start(records, now=trio.current_time(), wall=self.clock())
            while True:
                await self._carry_out(commands)
                if core.finished is not None or core.parked is not None:
                    break
                commands = await self._next_commands()
        except BaseException:
            # Cancelled from outside (shutdown): close the jobs that ran, leave the
            # execution's record to resume from.
            with trio.CancelScope(shield=True):
                await self._save_records(core.abandon(wall=self.clock()))
            raise
        finally:
            self.handle.detach(self)

    async def _park(self, park: Park) -> ExecutionOutcome:
        """Commit the execution's waits and its ``waiting`` status (after its records),
        hand them to the event board, and end here; a sync sender hears 202."""
        handle = self.handle
        waits = tuple(
            WaitRecord(
                handle.id,
                job.node.key,
                job.scope,
                job.attempt,
                self.workflow.key,
                suspend.event,
                suspend.match,
                suspend.until,
                job.started_at,
            )
            for job, suspend in park.waits
        )
        await self._post_records()
        with trio.CancelScope(shield=True):
            await self.store.write(ParkExecution(handle.id, waits))
        board = self.services.events
        assert board is not None, "an engine that parks executions has an event board"
        board.parked(waits, handle)
        if handle.workflow.trigger.mode == "sync" and handle.answer is None:
            handle.set_answer(still_running_answer(handle.id, "waiting"))
        outcome = ExecutionOutcome(handle.id, self.workflow.key, "waiting", None, None)
        handle.park()
        return outcome

    async def _cancelled_before_start(self) -> ExecutionOutcome:
        handle = self.handle
        why = handle.cancel_reason or "cancelled before it started"
        if handle.resumed and handle.started_at is not None:
            # It ran in a process that stopped (a cancel adopted with it), or it was
            # parked (a cancel ended its wait).
            why = handle.cancel_reason or "cancelled on request"
            try:
                records = await self.store.list_jobs(handle.id)
                await self._save_records(
                    self.core.start(records, now=trio.current_time(), wall=self.clock())
                )
            except StoreError:
                log.exception("could not read the jobs of execution %s", handle.id)
        outcome = ExecutionOutcome(handle.id, self.workflow.key, "cancelled", None, why)
        await self.finish(outcome)
        return outcome

    async def _next_commands(self) -> list[Command]:
        """Wait for a job's report, a cancel or the core's next deadline; return what
        the core decides about it."""
        core = self.core
        if not self._reports and not self._cancel_requested:
            self._wake = trio.Event()
            with trio.move_on_at(core.next_deadline()):
                await self._wake.wait()
        now, wall = trio.current_time(), self.clock()
        if self._cancel_requested:
            return core.cancel(wall=wall, why=self.handle.cancel_reason or "cancelled on request")
        commands: list[Command] = []
        while self._reports:
            job, status, result, error = self._reports.popleft()
            commands += core.job_finished(job, status, result, error, now=now, wall=wall)
        if now >= core.next_deadline():
            commands += core.tick(now=now, wall=wall)
        return commands

    async def _carry_out(self, commands: list[Command]) -> None:
        """Do what the core said, in order; inline jobs' outcomes add to the list."""
        core = self.core
        inline = 0
        index = 0
        while index < len(commands):
            command = commands[index]
            index += 1
            if isinstance(command, RunJob):
                job = command.job
                actor = self.actors[job.node.key]
                if actor.inline:
                    commands += run_inline_job(core, actor, job, self.clock)
                    inline += 1
                    if inline >= INLINE_BUDGET:
                        inline = 0
                        await trio.lowlevel.checkpoint()
                else:
                    assert self._nursery is not None
                    self._nursery.start_soon(self._run_job, actor, job)
            elif isinstance(command, SaveRecord):
                self._records.append(command.record)
            elif isinstance(command, CancelJob):
                command.job.cancel()
            elif isinstance(command, SendAnswer):
                await self._answer(command.answer)
            elif isinstance(command, Park):
                pass  # carried out once the driver's tasks are done (see _run)
            elif isinstance(command, Finish):
                self._outcome = ExecutionOutcome(
                    self.handle.id, self.workflow.key, command.status, command.output, command.error
                )
        await self._post_records()

    async def _post_records(self) -> None:
        """Queue the records gathered since the last call as one store op: the jobs of
        a run of quick nodes are written together, before the driver waits again."""
        records, self._records = self._records, []
        if len(records) == 1:
            await self.store.post(SaveJob(records[0]))
        elif records:
            await self.store.post(SaveJobs(tuple(records)))

    async def _run_job(self, actor: NodeActor, job: RunningJob) -> None:
        try:
            status, result, error = await actor.run_job(job)
        except Exception as exc:  # noqa: BLE001 (a bug: reported to its supervisor)
            status, result, error = _actor_crashed(actor, exc)
        if result is not None and (why := unstorable(result.output)) is not None:
            # Checked before it is stored: an output no backend can hold (a lone
            # surrogate) fails its job, rather than the write of its record (issue 13).
            status, result, error = "failed", None, f"the node's output cannot be stored: {why}"
        self._reports.append((job, status, result, error))
        self._wake.set()

    async def _save_records(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, SaveRecord):
                self._records.append(command.record)
            elif isinstance(command, CancelJob):
                command.job.cancel()
        await self._post_records()

    async def save_checkpoint(self, job: RunningJob) -> None:
        """Commit ``job`` as ``running`` with its checkpoint as output (durable)."""
        self.core.checkpointed(job, job.saved)
        await self.store.write(
            SaveJob(job.record("running", started_at=job.started_at, output=job.saved))
        )

    async def _answer(self, answer: Answer) -> None:
        handle = self.handle
        if handle.answer is not None:
            return
        await self._record_answer(answer, commit=True)
        handle.set_answer(answer)

    async def _record_answer(self, answer: Answer, *, commit: bool) -> None:
        """Store a sync execution's answer; with ``commit``, wait for the commit (a
        sender told of it before could retry and find nothing). Async ones answered at
        intake."""
        handle = self.handle
        if handle.workflow.trigger.mode != "sync":
            return
        if handle.idempotency_key is None:
            await self.store.post(SaveAnswer(handle.delivery.id, answer))
            return
        save = SaveAnswer(handle.delivery.id, answer, self.workflow.key, handle.idempotency_key)
        # Committed before the sender sees it: a retry right after gets it replayed.
        if commit:
            await self.store.write(save)
        else:
            await self.store.post(save)

    async def finish(self, outcome: ExecutionOutcome) -> None:
        """Record how the execution ended, answer a sync sender, wake its waiters.
        Shielded: it completes even while the caller is being cancelled.

        The answer is queued before the end (they commit in that order): a crash
        between the two leaves an execution to resume whose answer retries already
        get, never a finished one whose answer is lost (retries would get 409 forever).
        """
        handle = self.handle
        # Only a sync sender hears the end as an answer (async ones had theirs at intake).
        sync = handle.workflow.trigger.mode == "sync"
        answer = finished_answer(outcome) if sync and handle.answer is None else None
        with trio.CancelScope(shield=True):
            try:
                if answer is not None:
                    await self._record_answer(answer, commit=False)
                await self.store.write(
                    UpdateExecution(
                        outcome.execution_id,
                        outcome.status,
                        started_at=self._started_at,
                        finished_at=self.clock(),
                        output=outcome.output,
                        error=outcome.error,
                    )
                )
            except StoreError as exc:
                log.exception("could not record the end of execution %s", outcome.execution_id)
                # Never left running: an end that cannot be stored (an output no
                # backend can hold) is recorded failed, saying why (issue 13).
                failed = UpdateExecution(
                    outcome.execution_id,
                    "failed",
                    started_at=self._started_at,
                    finished_at=self.clock(),
                    error=f"the execution's end could not be stored: {exc}",
                )
                try:
                    await self.store.write(failed)
                except StoreError:
                    log.exception("could not record execution %s failed", outcome.execution_id)
        if answer is not None:
            self.handle.set_answer(answer)
        self.handle.set_outcome(outcome)
