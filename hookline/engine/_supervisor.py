"""One-for-one supervision of child tasks, with Erlang/OTP restart semantics.

A :class:`Supervisor` runs each child (a :class:`ChildSpec`) in its own nursery task and
restarts it on its own when it ends, according to its :class:`Restart` type:

- ``PERMANENT``: restarted whenever it ends, crashed or not;
- ``TRANSIENT``: restarted only after a crash;
- ``TEMPORARY``: never restarted (and forgotten once it ends).

How often is a :class:`RestartPolicy` (``intensity`` restarts within ``period``
seconds); an engine gives the same one to all its supervisors (``open_engine(...,
restart=...)``). A crash is an ``Exception`` (an ``ExceptionGroup`` of them included)
leaving the child's ``run``; cancellation and other ``BaseException`` s are never
caught. Logs and statistics name the error inside a group of one (trio wraps a lone
error once per nursery it leaves), not the group. Restarts are immediate. When more
than ``intensity`` restarts happen within ``period`` seconds (of
:func:`trio.current_time`, so a ``MockClock`` drives it), the supervisor stops all its
children and raises :class:`~hookline.errors.RestartIntensityExceeded` from ``run``: a
parent supervisor sees that as its child crashing and applies its own policy. To run a
supervisor as a child, give its children with ``functools.partial(sub.run, children)``.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from ..errors import RestartIntensityExceeded
from ._groups import describe, lone_error

logger = logging.getLogger("hookline.engine")


class Restart(enum.Enum):
    """When a supervisor restarts a child that ended."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


def _non_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name}: expected an integer >= 0, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name}: expected a number of seconds > 0, got {value!r}")


@attrs.frozen
class RestartPolicy:
    """How many crashes a supervisor absorbs: it restarts crashed children until more
    than ``intensity`` restarts happen within ``period`` seconds, then gives up
    (escalates to its own supervisor). ``intensity=0`` gives up at the first crash.
    Raises :class:`ValueError` for a negative intensity or a period that is not > 0."""

    intensity: int = attrs.field(default=3, validator=_non_negative)
    period: float = attrs.field(default=5.0, validator=_positive)


@attrs.frozen
class ChildSpec:
    """A supervised child: ``await run(task_status=...)`` must call ``task_status.started()``
    once ready, then run until it is done or cancelled."""

    name: str
    run: Callable[..., Awaitable[None]]
    restart: Restart = Restart.PERMANENT


@attrs.frozen
class ChildStatistics:
    """A snapshot of one child; ``last_error`` is ``"Type: message"`` of its last crash
    (of the error itself when it came in a group of one: ``"ValueError: boom"``)."""

    name: str
    restart: str
    running: bool
    restarts: int
    last_error: str | None


@attrs.frozen
class SupervisorStatistics:
    """A snapshot of a supervisor; ``restarts`` counts child restarts over its lifetime."""

    name: str
    intensity: int
    period: float
    restarts: int
    children: tuple[ChildStatistics, ...]


class _StartStatus:
    """Forwards the first ``started()`` to the supervisor's starter; restarts call it again."""

    def __init__(self, inner: trio.TaskStatus[None]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: None = None) -> None:
        if not self.called:
            self.called = True
            self._inner.started()


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    ended: trio.Event = attrs.Factory(trio.Event)
    running: bool = False
    terminating: bool = False
    restarts: int = 0
    last_error: str | None = None


class Supervisor:
    """Runs children one-for-one, restarting each by its :class:`Restart` type and
    escalating with :class:`~hookline.errors.RestartIntensityExceeded` when more than
    ``intensity`` restarts happen within ``period`` seconds (or as ``policy`` says)."""

    def __init__(
        self,
        name: str,
        *,
        intensity: int = 3,
        period: float = 5.0,
        policy: RestartPolicy | None = None,
    ) -> None:
        if policy is None:
            policy = RestartPolicy(intensity, period)
        self.name = name
        self.intensity = policy.intensity
        self.period = policy.period
        self._children: dict[str, _Child] = {}
        self._restart_times: deque[float] = deque()
        self._restarts = 0
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self._escalation: RestartIntensityExceeded | None = None

    async def run(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start ``children`` in order, each once ready; report started; supervise until
        cancelled (with no children too, for :meth:`start_child`).

        Raises the error of a child that crashes before it is ready, and
        :class:`~hookline.errors.RestartIntensityExceeded` on escalation. Each call starts
        afresh: children added by an earlier run are not restarted.
        """
        if self._nursery is not None:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        self._children = {}
        self._restart_times.clear()
        self._stopping = False
        self._escalation = None
        start_error: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    for spec in children:
                        await self._start(spec)
                except Exception as exc:  # noqa: BLE001 (re-raised below)
                    # Raised after the nursery, so it is not wrapped in an ExceptionGroup.
                    start_error = exc
                    self._stop()
                else:
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._nursery = None
        if start_error is not None:
            raise start_error
        if self._escalation is not None:
            raise self._escalation

    async def start_child(self, spec: ChildSpec) -> None:
        """Start a child now; returns once it reported started.

        Raises :class:`ValueError` if a child of that name is still supervised,
        :class:`RuntimeError` if the supervisor is not running, and the child's error if
        it crashes before it is ready.
        """
        await self._start(spec)

    async def terminate_child(self, name: str) -> None:
        """Cancel a child and wait until it has ended; it is not restarted and its name
        is free again. Raises :class:`KeyError` if there is no such child."""
        child = self._children.get(name)
        if child is None:
            raise KeyError(name)
        child.terminating = True
        child.scope.cancel()
        self._forget(child)
        await child.ended.wait()

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(
            name=self.name,
            intensity=self.intensity,
            period=self.period,
            restarts=self._restarts,
            children=tuple(
                ChildStatistics(
                    name=child.spec.name,
                    restart=child.spec.restart.value,
                    running=child.running,
                    restarts=child.restarts,
                    last_error=child.last_error,
                )
                for child in self._children.values()
            ),
        )

    async def _start(self, spec: ChildSpec) -> None:
        if self._nursery is None:
            raise RuntimeError(f"supervisor {self.name!r} is not running")
        existing = self._children.get(spec.name)
        if existing is not None and not existing.ended.is_set():
            raise ValueError(f"supervisor {self.name!r} already has a child {spec.name!r}")
        child = _Child(spec)
        self._children.pop(spec.name, None)
        self._children[spec.name] = child
        await self._nursery.start(self._supervise, child)

    async def _supervise(self, child: _Child, *, task_status: trio.TaskStatus[None]) -> None:
        status = _StartStatus(task_status)
        try:
            with child.scope:
                while not child.terminating:
                    error: Exception | None = None
                    child.running = True
                    try:
                        await child.spec.run(task_status=status)
                    except Exception as exc:
                        if not status.called:
                            logger.warning(
                                "supervisor %s: child %s failed to start: %s",
                                self.name,
                                child.spec.name,
                                describe(exc),
                            )
                            raise
                        error = exc
                    finally:
                        child.running = False
                    if not status.called:
                        return  # trio's start() reports the missing started()
                    if not self._restart_after(child, error):
                        return
            if child.terminating and not status.called:
                # Terminated while starting: the starter sees a child that is gone.
                status.started()
        finally:
            if not status.called or child.spec.restart is Restart.TEMPORARY:
                self._forget(child)
            child.ended.set()

    def _restart_after(self, child: _Child, error: Exception | None) -> bool:
        """Record how ``child`` ended and decide whether to run it again (maybe escalating)."""
        name = child.spec.name
        if error is not None:
            child.last_error = describe(error)
            logger.warning("supervisor %s: child %s crashed: %s", self.name, name, child.last_error)
        if child.terminating or self._stopping or trio.current_effective_deadline() == -math.inf:
            return False
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and error is None):
            logger.info("supervisor %s: child %s ended; not restarted", self.name, name)
            return False
        now = trio.current_time()
        self._restart_times.append(now)
        while now - self._restart_times[0] >= self.period:
            self._restart_times.popleft()
        if len(self._restart_times) > self.intensity:
            self._escalate(child, error)
            return False
        child.restarts += 1
        self._restarts += 1
        logger.info("supervisor %s: restarting child %s (%s)", self.name, name, restart.value)
        return True

    def _escalate(self, child: _Child, error: Exception | None) -> None:
        how = child.last_error if error is not None else "ended"
        message = (
            f"supervisor {self.name!r}: more than {self.intensity} restarts in "
            f"{self.period}s; last: child {child.spec.name!r} {how}"
        )
        logger.error("%s; stopping all children", message)
        escalation = RestartIntensityExceeded(message)
        escalation.__cause__ = lone_error(error) if error is not None else None
        self._escalation = escalation
        self._stop()

    def _stop(self) -> None:
        self._stopping = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _forget(self, child: _Child) -> None:
        if self._children.get(child.spec.name) is child:
            del self._children[child.spec.name]
