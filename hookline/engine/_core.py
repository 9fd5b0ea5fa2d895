"""The execution core: every decision of one execution, in plain code without I/O.

Like h11's connection or hypercorn's protocol classes, :class:`ExecutionCore` never
awaits, reads a clock or touches the store. Its driver (:mod:`._execution`) feeds it
events and carries out the commands each event returns:

====================================  ================================================
event (method)                        what it decides
====================================  ================================================
``start(records, now, wall)``         resume from stored job records (succeeded jobs
                                      are reused, interrupted attempts closed); the
                                      first jobs to run; the workflow's deadline
``job_finished(job, ...)``            record the attempt; the next node, a branch, a
                                      retry after backoff, a loop's next iteration, a
                                      parallel mode's winner, ``end``, the answer
``checkpointed(job, state)``          what the job's next attempt will find
``tick(now, wall)``                   deadlines reached: the workflow's timeout, a
                                      loop's or parallel's own timeout, retries due
``cancel(wall)``                      stop everything, recorded ``cancelled``
``abandon(wall)``                     the driver stops (shutdown): close what runs
                                      and leave the execution to resume
====================================  ================================================

Commands: :class:`RunJob` (run this node's attempt), :class:`CancelJob`,
:class:`SaveRecord` (a job record to store), :class:`SendAnswer` (a ``response``
node answered a sync sender), :class:`Finish` (the execution's outcome; the last
command) and :class:`Park` (the execution waits for events: the driver commits its
waits and stops; an end of a wait resumes it later from its records, as after a
restart). A job whose result asks to ``suspend`` (a ``wait``) stays open; once nothing
else runs or is due (no job out, no retry pending), the core parks.
:meth:`ExecutionCore.next_deadline` says when the driver must call
:meth:`~ExecutionCore.tick`.

Loops and parallel nodes are decided here, not in a task of their own: each iteration
or branch is a :class:`_Frame` (a node list walked in order) owned by a :class:`_Group`
(the loop's or parallel node's own job). A ``condition``/``switch`` branch is a frame
whose owner is the frame it was taken in.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..definition import JSON, format_duration
from ..errors import NodeError
from ..nodes._base import End, NodeResult, NodeServices, NodeSpec, Suspend
from ..nodes._loop import LoopNode, loop_items
from ..nodes._parallel import ParallelNode
from ..store._records import Answer, ExecutionStatus, JobRecord, JobStatus
from ._job import JobHost, RunningJob

# The error of an attempt a stop, crash or takeover left running, closed on resume.
INTERRUPTED = "interrupted: the process running it stopped before it ended"

# A job's identity within its execution: (node key, scope).
Identity = tuple[str, str]


@attrs.frozen
class RunJob:
    """Run ``job`` (one attempt of one node) and report it with ``job_finished``."""

    job: RunningJob


@attrs.frozen
class CancelJob:
    """Cancel ``job``; its record is already saved as cancelled, its report is ignored."""

    job: RunningJob


@attrs.frozen
class SaveRecord:
    """Store this job record (queued in order with the execution's later writes)."""

    record: JobRecord


@attrs.frozen
class SendAnswer:
    """Answer the sync sender now (the first ``response`` node that ran)."""

    answer: Answer


@attrs.frozen
class Finish:
    """The execution ended: record this outcome. No command follows."""

    status: ExecutionStatus
    output: JSON = None
    error: str | None = None


@attrs.frozen
class Park:
    """Nothing runs and every open path waits for an event: commit ``waits`` (each a
    parked job and what it waits for) and stop driving. No command follows."""

    waits: tuple[tuple[RunningJob, Suspend], ...]


Command = RunJob | CancelJob | SaveRecord | SendAnswer | Finish | Park


class _Frame:
    """A node list walked in order: the top level, a branch taken, a loop iteration or
    a parallel branch. ``waiting`` is what it waits on (a job, a group, a retry or a
    branch frame); ``owner`` hears how it ended."""

    __slots__ = ("index", "last", "nodes", "owner", "roots", "scope", "slot", "waiting")

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        scope: str,
        roots: dict[str, Any],
        owner: _Frame | _Group | None,
        slot: int = 0,
    ) -> None:
        self.nodes = nodes
        self.index = 0
        self.scope = scope
        self.roots = roots
        self.owner = owner
        self.slot = slot  # which iteration or branch of its group
        self.last: JSON = None
        self.waiting: RunningJob | _Group | _Retry | _Frame | None = None


class _Group:
    """A loop's or a parallel node's own job while its frames run."""

    __slots__ = ("body", "deadline", "frame", "items", "job", "mode", "next", "outcomes", "running")

    def __init__(self, job: RunningJob, frame: _Frame, mode: str, deadline: float) -> None:
        self.job = job
        self.body: Sequence[NodeSpec] = ()  # a loop's
        self.frame = frame  # the frame the node itself sits in
        self.mode = mode  # "loop", "all", "any" or "race"
        self.deadline = deadline
        self.items: list[Any] = []
        self.next = 0  # the next loop iteration to start
        self.running: dict[int, _Frame] = {}
        # Per slot: the frame's last result, or the error that failed it.
        self.outcomes: dict[int, tuple[Any, str | None]] = {}


class _Retry:
    """A failed attempt's node, waiting for its backoff to pass."""

    __slots__ = ("due", "frame", "node", "tries")

    def __init__(self, node: NodeSpec, frame: _Frame, tries: int, due: float) -> None:
        self.node = node
        self.frame = frame
        self.tries = tries
        self.due = due


class ExecutionCore:
    """The state machine of one execution (see the module docstring).

    ``roots`` are the template variables (``context``, ``execution``, ``workflow``,
    ``env``); the core adds ``nodes``, ``scopes`` and ``system``. ``services`` and
    ``host`` are handed to each job as they are (the core never uses them).
    """

    def __init__(
        self,
        execution_id: str,
        nodes: Sequence[NodeSpec],
        roots: Mapping[str, Any],
        *,
        timeout: float,
        services: NodeServices | None = None,
        host: JobHost | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.timeout = timeout
        self.services = services
        self.host = host
        self._rng = rng
        self._system: dict[str, Any] = {"now": None}
        self._root = _Frame(
            nodes, "", {**roots, "nodes": {}, "scopes": {}, "system": self._system}, None
        )
        self.deadline = float("inf")
        self.finished: Finish | None = None
        self.parked: Park | None = None
        self.answered = False
        self._out: list[Command] = []
        self._jobs: dict[RunningJob, _Frame] = {}  # running leaf attempts
        self._suspended: dict[RunningJob, Suspend] = {}  # jobs waiting for an event
        self._groups: dict[RunningJob, _Group] = {}
        self._retries: list[_Retry] = []
        # From stored records when resumed: jobs that succeeded, the last attempt number
        # and the last checkpoint of each (node, scope).
        self._succeeded: dict[Identity, JobRecord] = {}
        self._attempts: dict[Identity, int] = {}
        self._checkpoints: dict[Identity, Any] = {}
        self._now = 0.0
        self._wall = 0.0

    @property
    def outputs(self) -> dict[str, Any]:
        """The top level's ``$nodes`` (results of nodes outside loops)."""
        outputs: dict[str, Any] = self._root.roots["nodes"]
        return outputs

    @property
    def running(self) -> int:
        """Attempts handed out with :class:`RunJob` and not yet reported."""
        return len(self._jobs)

    # -- events ----------------------------------------------------------------------

    def start(self, records: Iterable[JobRecord] = (), *, now: float, wall: float) -> list[Command]:
        """Begin (or resume, with the execution's stored job ``records``)."""
        self._at(now, wall)
        self.deadline = now + self.timeout
        for record in records:
            identity = (record.node, record.scope)
            self._attempts[identity] = max(self._attempts.get(identity, 0), record.attempt)
            if record.status == "succeeded":
                self._succeeded[identity] = record
                continue
            if record.output is not None:
                # An unfinished job's output is the checkpoint it saved (a delay's due time).
                self._checkpoints[identity] = record.output
            if record.status == "running":
                closed = attrs.evolve(
                    record, status="cancelled", finished_at=wall, error=INTERRUPTED
                )
                self._out.append(SaveRecord(closed))
        self._advance(self._root)
        return self._flush()

    def job_finished(
        self,
        job: RunningJob,
        status: JobStatus,
        result: NodeResult | None = None,
        error: str | None = None,
        *,
        now: float,
        wall: float,
    ) -> list[Command]:
        """A :class:`RunJob` ended: ``status`` with ``result`` (succeeded) or ``error``.
        A job the core cancelled already (or an execution that ended) is ignored."""
        frame = self._jobs.pop(job, None)
        if frame is None or self.finished is not None:
            return self._flush()
        self._at(now, wall)
        if status == "succeeded" and not isinstance(result, NodeResult):
            status = "failed"
            error = f"the node returned {type(result).__name__}, not a NodeResult"
            result = None
        if status == "succeeded" and result is not None and result.suspend is not None:
            # It waits on: its frame stays on it, its checkpoint is what it renders.
            self._suspended[job] = result.suspend
            self._record(job, "running", result.output, None, finished=False)
            return self._flush()
        self._record(job, status, result.output if result is not None else job.saved, error)
        frame.waiting = None
        if status == "succeeded":
            assert result is not None
            self._succeed(frame, job.node, result)
            self._advance(frame)
        else:
            self._attempt_failed(frame, job, status, error)
        return self._flush()

    def checkpointed(self, job: RunningJob, state: Any) -> None:
        """``job`` saved ``state``: its next attempt (same node and scope) finds it."""
        self._checkpoints[(job.node.key, job.scope)] = state

    def tick(self, *, now: float, wall: float) -> list[Command]:
        """Act on every deadline passed at ``now``."""
        if self.finished is not None:
            return self._flush()
        self._at(now, wall)
        if now >= self.deadline:
            self._stop_all("cancelled", "cancelled")
            error = f"the workflow timeout ({format_duration(self.timeout)}) passed"
            self._finish("timed_out", None, error)
            return self._flush()
        for group in [g for g in self._groups.values() if g.deadline <= now]:
            if group.job in self._groups:  # not cancelled by an earlier one this tick
                self._stop_group(group, "cancelled", "cancelled")
                timeout = format_duration(group.job.node.timeout)
                self._group_ended(group, "timed_out", None, f"timed out after {timeout}")
        for retry in [r for r in self._retries if r.due <= now]:
            if retry in self._retries:
                self._retries.remove(retry)
                retry.frame.waiting = None
                self._run(retry.node, retry.frame, retry.tries)
        return self._flush()

    def cancel(self, *, wall: float, why: str = "cancelled on request") -> list[Command]:
        """Cancel the execution: what runs is cancelled, and it ends ``cancelled``."""
        if self.finished is None:
            self._wall = wall
            self._stop_all("cancelled", "cancelled")
            self._finish("cancelled", None, why)
        return self._flush()

    def abandon(self, *, wall: float) -> list[Command]:
        """The driver stops without finishing (shutdown): what runs is recorded
        ``cancelled``; the execution's own record is left to resume from."""
        if self.finished is None:
            self._wall = wall
            self._stop_all("cancelled", "cancelled")
        return self._flush()

    def next_deadline(self) -> float:
        """The earliest time :meth:`tick` has something to do."""
        deadline = self.deadline
        for group in self._groups.values():
            deadline = min(deadline, group.deadline)
        for retry in self._retries:
            deadline = min(deadline, retry.due)
        return deadline

    # -- walking ---------------------------------------------------------------------

    def _advance(self, frame: _Frame) -> None:
        """Go on with ``frame`` from its index until it waits on something or ends."""
        while self.finished is None and frame.waiting is None:
            if frame.index >= len(frame.nodes):
                self._frame_done(frame)
                return
            node = frame.nodes[frame.index]
            done = self._succeeded.get((node.key, frame.scope))
            if done is not None:
                self._succeed(frame, node, self._replay(node, frame, done))
                continue
            self._run(node, frame, 1)

    def _run(self, node: NodeSpec, frame: _Frame, tries: int) -> None:
        """Hand out the next attempt of ``node`` (or start its group)."""
        identity = (node.key, frame.scope)
        attempt = self._attempts.get(identity, 0) + 1
        self._attempts[identity] = attempt
        self._system["now"] = _iso(self._wall)
        job = RunningJob(
            self.execution_id,
            node,
            frame.roots,
            attempt,
            self.services,
            scope=frame.scope,
            host=self.host,
            checkpointed=self._checkpoints.get(identity),
        )
        job.started_at = self._wall
        job.tries = tries
        config = node.config
        if isinstance(config, LoopNode | ParallelNode):
            self._start_group(job, frame, config)
            return
        frame.waiting = job
        self._jobs[job] = frame
        self._out.append(RunJob(job))

    def _succeed(self, frame: _Frame, node: NodeSpec, result: NodeResult) -> None:
        """``node`` succeeded in ``frame``: keep its result, then do what it asks for
        (answer, end, take a branch). The caller advances ``frame`` if it is free."""
        frame.roots["nodes"][node.key] = result.output
        frame.last = result.output
        frame.index += 1
        if result.answer is not None and not self.answered:
            self.answered = True
            self._out.append(SendAnswer(result.answer))
        if result.end is not None:
            self._end(result.end)
            return
        if result.branch:
            branch = _Frame(result.branch, frame.scope, frame.roots, frame)
            frame.waiting = branch
            self._advance(branch)

    def _frame_done(self, frame: _Frame) -> None:
        owner = frame.owner
        if owner is None:
            self._finish("succeeded", frame.last, None)
        elif isinstance(owner, _Frame):
            # A branch ended: the frame it was taken in goes on, its result the branch's.
            # (Replaying on resume, a branch can end while an outer loop still walks it:
            # only the first report counts.)
            if owner.waiting is not frame:
                return
            owner.waiting = None
            owner.last = frame.last
            self._advance(owner)
        else:
            self._slot_ended(owner, frame, frame.last, None)

    def _frame_failed(self, frame: _Frame, error: str) -> None:
        owner = frame.owner
        while isinstance(owner, _Frame):  # a branch fails the frame it was taken in
            frame, owner = owner, owner.owner
        if owner is None:
            self._finish("failed", None, error)
        else:
            self._slot_ended(owner, frame, None, error)

    def _attempt_failed(
        self, frame: _Frame, job: RunningJob, status: JobStatus, error: str | None
    ) -> None:
        """Retry as the node's policy says, or fail its frame."""
        node = job.node
        policy = node.retry
        if policy is not None and job.tries < policy.attempts and status in policy.retry_on:
            if self._rng is None:
                self._rng = random.Random()  # seeded from the OS: most executions never retry
            retry = _Retry(
                node, frame, job.tries + 1, self._now + policy.delay(job.tries, self._rng)
            )
            frame.waiting = retry
            self._retries.append(retry)
            return
        self._frame_failed(frame, f"node '{node.key}' {status}: {error}")

    def _end(self, end: End) -> None:
        """An ``end`` node ran: everything else stops, the execution ends as it says."""
        why = f"the execution ended ({end.status}) inside this node"
        self._stop_all("cancelled", why)
        error = "ended by an 'end' node with status failed" if end.status == "failed" else None
        self._finish(end.status, end.output, error)

    def _finish(self, status: ExecutionStatus, output: JSON, error: str | None) -> None:
        if self.finished is None:
            self.finished = Finish(status, output, error)
            self._out.append(self.finished)

    # -- groups: loops and parallel nodes -----------------------------------------------

    def _start_group(self, job: RunningJob, frame: _Frame, config: LoopNode | ParallelNode) -> None:
        mode = "loop" if isinstance(config, LoopNode) else config.mode
        group = _Group(job, frame, mode, self._now + job.node.timeout)
        frame.waiting = group
        self._groups[job] = group
        if isinstance(config, ParallelNode):
            for slot, lane in enumerate(config.lanes):
                # Branches run as if in place: their results are visible after the node.
                lane_frame = _Frame(lane, frame.scope, frame.roots, group, slot)
                group.running[slot] = lane_frame
            for lane_frame in list(group.running.values()):
                if job in self._groups:
                    self._advance(lane_frame)
            return
        group.body = config.body
        try:
            group.items = loop_items(job.render(config.items))
        except Exception as exc:  # noqa: BLE001 (a bad template is the loop failing)
            self._group_ended(group, "failed", None, _describe(exc))
            return
        if not group.items:
            self._group_ended(group, "succeeded", [], None)
            return
        for _ in range(min(config.concurrency, len(group.items))):
            self._next_iteration(group)

    def _next_iteration(self, group: _Group) -> None:
        index = group.next
        group.next += 1
        parent = group.frame
        key = group.job.node.key
        label = f"{key}[{index}]"
        values = {"item": group.items[index], "index": index, "length": len(group.items)}
        roots = {
            **parent.roots,
            # Results inside an iteration are its own: iterations may run at once.
            "nodes": dict(parent.roots["nodes"]),
            "scopes": {**parent.roots["scopes"], key: values},
        }
        scope = f"{parent.scope}/{label}" if parent.scope else label
        frame = _Frame(group.body, scope, roots, group, index)
        group.running[index] = frame
        self._advance(frame)

    def _slot_ended(self, group: _Group, frame: _Frame, last: Any, error: str | None) -> None:
        """One iteration or branch of ``group`` ended (``error``: it failed)."""
        if group.job not in self._groups or group.running.get(frame.slot) is not frame:
            return
        del group.running[frame.slot]
        group.outcomes[frame.slot] = (last, error)
        mode = group.mode
        if error is not None and mode in ("loop", "all"):
            self._stop_group(group, "cancelled", "cancelled")
            self._group_ended(group, "failed", None, error)
        elif mode == "race" or (mode == "any" and error is None):
            self._stop_group(group, "cancelled", "cancelled")
            if error is not None:
                error = f"branch {frame.slot} finished first, and failed: {error}"
                self._group_ended(group, "failed", None, error)
            else:
                group.job.log(
                    f"branch {frame.slot} {'finished' if mode == 'race' else 'succeeded'} first"
                )
                self._group_ended(group, "succeeded", last, None)
        elif mode == "loop" and group.next < len(group.items):
            self._next_iteration(group)
        elif not group.running:
            self._group_complete(group)

    def _group_complete(self, group: _Group) -> None:
        """Every iteration or branch ended, none decided the group before."""
        ordered = [group.outcomes[slot] for slot in sorted(group.outcomes)]
        if group.mode == "any":
            detail = "; ".join(
                f"branch {slot}: {group.outcomes[slot][1]}" for slot in sorted(group.outcomes)
            )
            self._group_ended(group, "failed", None, f"every branch failed ({detail})")
            return
        self._group_ended(group, "succeeded", [last for last, _ in ordered], None)

    def _group_ended(
        self, group: _Group, status: JobStatus, output: JSON, error: str | None
    ) -> None:
        """The group's own job ended: record it, then go on as for any job."""
        job = group.job
        if self._groups.pop(job, None) is None:
            return
        frame = group.frame
        frame.waiting = None
        self._record(job, status, output, error)
        if status == "succeeded":
            self._succeed(frame, job.node, NodeResult(output=output))
            self._advance(frame)
        else:
            self._attempt_failed(frame, job, status, error)

    # -- stopping ------------------------------------------------------------------------

    def _stop_all(self, status: JobStatus, error: str) -> None:
        self._stop_frame(self._root, status, error)
        self._retries.clear()

    def _stop_group(self, group: _Group, status: JobStatus, error: str) -> None:
        for frame in list(group.running.values()):
            self._stop_frame(frame, status, error)
        group.running.clear()

    def _stop_frame(self, frame: _Frame, status: JobStatus, error: str) -> None:
        """Cancel what ``frame`` waits on, recording each running job as ``status``."""
        waiting, frame.waiting = frame.waiting, None
        if isinstance(waiting, RunningJob):
            if self._suspended.pop(waiting, None) is not None:
                self._record(waiting, status, None, error)
            elif self._jobs.pop(waiting, None) is not None:
                self._record(waiting, status, waiting.saved, error)
                self._out.append(CancelJob(waiting))
        elif isinstance(waiting, _Group):
            if self._groups.pop(waiting.job, None) is not None:
                self._stop_group(waiting, status, error)
                self._record(waiting.job, status, None, error)
        elif isinstance(waiting, _Retry):
            if waiting in self._retries:
                self._retries.remove(waiting)
        elif isinstance(waiting, _Frame):
            self._stop_frame(waiting, status, error)

    # -- helpers ---------------------------------------------------------------------------

    def _replay(self, node: NodeSpec, frame: _Frame, done: JobRecord) -> NodeResult:
        """The result of a job that succeeded before this execution resumed."""
        # Nodes nested in it without a scope of their own (parallel branches) wrote
        # their results in this frame: later nodes may read them.
        for nested in node.walk()[1:]:
            earlier = self._succeeded.get((nested.key, frame.scope))
            if earlier is not None:
                frame.roots["nodes"][nested.key] = earlier.output
        replay = getattr(node.config, "replay", None)
        result: NodeResult = (
            replay(done.output) if replay is not None else NodeResult(output=done.output)
        )
        return result

    def _record(
        self,
        job: RunningJob,
        status: JobStatus,
        output: JSON,
        error: str | None,
        *,
        finished: bool = True,
    ) -> None:
        self._out.append(
            SaveRecord(
                job.record(
                    status,
                    started_at=job.started_at,
                    finished_at=self._wall if finished else None,
                    output=output,
                    error=error,
                )
            )
        )

    def _at(self, now: float, wall: float) -> None:
        self._now = now
        self._wall = wall

    def _flush(self) -> list[Command]:
        quiet = not self._jobs and not self._retries and self.finished is None
        if self._suspended and quiet and self.parked is None:
            self.parked = Park(tuple(self._suspended.items()))
            self._out.append(self.parked)
        out, self._out = self._out, []
        return out


def _describe(exc: BaseException) -> str:
    """A job's error text: the message of a NodeError, type and message otherwise."""
    if isinstance(exc, NodeError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_last_iso: tuple[int, str] = (-1, "")


def _iso(wall: float) -> str:
    """``wall`` as ISO 8601 UTC to the millisecond (``$system.now``); formatted once
    per millisecond, however many jobs start in it."""
    global _last_iso
    millis = int(wall * 1000)
    if _last_iso[0] != millis:
        seconds, rest = divmod(millis, 1000)
        now = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        now = now.replace(microsecond=rest * 1000)
        _last_iso = (millis, now.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return _last_iso[1]
