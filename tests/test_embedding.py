"""hookline inside someone else's trio program, through the public API only: errors
come out as themselves, a cancelled scope stops the engine cleanly, and what it left
resumes on the next start."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

import hookline

NAPPER = hookline.load_workflow_text(
    textwrap.dedent(
        """
        key: napper
        concurrency: {max: 1}
        nodes:
          - {key: nap, type: delay, duration: 1s}
          - {key: after, type: set, values: {n: "{{$context.data.n}}"}}
        """
    ),
    source="napper.yaml",
)


async def wait_running(engine: hookline.Engine, key: str, count: int) -> None:
    with trio.fail_after(10):
        while next(w for w in engine.statistics().workflows if w.workflow == key).running < count:
            await trio.sleep(0.01)


# -- errors raised in the block ----------------------------------------------------------


async def test_an_error_raised_in_the_block_comes_out_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[hookline.Engine] = []
    with pytest.raises(ValueError, match="mine") as info:  # noqa: PT012
        async with hookline.open_engine([NAPPER]) as engine:
            seen.append(engine)
            await engine.submit("napper", data={"n": 1})
            raise ValueError("mine")
    assert type(info.value) is ValueError
    assert not seen[0].statistics().accepting


async def test_an_error_keeps_the_context_it_was_raised_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(RuntimeError) as info:  # noqa: PT012
        async with hookline.open_engine([NAPPER]):
            try:
                raise KeyError("first")
            except KeyError:
                raise RuntimeError("second")  # noqa: B904 (the implicit context is the point)
    assert isinstance(info.value.__context__, KeyError)


# -- cancellation of the surrounding scope -----------------------------------------------


async def test_a_cancelled_scope_stops_the_engine_cleanly_and_the_work_resumes(
    tmp_path: Path,
) -> None:
    # SQLite runs in a thread: real time, no autojump clock.
    url = f"sqlite:///{tmp_path / 'hookline.db'}"
    with trio.CancelScope() as scope:
        async with hookline.open_engine([NAPPER], store=url) as engine:
            first = await engine.submit("napper", data={"n": 1})
            second = await engine.submit("napper", data={"n": 2})  # queued behind it
            await wait_running(engine, "napper", 1)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert not engine.statistics().accepting

    async with hookline.open_engine([NAPPER], store=url) as engine:
        assert engine.statistics().resumed == 2
        outcomes = []
        with trio.fail_after(10):
            for admission in (first, second):
                handle = engine.handle(admission.execution_id)
                assert handle is not None
                outcomes.append(await handle.wait_finished())
    assert [(o.status, o.output) for o in outcomes] == [
        ("succeeded", {"n": 1}),
        ("succeeded", {"n": 2}),
    ]


async def test_a_deadline_around_the_engine_stops_it_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.move_on_after(1.5) as scope:
        async with hookline.open_engine([NAPPER], shutdown_timeout=60) as engine:
            admissions = [await engine.submit("napper", data={"n": n}) for n in range(3)]
            await trio.sleep_forever()
    assert scope.cancelled_caught
    # Cancelled: the engine did not wait out its shutdown_timeout for what ran.
    assert trio.current_time() < 10
    outcomes = [await a.handle.wait_finished() for a in admissions if a.handle is not None]
    # The first finished; the one running and the one queued stay resumable.
    assert [o.status for o in outcomes] == ["succeeded", "cancelled", "cancelled"]


# -- what a crash is called --------------------------------------------------------------


async def test_a_crash_is_named_by_its_error_in_logs_and_statistics(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A bug in a node's actor, raised from a task of its own (so trio wraps it in a
    # group of one): the only way to crash an actor without patching is a bug.
    from hookline.engine._node_actor import NodeActor

    original = NodeActor.run
    crashed: list[str] = []

    async def run(self: NodeActor, *, task_status: trio.TaskStatus[None]) -> None:
        if not crashed:
            crashed.append(self.name)
            task_status.started()

            async def boom() -> None:
                raise ValueError("boom")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(boom)
        await original(self, task_status=task_status)

    monkeypatch.setattr(NodeActor, "run", run)
    async with hookline.open_engine([NAPPER]) as engine:
        await trio.testing.wait_all_tasks_blocked()
        [workflow] = engine.statistics().workflows
    [child] = [c for c in workflow.supervisor.children if c.restarts]
    assert child.last_error == "ValueError: boom"
    assert workflow.supervisor.restarts == 1
    crash_lines = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    expected = f"supervisor workflow:napper: child {child.name} crashed: ValueError: boom"
    assert crash_lines == [expected]
    assert "Trio nursery" not in caplog.text
