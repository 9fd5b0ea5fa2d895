"""One-for-one supervision: restart types, intensity, escalation, dynamic children."""

from __future__ import annotations

import functools
import logging

import pytest
import trio
import trio.testing

from hookline.engine._supervisor import (
    ChildSpec,
    ChildStatistics,
    Restart,
    Supervisor,
    SupervisorStatistics,
)
from hookline.errors import RestartIntensityExceeded


class Child:
    """A scripted child: its first ``crashes`` runs crash (after ``crash_after`` seconds),
    ``then`` decides what later runs do: stay up, or return at once."""

    def __init__(
        self,
        *,
        crashes: int = 0,
        crash_after: float = 0,
        then: str = "stay",
        setup: float = 0,
    ) -> None:
        self.crashes = crashes
        self.crash_after = crash_after
        self.then = then
        self.setup = setup
        self.runs = 0
        self.ready = False
        self.stopped = 0

    async def run(self, *, task_status: trio.TaskStatus[None]) -> None:
        self.runs += 1
        try:
            await trio.sleep(self.setup)
            self.ready = True
            task_status.started()
            if self.runs <= self.crashes:
                await trio.sleep(self.crash_after)
                raise ValueError(f"crash {self.runs}")
            if self.then == "return":
                return
            await trio.sleep_forever()
        finally:
            self.ready = False
            self.stopped += 1


async def test_children_start_in_order_each_ready_before_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first, second = Child(setup=1), Child(setup=1)
    seen_first_ready: list[bool] = []

    async def second_run(*, task_status: trio.TaskStatus[None]) -> None:
        seen_first_ready.append(first.ready)
        await second.run(task_status=task_status)

    supervisor = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await nursery.start(
            supervisor.run, [ChildSpec("first", first.run), ChildSpec("second", second_run)]
        )
        assert seen_first_ready == [True]
        assert first.ready
        assert second.ready
        nursery.cancel_scope.cancel()
    assert (first.stopped, second.stopped) == (1, 1)
    assert supervisor.statistics().restarts == 0  # cancellation is not a crash


@pytest.mark.parametrize(
    ("restart", "ending", "restarted"),
    [
        (Restart.PERMANENT, "crash", True),
        (Restart.PERMANENT, "return", True),
        (Restart.TRANSIENT, "crash", True),
        (Restart.TRANSIENT, "return", False),
        (Restart.TEMPORARY, "crash", False),
        (Restart.TEMPORARY, "return", False),
    ],
)
async def test_restart_types(restart: Restart, ending: str, restarted: bool) -> None:
    child = Child(crashes=1) if ending == "crash" else Child()
    if ending == "return":
        # Return on the first run only, then stay up.
        original = child.run

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            child.then = "return" if child.runs == 0 else "stay"
            await original(task_status=task_status)

        spec = ChildSpec("child", run, restart)
    else:
        spec = ChildSpec("child", child.run, restart)
    supervisor = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run, [spec])
        await trio.testing.wait_all_tasks_blocked()
        assert child.runs == (2 if restarted else 1)
        assert child.ready == restarted
        children = supervisor.statistics().children
        if restart is Restart.TEMPORARY:
            assert children == ()  # forgotten once ended
        else:
            assert [(c.running, c.restarts) for c in children] == [(restarted, int(restarted))]
        nursery.cancel_scope.cancel()


async def test_an_exception_group_is_a_crash_named_by_the_error_inside() -> None:
    runs = 0

    async def grouped(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal runs
        runs += 1
        task_status.started()
        if runs == 1:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(_raise, KeyError("k")))
        await trio.sleep_forever()

    supervisor = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run, [ChildSpec("grouped", grouped, Restart.TRANSIENT)])
        await trio.testing.wait_all_tasks_blocked()
        assert runs == 2
        (child,) = supervisor.statistics().children
        assert child.last_error is not None
        # The error itself, not "ExceptionGroup: Exceptions from Trio nursery".
        assert child.last_error == "KeyError: 'k'"
        nursery.cancel_scope.cancel()


async def _raise(error: Exception) -> None:
    raise error


async def test_exactly_intensity_restarts_in_the_period_is_fine(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Child(crashes=3)
    supervisor = Supervisor("root", intensity=3, period=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run, [ChildSpec("flaky", child.run)])
        await trio.sleep(10)
        assert child.runs == 4
        assert child.ready
        assert supervisor.statistics().restarts == 3
        nursery.cancel_scope.cancel()


async def test_one_restart_too_many_escalates_and_stops_all_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sibling, flaky = Child(), Child(crashes=4, crash_after=1)
    supervisor = Supervisor("root", intensity=3, period=5)
    with pytest.raises(RestartIntensityExceeded, match="more than 3 restarts") as info:
        await supervisor.run([ChildSpec("sibling", sibling.run), ChildSpec("flaky", flaky.run)])
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "crash 4"
    assert flaky.runs == 4  # the fifth run never happened
    assert (sibling.stopped, sibling.ready) == (1, False)


async def test_crashes_spaced_wider_than_the_period_never_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Child(crashes=20, crash_after=5.5)
    supervisor = Supervisor("root", intensity=1, period=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run, [ChildSpec("slow-flaky", child.run)])
        await trio.sleep(20 * 5.5 + 10)
        assert child.runs == 21
        assert supervisor.statistics().restarts == 20
        nursery.cancel_scope.cancel()


async def test_crashes_closer_than_the_period_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Child(crashes=20, crash_after=2)
    supervisor = Supervisor("root", intensity=2, period=5)
    with pytest.raises(RestartIntensityExceeded):
        await supervisor.run([ChildSpec("flaky", child.run)])
    # Restarts at t=2, 4 and 6: the third falls within 5s of the first.
    assert child.runs == 3
    assert trio.current_time() == 6


async def test_parent_restarts_an_escalating_child_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Child(crashes=2)
    sub = Supervisor("sub", intensity=1, period=5)
    parent = Supervisor("parent", intensity=3, period=5)
    sub_spec = ChildSpec("sub", functools.partial(sub.run, [ChildSpec("flaky", flaky.run)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(parent.run, [sub_spec])
        await trio.testing.wait_all_tasks_blocked()
        # Run 1 crashes, restart 1 crashes, restart 2 exceeds intensity 1: sub escalates;
        # the parent restarts sub, which starts flaky afresh (run 3 stays up).
        assert flaky.runs == 3
        assert flaky.ready
        (sub_stats,) = parent.statistics().children
        assert sub_stats.restarts == 1
        assert sub_stats.running
        assert sub_stats.last_error is not None
        assert sub_stats.last_error.startswith("RestartIntensityExceeded")
        assert sub.statistics().children[0].running
        nursery.cancel_scope.cancel()


async def test_escalation_climbs_when_the_parent_gives_up_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Child(crashes=1000)
    sub = Supervisor("sub", intensity=0, period=5)
    parent = Supervisor("parent", intensity=1, period=5)
    sub_spec = ChildSpec("sub", functools.partial(sub.run, [ChildSpec("flaky", flaky.run)]))
    with pytest.raises(RestartIntensityExceeded, match="'parent'") as info:
        await parent.run([sub_spec])
    assert isinstance(info.value.__cause__, RestartIntensityExceeded)
    assert flaky.runs == 2


async def test_crash_before_ready_makes_run_raise(autojump_clock: trio.testing.MockClock) -> None:
    started = Child()

    async def broken(*, task_status: trio.TaskStatus[None]) -> None:
        raise OSError("no port")

    supervisor = Supervisor("root")
    with pytest.raises(OSError, match="no port"):
        await supervisor.run([ChildSpec("ok", started.run), ChildSpec("broken", broken)])
    assert (started.runs, started.stopped) == (1, 1)


async def test_dynamic_children(autojump_clock: trio.testing.MockClock) -> None:
    supervisor = Supervisor("root")
    with pytest.raises(RuntimeError, match="not running"):
        await supervisor.start_child(ChildSpec("early", Child().run))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)  # stays up with no children
        worker = Child(setup=1)
        await supervisor.start_child(ChildSpec("worker", worker.run))
        assert worker.ready
        with pytest.raises(ValueError, match="already has a child 'worker'"):
            await supervisor.start_child(ChildSpec("worker", Child().run))

        async def broken(*, task_status: trio.TaskStatus[None]) -> None:
            raise OSError("bad config")

        with pytest.raises(OSError, match="bad config"):
            await supervisor.start_child(ChildSpec("broken", broken))
        assert [c.name for c in supervisor.statistics().children] == ["worker"]

        await supervisor.terminate_child("worker")
        assert (worker.stopped, worker.ready) == (1, False)
        await trio.testing.wait_all_tasks_blocked()
        assert worker.runs == 1  # a terminated PERMANENT child is never restarted
        assert supervisor.statistics().children == ()
        with pytest.raises(KeyError):
            await supervisor.terminate_child("worker")

        replacement = Child()
        await supervisor.start_child(ChildSpec("worker", replacement.run))
        assert replacement.ready
        nursery.cancel_scope.cancel()


async def test_child_that_never_reports_started_is_an_error() -> None:
    async def silent(*, task_status: trio.TaskStatus[None]) -> None:
        return

    supervisor = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(RuntimeError, match="started"):
            await supervisor.start_child(ChildSpec("silent", silent))
        nursery.cancel_scope.cancel()


async def test_statistics_and_logs(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookline.engine")
    flaky, steady = Child(crashes=2), Child()
    supervisor = Supervisor("root", intensity=5, period=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            supervisor.run,
            [ChildSpec("flaky", flaky.run, Restart.TRANSIENT), ChildSpec("steady", steady.run)],
        )
        await trio.testing.wait_all_tasks_blocked()
        assert supervisor.statistics() == SupervisorStatistics(
            name="root",
            intensity=5,
            period=10,
            restarts=2,
            children=(
                ChildStatistics(
                    name="flaky",
                    restart="transient",
                    running=True,
                    restarts=2,
                    last_error="ValueError: crash 2",
                ),
                ChildStatistics(
                    name="steady", restart="permanent", running=True, restarts=0, last_error=None
                ),
            ),
        )
        nursery.cancel_scope.cancel()
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert [r.getMessage().split(": ", 1)[1] for r in crashes] == [
        "child flaky crashed: ValueError: crash 1",
        "child flaky crashed: ValueError: crash 2",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no stack traces
    assert sum("restarting child flaky" in r.getMessage() for r in caplog.records) == 2
