"""``concurrency.order_by``: one at a time per key, in arrival order, also across a
restart; different keys in parallel up to ``concurrency.max``."""

from __future__ import annotations

import itertools
import textwrap
from collections import defaultdict

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._execution import ExecutionHandle
from hookline.engine._lanes import Lanes
from hookline.engine._loader import load_workflow_text
from hookline.errors import QueueFull
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def ordered(max_: int = 4, queue: int = 1000) -> Workflow:
    return load_workflow_text(
        textwrap.dedent(
            f"""
            key: devices
            concurrency:
              max: {max_}
              queue: {queue}
              order_by: "{{{{$context.data.device}}}}"
            nodes:
              - key: pick
                type: condition
                if: {{equal: ["{{{{$context.data.slow}}}}", true]}}
                then: [{{key: long, type: sleep, duration: 5s}}]
                else: [{{key: short, type: sleep, duration: 1s}}]
            """
        ),
        source="devices.yaml",
    )


# -- the lanes, pure -------------------------------------------------------------------


def test_a_busy_lane_parks_later_items_and_hands_them_over_in_order() -> None:
    lanes: Lanes[str] = Lanes()
    assert lanes.admit("a", "a1")
    assert lanes.admit("b", "b1")
    assert not lanes.admit("a", "a2")
    assert not lanes.admit("a", "a3")
    assert lanes.admit(None, "free")  # no key: never waits
    assert lanes.statistics().parked == 2
    assert lanes.release("a") == "a2"
    assert lanes.release("a") == "a3"
    assert lanes.release("a") is None
    assert not lanes.busy("a")
    assert lanes.admit("a", "a4")  # the lane is free again


def test_withdrawn_and_reset_items_keep_arrival_order_across_lanes() -> None:
    lanes: Lanes[str] = Lanes()
    for item in ("a1", "b1", "a2", "b2", "a3", "b3"):
        lanes.admit(item[0], item)
    assert lanes.remove("a", "a2")
    assert not lanes.remove("a", "a2")
    assert lanes.reset() == ["b2", "a3", "b3"]
    assert lanes.parked == 0
    assert not lanes.busy("a")


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60))
def test_lanes_never_run_two_of_a_key_and_keep_each_keys_order(
    steps: list[tuple[str, bool]],
) -> None:
    lanes: Lanes[tuple[str, int]] = Lanes()
    running: dict[str, tuple[str, int]] = {}
    started: list[tuple[str, int]] = []
    arrivals = 0
    for key, finish in steps:
        if finish and key in running:
            done = running.pop(key)
            successor = lanes.release(done[0])
            if successor is not None:
                running[key] = successor
                started.append(successor)
            continue
        item = (key, arrivals)
        arrivals += 1
        if lanes.admit(key, item):
            assert key not in running
            running[key] = item
            started.append(item)
    for key in "abc":
        numbers = [n for k, n in started if k == key]
        assert numbers == sorted(numbers)
    assert lanes.parked == arrivals - len(started)


# -- the engine ------------------------------------------------------------------------


async def finish_times(handles: list[ExecutionHandle]) -> dict[str, float]:
    finished: dict[str, float] = {}

    async def wait(handle: ExecutionHandle) -> None:
        await handle.wait_finished()
        finished[handle.id] = trio.current_time()

    async with trio.open_nursery() as nursery:
        for handle in handles:
            nursery.start_soon(wait, handle)
    return finished


def assert_one_at_a_time_in_order(
    sent: list[tuple[str, float, ExecutionHandle]], finished: dict[str, float]
) -> None:
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for device, seconds, handle in sent:
        end = finished[handle.id]
        by_key[device].append((end - seconds, end))
    for device, spans in by_key.items():
        for (_, earlier_end), (later_start, _) in itertools.pairwise(spans):
            assert later_start >= earlier_end - 1e-9, f"{device} overlapped or reordered"


async def test_same_key_runs_one_at_a_time_in_arrival_order_keys_in_parallel(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    sent: list[tuple[str, float, ExecutionHandle]] = []
    async with open_engine([ordered(max_=4)], store=make_store()) as engine:
        start = trio.current_time()
        # Interleaved; the first of each key is slow, so without ordering the later
        # ones would overtake it.
        for n in range(6):
            for device in ("d1", "d2", "d3"):
                slow = n == 0
                admission = await engine.submit("devices", data={"device": device, "slow": slow})
                assert admission.handle is not None
                sent.append((device, 5 if slow else 1, admission.handle))
        finished = await finish_times([handle for _, _, handle in sent])
        elapsed = trio.current_time() - start
        record = await engine.store.get_execution(sent[0][2].id)
    assert_one_at_a_time_in_order(sent, finished)
    # Each key's work is 10 s; the three keys ran side by side.
    assert 10 <= elapsed < 11
    assert record is not None
    assert record.order_key == "d1"


async def test_concurrency_max_bounds_the_lanes_running_at_once(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([ordered(max_=2)], store=make_store()) as engine:
        for device in ("a", "b", "c", "d"):
            await engine.submit("devices", data={"device": device, "slow": True})
        await trio.sleep(1)
        stats = engine.statistics().workflows[0]
        assert (stats.running, stats.queue.depth + stats.parked) == (2, 2)


async def test_parked_executions_count_against_the_queue(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([ordered(max_=4, queue=3)], store=make_store()) as engine:
        for _ in range(4):
            await engine.submit("devices", data={"device": "hot", "slow": True})
        await trio.sleep(1)
        stats = engine.statistics().workflows[0]
        # Parked behind their key here; on a shared store, waiting for a start permit.
        assert (stats.running, stats.parked + stats.waiting) == (1, 3)
        with pytest.raises(QueueFull) as refused:
            await engine.submit("devices", data={"device": "cold"})
    assert refused.value.retry_after is not None


async def test_a_parked_execution_can_be_cancelled_and_its_lane_goes_on(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([ordered()], store=make_store()) as engine:
        first = await engine.submit("devices", data={"device": "x", "slow": True})
        second = await engine.submit("devices", data={"device": "x", "slow": True})
        third = await engine.submit("devices", data={"device": "x", "slow": True})
        await trio.sleep(1)
        assert await engine.cancel(second.execution_id)
        assert third.handle is not None
        outcome = await third.handle.wait_finished()
        assert trio.current_time() == pytest.approx(10, abs=0.1)
    assert outcome.status == "succeeded"
    assert first.handle is not None
    assert first.handle.outcome is not None
    assert second.handle is not None
    assert second.handle.outcome is not None
    assert (first.handle.outcome.status, second.handle.outcome.status) == (
        "succeeded",
        "cancelled",
    )


async def test_order_holds_across_a_restart(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    store = make_store()
    devices = [f"d{n}" for n in range(20)]
    sent: list[tuple[str, str]] = []
    async with open_engine([ordered(max_=8)], store=store, shutdown_timeout=0.2) as engine:
        for _n in range(3):
            for device in devices:
                admission = await engine.submit("devices", data={"device": device})
                sent.append((device, admission.execution_id))
        await trio.sleep(0.5)  # 8 running, the rest queued or parked; then a restart
    async with make_store.running() as reopened:
        unfinished = {e.id for e in await reopened.unfinished_executions()}
    assert len(unfinished) == 60
    # The next start, over the same data: ids are the arrival order.
    again = make_store()
    finished: dict[str, float] = {}
    async with open_engine([ordered(max_=8)], store=again) as engine:
        assert engine.statistics().resumed == 60
        handles = [engine.handle(id) for _, id in sent]
        assert all(handle is not None for handle in handles)
        finished = await finish_times([h for h in handles if h is not None])
        records = [await again.get_execution(id) for _, id in sent]
    assert all(r is not None and r.status == "succeeded" for r in records)
    for device in devices:
        ends = [finished[id] for d, id in sent if d == device]
        assert ends == sorted(ends)
        assert all(later - earlier >= 1 - 1e-9 for earlier, later in itertools.pairwise(ends))


async def test_executions_without_an_order_key_are_not_ordered(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    async with open_engine([ordered(max_=4)], store=make_store()) as engine:
        slow = await engine.submit("devices", data={"slow": True})
        quick = await engine.submit("devices", data={})
        assert quick.handle is not None
        await quick.handle.wait_finished()
        assert trio.current_time() < 2
        assert slow.handle is not None
        assert not slow.handle.finished
        record = await engine.store.get_execution(quick.execution_id)
    assert record is not None
    assert record.order_key is None
