"""The coordination seam: what a store shared by several processes offers them.

A backend that several hookline processes may share (PostgreSQL) has a
:class:`Coordinator`; one that a single process owns (SQLite, memory) has None, and the
engine then coordinates in memory alone. Through the coordinator the processes keep
their guarantees together:

- **Workers and leases.** Each process is a worker that heartbeats. Every unfinished
  execution has an owner, the worker that accepted, retried or adopted it; only the
  owner runs it. A worker that stops heartbeating for ``lease`` seconds is dead: the
  first live worker to sweep (:meth:`Coordinator.adopt`) takes its executions over
  (``FOR UPDATE SKIP LOCKED``: each is taken by one worker) and resumes them. A worker
  that finds its own row gone (:meth:`Coordinator.heartbeat` is False) was declared
  dead while it still ran: it must stop at once, its executions belong to others.
- **Start permits.** An execution starts only once :meth:`Coordinator.claim` granted
  it: fewer than ``concurrency.max`` executions of its workflow are running across all
  workers, and no earlier unfinished execution shares its order key.
- **Wake-ups.** An execution leaving ``running`` (it ended, or parks on a ``wait``,
  where it holds no slot) or ending unstarted notifies every worker
  (:meth:`Coordinator.wait`): the ones waiting to start one of that workflow claim
  again. Wake-ups are hints; workers also claim again now and then without one.
- **Rates.** ``throttle`` books starts (:meth:`Coordinator.book_rate`) and
  ``rate_limit`` takes or refuses deliveries (:meth:`Coordinator.take_rate`) on one
  GCRA state per key in the database, on its clock: one rate for every worker.
- **Definitions.** A worker whose workflows were changed through the admin API tells
  the others, which load their workflows folder again (shared by ``--workers``).
- **Cancels.** A cancel is recorded with the execution and sent to every worker: its
  owner cancels it (at its next heartbeat if it missed the wake-up), and if the owner
  died first, whoever takes it over does.

Every method blocks (network I/O): the engine calls them in worker threads. They raise
:class:`~hookline.errors.StoreError` when the database fails and
:class:`~hookline.errors.StoreClosed` when the backend is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from ._records import ExecutionRecord

__all__ = ["Adopted", "Claim", "Coordinator", "Wakeup", "WorkerRecord"]


@attrs.frozen
class WorkerRecord:
    """A hookline process sharing the store. Times are the database's; ``silent`` is
    how many seconds had passed since its last heartbeat when it was read."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    silent: float = 0.0


@attrs.frozen
class Adopted:
    """An execution :meth:`Coordinator.adopt` took over, and whether a cancel was
    requested for it (its dead owner may never have heard of it)."""

    record: ExecutionRecord
    cancel_requested: bool = False


@attrs.frozen
class Claim:
    """What :meth:`Coordinator.claim` decided: ``granted`` executions (by id) are
    ``running`` now (or were already, as adopted ones); ``gone`` ones are no longer
    this worker's to run (finished, cancelled or taken over); the rest must wait."""

    granted: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()


@attrs.frozen
class Wakeup:
    """A hint from another worker: an execution of ``workflow`` ended (its slot and
    its order key may be free), ``cancel`` names an execution to cancel, or the worker
    ``definitions_changed_by`` changed the workflow definitions."""

    workflow: str | None = None
    cancel: str | None = None
    definitions_changed_by: str | None = None


class Coordinator(Protocol):
    """The cross-process half of a shared store (see the module docstring)."""

    #: This process's worker id: the owner of the executions it accepts.
    worker_id: str
    #: Seconds between heartbeats (and sweeps for dead workers' executions).
    heartbeat_interval: float
    #: Seconds without a heartbeat after which a worker counts as dead.
    lease: float

    def heartbeat(self) -> bool:
        """Prove this worker alive. False: it was declared dead and its row removed
        (it must stop running executions at once)."""
        ...

    def cancels_requested(self) -> list[str]:
        """The unfinished executions of this worker a cancel was requested for, oldest
        first (their wake-up may have been missed)."""
        ...

    def adopt(self, workflows: Sequence[str], lease: float, limit: int) -> list[Adopted]:
        """Take over up to ``limit`` unfinished executions of ``workflows`` whose owner
        is dead (no heartbeat for ``lease`` seconds), gone or unset, oldest first;
        remove dead workers. Each execution is taken by one worker only."""
        ...

    def claim(self, workflow: str, ids: Sequence[str], limit: int) -> Claim:
        """Start what may start of this worker's executions ``ids`` of ``workflow``,
        at most ``limit`` (its ``concurrency.max``) running across every worker, one at
        a time per order key in arrival order."""
        ...

    def wait(self, timeout: float) -> list[Wakeup]:
        """The wake-ups received, waiting up to ``timeout`` seconds for the first (0:
        do not wait)."""
        ...

    def request_cancel(self, execution_id: str) -> None:
        """Record that ``execution_id`` is to be cancelled, if it is unfinished, and
        ask every worker to cancel it: its owner will, or, if the owner died, the
        worker that adopts it."""
        ...

    def announce_definitions(self) -> None:
        """Tell every worker that this one changed the workflow definitions."""
        ...

    def workers(self) -> list[WorkerRecord]:
        """The workers registered now, dead ones not yet removed included, by id."""
        ...

    def book_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        """Book the earliest start of one event of ``key`` under the rate ``scope``
        (GCRA: one every ``interval`` seconds, ``tolerance`` seconds ahead allowed),
        after every one booked before by any worker; the seconds until it (0: now)."""
        ...

    def take_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        """Let one event of ``key`` through under the rate ``scope`` (GCRA, as
        :meth:`book_rate`: every worker shares one rate) and return 0.0, or refuse it,
        booking nothing, and return the seconds until one would be let through."""
        ...
