"""Flow control in the engine: ``rate_limit`` at intake, ``throttle`` and ``priority``
at start. On trio's MockClock: the waits take no real time."""

from __future__ import annotations

import bisect
import textwrap
from collections import defaultdict

import attrs
import pytest
import trio
import trio.testing

import hookline
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.engine._workflow_supervisor import WorkflowStatistics
from hookline.errors import DefinitionError, RateLimited
from hookline.store._postgres import PostgresBackend
from hookline.store._store import Store
from tests.conftest import StoreFactory, postgres_schema_url


def workflow(flow: str, *, max_: int = 8, node: str = "stamp") -> hookline.Workflow:
    text = textwrap.dedent(
        """
        key: flow
        concurrency: {max: %d, queue: 100}
        %s
        nodes:
          - {key: run, type: %s, data: "{{$context.data}}"}
        """
    ) % (max_, flow, node)
    return load_workflow_text(text, source="flow.yaml", nodes={"stamp": stamp, "hold": hold})


STARTS: list[tuple[float, object]] = []


async def stamp(call: hookline.NodeCall) -> object:
    STARTS.append((trio.current_time(), call.params["data"]))
    return None


GATE: list[trio.Event] = []


async def hold(call: hookline.NodeCall) -> object:
    """Holds its slot until the test opens the gate (not a sleep: on PostgreSQL the
    autojump clock would skip it while the store works)."""
    STARTS.append((trio.current_time(), call.params["data"]))
    await GATE[0].wait()
    return None


@pytest.fixture(autouse=True)
def _fresh_starts() -> None:
    STARTS.clear()
    GATE[:] = [trio.Event()]


def statistics(engine: Engine) -> WorkflowStatistics:
    found = engine.workflow_statistics("flow")
    assert found is not None
    return found


def most_in_any_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + period - 1e-9) - i for i, t in enumerate(times))


async def test_throttle_spaces_starts_per_key_within_limit_plus_burst(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = 'throttle: {limit: 2, period: 10s, burst: 1, key: "{{$context.data.account}}"}'
    async with open_engine([workflow(flow)], store=make_store(), nodes={"stamp": stamp}) as engine:
        start = trio.current_time()
        handles = []
        for n in range(16):
            account = "a" if n < 12 else "b"
            admission = await engine.submit("flow", data={"account": account, "n": n})
            assert admission.handle is not None
            handles.append(admission.handle)
        await trio.testing.wait_all_tasks_blocked()
        # burst + 1 of each key start at once: a holds 10 back, b 2.
        assert statistics(engine).throttled == 10 + 2
        for handle in handles:
            assert (await handle.wait_finished()).succeeded
    by_key: dict[str, list[float]] = defaultdict(list)
    order: dict[str, list[int]] = defaultdict(list)
    for at, data in STARTS:
        assert isinstance(data, dict)
        by_key[data["account"]].append(at - start)
        order[data["account"]].append(data["n"])
    # On PostgreSQL the rate is kept on the database's clock, which moves on while this
    # test's virtual one jumps: allow for the milliseconds between the two.
    slack = 0.5 if engine.cluster is not None else 0.0
    for times in by_key.values():
        assert most_in_any_window(times, 10.0 - slack) <= 3
    # Those that waited kept their arrival order (the first two started together).
    assert order["a"][2:] == list(range(2, 12))
    # b waits for no one of a: its burst starts at once.
    assert by_key["b"][:2] == pytest.approx([0.0, 0.0], abs=0.01)
    # Then one per interval (10 s / 2): a's twelfth starts at 50 s.
    assert by_key["a"][-1] == pytest.approx(50.0, abs=0.01 + slack)


async def test_a_throttled_execution_holds_no_slot_and_can_be_cancelled(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = "throttle: {limit: 1, period: 1m}"
    async with open_engine(
        [workflow(flow, max_=1)], store=make_store(), nodes={"stamp": stamp}
    ) as engine:
        first = await engine.submit("flow", data={"n": 1})
        waiting = await engine.submit("flow", data={"n": 2})
        third = await engine.submit("flow", data={"n": 3})
        assert first.handle is not None
        assert waiting.handle is not None
        assert third.handle is not None
        await first.handle.wait_finished()
        await trio.testing.wait_all_tasks_blocked()
        assert statistics(engine).throttled == 2
        assert engine.waiting_for(first.execution_id) is None
        held = engine.waiting_for(third.execution_id)
        assert held is not None
        assert held.startswith("throttle: starts in 1")  # 120 s less what passed
        assert statistics(engine).running == 0
        assert await engine.cancel(waiting.execution_id)
        assert (await waiting.handle.wait_finished()).status == "cancelled"
        assert (await third.handle.wait_finished()).succeeded
    assert [data for _, data in STARTS] == [{"n": 1}, {"n": 3}]
    # The cancelled one gave up its booking only as a place in line: the third starts
    # at its own booked time, two intervals on.
    slack = 0.5 if engine.cluster is not None else 0.01  # the database's clock moves on
    assert STARTS[1][0] - STARTS[0][0] == pytest.approx(120.0, abs=slack)


async def test_a_throttled_execution_is_recorded_throttled_until_it_starts(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = "throttle: {limit: 1, period: 1m}"
    async with open_engine([workflow(flow)], store=make_store(), nodes={"stamp": stamp}) as engine:
        first = await engine.submit("flow", data={"n": 1})
        second = await engine.submit("flow", data={"n": 2})
        dropped = await engine.submit("flow", data={"n": 3})
        assert first.handle is not None
        assert second.handle is not None
        assert await engine.cancel(dropped.execution_id)  # at once
        await first.handle.wait_finished()
        await trio.testing.wait_all_tasks_blocked()
        await engine.store.flush()
        held = await engine.store.get_execution(second.execution_id)
        assert held is not None
        assert (held.status, held.started_at) == ("throttled", None)
        cancelled = await engine.store.get_execution(dropped.execution_id)
        assert cancelled is not None
        assert cancelled.status == "cancelled"  # never marked throttled after its end
        listed = await engine.store.list_executions(status="throttled")
        assert [e.id for e in listed.items] == [second.execution_id]
        assert (await second.handle.wait_finished()).succeeded
        await engine.store.flush()
        done = await engine.store.get_execution(second.execution_id)
        assert done is not None
        assert done.status == "succeeded"
        assert done.started_at is not None


async def test_rate_limit_refuses_past_the_rate_with_retry_after_per_key(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = 'rate_limit: {limit: 3, period: 1m, burst: 2, key: "{{$context.data.sender}}"}'
    async with open_engine([workflow(flow)], store=make_store(), nodes={"stamp": stamp}) as engine:
        for _ in range(3):
            await engine.submit("flow", data={"sender": "noisy"})
        with pytest.raises(RateLimited) as refused:
            await engine.submit("flow", data={"sender": "noisy"})
        assert refused.value.status == 429
        # On PostgreSQL, the rate of every process together, on the database's clock
        # (which moves on while this test's virtual one stands still).
        slack = 0.5 if engine.cluster is not None else 0.01
        assert refused.value.retry_after == pytest.approx(20.0, abs=slack)
        assert "at most 3 deliveries per 1m" in str(refused.value)
        await engine.submit("flow", data={"sender": "quiet"})  # another key: its own rate
        if engine.cluster is not None:
            return  # the rate runs on the database's clock, which this test cannot move
        await trio.sleep(20)  # one more is due every 20 s
        await engine.submit("flow", data={"sender": "noisy"})
        with pytest.raises(RateLimited) as refused:
            await engine.submit("flow", data={"sender": "noisy"})
        assert refused.value.retry_after == pytest.approx(20.0, abs=0.01)


async def test_priority_starts_the_highest_queued_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # One process's queue (on a store shared by several processes, start permits are
    # granted in arrival order: docs/reference/workflow.md says so).
    flow = "priority: \"{{$context.data.plan == 'enterprise' ? 100 : $context.data.rank}}\""
    async with open_engine(
        [workflow(flow, max_=1, node="hold")], store="memory://", nodes={"hold": hold}
    ) as engine:
        busy = await engine.submit("flow", data={"plan": "free", "rank": 0, "n": "busy"})
        await trio.testing.wait_all_tasks_blocked()  # it holds the only slot
        handles = [busy.handle]
        for plan, rank, n in [
            ("free", 0, "low"),
            ("free", "7", "seven"),  # a numeric string counts
            ("enterprise", 0, "enterprise"),
            ("free", "junk", "junk"),  # anything else is 0
            ("free", 7, "seven-later"),
        ]:
            admission = await engine.submit("flow", data={"plan": plan, "rank": rank, "n": n})
            handles.append(admission.handle)
        GATE[0].set()
        for handle in handles:
            assert handle is not None
            await handle.wait_finished()
    assert [data["n"] for _, data in STARTS] == [  # type: ignore[index]
        "busy",
        "enterprise",
        "seven",
        "seven-later",
        "low",
        "junk",
    ]


@pytest.mark.parametrize(
    ("flow", "field", "expected"),
    [
        ("throttle: {limit: 0, period: 1m}", "throttle.limit", "an integer >= 1"),
        ("throttle: {limit: 1}", "throttle.period", "a duration"),
        ("rate_limit: {limit: 5, period: 1m, burst: -1}", "rate_limit.burst", "an integer >= 0"),
        ("rate_limit: {limit: 5, period: 1m, per: ip}", "rate_limit.per", "a known field"),
        ("rate_limit: 5", "rate_limit", "a mapping"),
        ('priority: "{{$context.data.plan = 1 ? 2 : 3}}"', "priority", "a comparison"),
    ],
)
def test_bad_flow_control_is_refused_at_load_naming_the_field(
    flow: str, field: str, expected: str
) -> None:
    with pytest.raises(DefinitionError) as error:
        workflow(flow)
    assert error.value.path == field
    assert expected in str(error.value)


async def test_debounce_runs_each_keys_last_delivery_once(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = 'debounce: {period: 30s, max_wait: 5m, key: "{{$context.data.record}}"}'
    store = make_store()
    last: dict[str, int] = {}
    handles = {}
    async with open_engine([workflow(flow)], store=store, nodes={"stamp": stamp}) as engine:
        for n in range(200):
            record = f"r{n % 10}"
            last[record] = n
            admission = await engine.submit("flow", data={"record": record, "n": n})
            assert admission.handle is not None
            handles[n] = admission.handle
        await trio.testing.wait_all_tasks_blocked()
        assert statistics(engine).debouncing == 10
        held = engine.waiting_for(handles[199].id)
        assert held is not None
        assert held.startswith("debounce: starts in 30.0 s unless a newer delivery")
        assert engine.waiting_for(handles[0].id) is None  # superseded: not live
        outcomes = {n: await handle.wait_finished() for n, handle in handles.items()}
        assert statistics(engine).debouncing == 0
        superseded = [o for o in outcomes.values() if o.status == "cancelled"]
        assert len(superseded) == 190
        assert all(o.error and "(debounce)" in o.error for o in superseded)
        stored = await engine.store.get_execution(superseded[0].execution_id)
        assert stored is not None
        assert stored.status == "cancelled"
        assert stored.error is not None
        assert stored.error.startswith("superseded by execution ")
    assert sorted(data["n"] for _, data in STARTS) == sorted(last.values())  # type: ignore[index]


async def test_max_wait_runs_a_key_that_never_goes_quiet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flow = "debounce: {period: 30s, max_wait: 2m}"
    async with open_engine([workflow(flow)], store="memory://", nodes={"stamp": stamp}) as engine:
        start = trio.current_time()
        for n in range(20):  # one every 10 s for 200 s: never 30 s of quiet
            await engine.submit("flow", data={"n": n})
            await trio.sleep(10)
        await trio.sleep(60)
    assert [(round(at - start), data) for at, data in STARTS] == [
        (120, {"n": 11}),  # the window opened at 0 s closes at 2 m with the latest
        (220, {"n": 19}),  # the next one, 30 s after the last
    ]


async def test_debounce_holds_across_engines_sharing_a_store(
    autojump_clock: trio.testing.MockClock, request: pytest.FixtureRequest
) -> None:
    url = postgres_schema_url(request)  # engines share a store on PostgreSQL

    def make_store() -> Store:  # inline: the virtual clock must not jump over a read
        return Store(PostgresBackend(url, threaded=False))

    flow = 'debounce: {period: 30s, key: "{{$context.data.record}}"}'
    definitions = [workflow(flow)]
    last: dict[str, str] = {}
    handles = []
    async with (
        open_engine(definitions, store=make_store(), nodes={"stamp": stamp}) as first,
        open_engine(definitions, store=make_store(), nodes={"stamp": stamp}) as second,
    ):
        for n in range(40):  # each key's deliveries alternate between the two engines
            engine = (first, second)[(n // 4 + n % 4) % 2]
            record = f"r{n % 4}"
            admission = await engine.submit("flow", data={"record": record, "n": n})
            assert admission.handle is not None
            handles.append(admission.handle)
            last[record] = admission.execution_id
        outcomes = [await handle.wait_finished() for handle in handles]
    ran = {o.execution_id for o in outcomes if o.succeeded}
    assert ran == set(last.values())  # each key's newest once, in whichever engine
    superseded = [o for o in outcomes if o.status == "cancelled"]
    assert len(superseded) == 36
    assert all(o.error and o.error.startswith("superseded by execution ") for o in superseded)
    assert sorted(data["n"] for _, data in STARTS) == [36, 37, 38, 39]  # type: ignore[index]


ORDERS = """
key: orders
cancel_on: [{event: orders-cancelled, match: "{{$context.data.order_id}}"}]
nodes:
  - {key: ship, type: hold, data: "{{$context.data}}"}
"""

CANCELLATIONS = """
key: orders-cancelled
trigger: {path: orders/cancelled, correlate: "{{$context.data.order_id}}"}
nodes:
  - {key: noted, type: stamp, data: "{{$context.data}}"}
"""


async def test_cancel_on_cancels_the_executions_an_event_correlates_with(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    nodes = {"hold": hold, "stamp": stamp}
    definitions = [
        load_workflow_text(text, source=f"{n}.yaml", nodes=nodes)
        for n, text in enumerate([ORDERS, CANCELLATIONS])
    ]
    async with open_engine(definitions, store=make_store(), nodes=nodes) as engine:
        running = await engine.submit("orders", data={"order_id": "o-1"})
        other = await engine.submit("orders", data={"order_id": "o-2"})
        await trio.testing.wait_all_tasks_blocked()
        event = await engine.submit("orders-cancelled", data={"order_id": "o-1"})
        assert running.handle is not None
        assert other.handle is not None
        assert event.handle is not None
        outcome = await running.handle.wait_finished()
        assert outcome.status == "cancelled"
        assert outcome.error == "cancelled by an event of orders-cancelled (o-1)"
        assert (await event.handle.wait_finished()).succeeded  # the event runs its own nodes
        nothing = await engine.submit("orders-cancelled", data={"order_id": "o-9"})
        assert nothing.handle is not None
        assert (await nothing.handle.wait_finished()).succeeded
        assert not other.handle.finished  # o-2 had no event
        GATE[0].set()
        assert (await other.handle.wait_finished()).succeeded


def test_cancel_on_names_a_workflow_and_a_template() -> None:
    with pytest.raises(DefinitionError) as error:
        load_workflow_text(
            "key: x\ncancel_on: [{event: Not A Key, match: x}]\nnodes: [{key: e, type: end}]\n",
            source="x.yaml",
        )
    assert error.value.path == "cancel_on[0].event"


async def test_throttled_and_debounced_executions_resume_after_a_restart(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    throttled = workflow("throttle: {limit: 1, period: 1m}")
    debounced = attrs.evolve(
        workflow('debounce: {period: 30s, key: "{{$context.data.n}}"}'), key="later"
    )
    async with open_engine(
        [throttled, debounced], store=make_store(), nodes={"stamp": stamp}
    ) as engine:
        ids = [(await engine.submit("flow", data={"n": n})).execution_id for n in range(3)]
        ids.append((await engine.submit("later", data={"n": 9})).execution_id)
        await trio.testing.wait_all_tasks_blocked()
        assert statistics(engine).throttled == 2
    # Stopped with two executions throttled and one debouncing: all resume.
    async with open_engine(
        [throttled, debounced], store=make_store(), nodes={"stamp": stamp}
    ) as engine:
        handles = [engine.handle(execution_id) for execution_id in ids[1:]]
        for handle in handles:
            assert handle is not None
            assert (await handle.wait_finished()).succeeded
    assert sorted(data["n"] for _, data in STARTS) == [0, 1, 2, 9]  # type: ignore[index]
