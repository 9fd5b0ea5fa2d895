"""The actor base class: a named task that handles the messages of its own mailbox.

An :class:`Actor` owns a bounded :class:`~hookline.definition.Mailbox`. Its
:meth:`Actor.run` sets up, reports readiness, then handles one message at a time until the
mailbox is closed and drained. A message whose handler raises crashes the actor; the Actor
object and its mailbox outlive the crash, so a supervisor calling :meth:`Actor.run` again
continues with the messages still queued (the one being handled is not retried).
"""

from __future__ import annotations

import abc
from typing import ClassVar, Generic, TypeVar

import attrs
import trio

from ..definition import Mailbox, MailboxStatistics

T = TypeVar("T")


@attrs.frozen
class ActorStatistics:
    """A snapshot of an actor: its mailbox, messages in flight, completed and failed,
    and how many times it was restarted (``run`` calls after the first)."""

    name: str
    mailbox: MailboxStatistics
    in_flight: int
    completed: int
    failed: int
    restarts: int


class Actor(abc.ABC, Generic[T]):
    """Base class of hookline's actors; subclasses implement :meth:`handle`.

    Start it with ``await nursery.start(actor.run)`` (or as a supervisor's child), send it
    messages through ``actor.mailbox``, stop it by closing the mailbox (it finishes what is
    queued) or by cancelling its scope.

    Counting: by default each message is one job: in flight while :meth:`handle` runs,
    then completed, or failed if it raised. Subclasses that run many jobs at once (with
    their own nursery, opened in an override of :meth:`run` around ``super().run(...)``)
    set ``counts_own_jobs = True`` and call :meth:`jobs_started` and :meth:`jobs_finished`
    around each job themselves; the base then counts only a crash of :meth:`handle`, as
    failed.
    """

    counts_own_jobs: ClassVar[bool] = False

    def __init__(self, name: str, *, capacity: int) -> None:
        self.name = name
        self.mailbox: Mailbox[T] = Mailbox(capacity, name=name)
        self._in_flight = 0
        self._completed = 0
        self._failed = 0
        self._runs = 0
        self._running = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Set up, report started, then handle messages one at a time until the mailbox
        is closed and drained.

        An exception from :meth:`setup` or :meth:`handle` propagates (an actor crash; the
        message being handled is not retried). Raises :class:`RuntimeError` if this actor
        is already running.
        """
        if self._running:
            raise RuntimeError(f"actor {self.name!r} is already running")
        self._running = True
        self._runs += 1
        try:
            await self.setup()
            task_status.started()
            async for message in self.mailbox:
                await self._handle_counted(message)
        finally:
            self._running = False

    async def setup(self) -> None:
        """Prepare before reporting started; runs again on every restart. Default: nothing."""

    @abc.abstractmethod
    async def handle(self, message: T) -> None:
        """Handle one message. Raising an ``Exception`` crashes the actor."""

    def jobs_started(self) -> None:
        """For subclasses with ``counts_own_jobs``: one more job is in flight."""
        self._in_flight += 1

    def jobs_finished(self, *, failed: bool) -> None:
        """For subclasses with ``counts_own_jobs``: a job started with :meth:`jobs_started`
        ended, completed or ``failed``."""
        self._in_flight -= 1
        if failed:
            self._failed += 1
        else:
            self._completed += 1

    async def _handle_counted(self, message: T) -> None:
        if self.counts_own_jobs:
            try:
                await self.handle(message)
            except Exception:
                self._failed += 1
                raise
            return
        self.jobs_started()
        try:
            await self.handle(message)
        except Exception:
            self.jobs_finished(failed=True)
            raise
        except BaseException:
            self._in_flight -= 1  # cancelled: neither completed nor failed
            raise
        self.jobs_finished(failed=False)

    def statistics(self) -> ActorStatistics:
        return ActorStatistics(
            name=self.name,
            mailbox=self.mailbox.statistics(),
            in_flight=self._in_flight,
            completed=self._completed,
            failed=self._failed,
            restarts=max(0, self._runs - 1),
        )
