"""The actor base class: readiness, message handling, crash and restart, counting."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hookline.engine._actor import Actor


class Recorder(Actor[str]):
    """Records what it handles; crashes on "boom"; setup takes a second."""

    def __init__(self, *, capacity: int = 10) -> None:
        super().__init__("recorder", capacity=capacity)
        self.handled: list[str] = []
        self.setups = 0
        self.gate: trio.Event | None = None

    async def setup(self) -> None:
        await trio.sleep(1)
        self.setups += 1

    async def handle(self, message: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if message == "boom":
            raise ValueError("boom")
        self.handled.append(message)


async def test_start_returns_only_after_setup(autojump_clock: trio.testing.MockClock) -> None:
    actor = Recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        assert actor.setups == 1
        assert trio.current_time() >= 1
        actor.mailbox.close()


async def test_handles_messages_in_order_until_closed_and_drained(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = Recorder()
    for message in ("a", "b", "c"):
        actor.mailbox.send_nowait(message)
    actor.mailbox.close()
    await actor.run()  # returns once drained
    assert actor.handled == ["a", "b", "c"]
    stats = actor.statistics()
    assert (stats.completed, stats.failed, stats.in_flight, stats.restarts) == (3, 0, 0, 0)
    assert stats.mailbox.received == 3


async def test_crash_propagates_and_restart_keeps_queued_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = Recorder()
    for message in ("a", "boom", "b", "c"):
        actor.mailbox.send_nowait(message)
    with pytest.raises(ValueError, match="boom"):
        await actor.run()
    assert actor.handled == ["a"]
    assert actor.statistics().mailbox.depth == 2
    actor.mailbox.close()
    await actor.run()
    assert actor.handled == ["a", "b", "c"]
    assert actor.setups == 2
    stats = actor.statistics()
    assert (stats.completed, stats.failed, stats.in_flight, stats.restarts) == (3, 1, 0, 1)


async def test_in_flight_while_handling_and_cancel_counts_neither(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = Recorder()
    actor.gate = trio.Event()
    actor.mailbox.send_nowait("slow")
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.testing.wait_all_tasks_blocked()
        assert actor.statistics().in_flight == 1
        nursery.cancel_scope.cancel()
    stats = actor.statistics()
    assert (stats.in_flight, stats.completed, stats.failed) == (0, 0, 0)


async def test_running_twice_at_once_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    actor = Recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        with pytest.raises(RuntimeError, match="already running"):
            await actor.run()
        actor.mailbox.close()


class Concurrent(Actor[int]):
    """Runs every message as its own job in its own nursery; odd numbers fail."""

    counts_own_jobs = True

    def __init__(self) -> None:
        super().__init__("concurrent", capacity=10)
        self.release = trio.Event()
        self._jobs: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as jobs:
            self._jobs = jobs
            await super().run(task_status=task_status)

    async def handle(self, message: int) -> None:
        assert self._jobs is not None
        self.jobs_started()
        self._jobs.start_soon(self._job, message)

    async def _job(self, message: int) -> None:
        await self.release.wait()
        self.jobs_finished(failed=message % 2 == 1)


async def test_subclass_counts_its_own_concurrent_jobs() -> None:
    actor = Concurrent()
    for message in range(3):
        actor.mailbox.send_nowait(message)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.testing.wait_all_tasks_blocked()
        assert actor.statistics().in_flight == 3
        assert actor.statistics().completed == 0
        actor.release.set()
        actor.mailbox.close()
    stats = actor.statistics()
    assert (stats.in_flight, stats.completed, stats.failed) == (0, 2, 1)
