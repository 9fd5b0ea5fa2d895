"""``batch`` in the engine: deliveries gather per key until the batch is full or times
out, then one execution runs with ``$context.batch``. On trio's MockClock."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import hookline
from hookline.cli import main
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.engine._workflow_supervisor import WorkflowStatistics
from hookline.errors import StoreError
from hookline.store._batching import FormBatch
from hookline.store._memory import MemoryBackend
from hookline.store._ops import WriteOp
from hookline.store._store import Store
from tests.conftest import StoreFactory

RUNS: list[tuple[float, int, list[int]]] = []


async def collect(call: hookline.NodeCall) -> object:
    """Records when it ran, its ``$context.data.n`` and its batch's."""
    batch = call.params["batch"]
    assert isinstance(batch, list)
    RUNS.append(
        (trio.current_time(), int(call.params["first"]), [int(e["data"]["n"]) for e in batch])
    )
    return {"size": len(batch)}


NODES = {"collect": collect}


def workflow(batch: str, *, mode: str = "async", extra: str = "") -> hookline.Workflow:
    text = textwrap.dedent(
        """
        key: readings
        trigger: {mode: %s}
        batch: %s
        %s
        concurrency: {max: 8, queue: 1000}
        nodes:
          - key: run
            type: collect
            batch: "{{$context.batch}}"
            first: "{{$context.data.n}}"
        """
    ) % (mode, batch, extra)
    return load_workflow_text(text, source="readings.yaml", nodes=NODES)


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.clear()


def statistics(engine: Engine) -> WorkflowStatistics:
    found = engine.workflow_statistics("readings")
    assert found is not None
    return found


async def submit(engine: Engine, n: int, device: str = "d1") -> str:
    return (await engine.submit("readings", data={"n": n, "device": device})).execution_id


async def test_a_full_batch_runs_once_with_its_deliveries_in_arrival_order(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow("{size: 5, timeout: 1m}", mode="sync")
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        admissions = [await engine.submit("readings", data={"n": n}) for n in range(12)]
        await trio.testing.wait_all_tasks_blocked()
        # A sync sender hears 202 + Location at once: its batch may take a minute.
        for admission in admissions:
            assert admission.handle is not None
            answer = await admission.handle.wait_answer()
            assert answer.status == 202
            assert (b"location", f"/api/executions/{admission.execution_id}".encode()) in [
                (k.encode(), v.encode()) for k, v in answer.headers
            ]
        ids = [admission.execution_id for admission in admissions]
        assert statistics(engine).batching == 2  # the third batch is still open
        held = engine.waiting_for(ids[11])
        assert held is not None
        assert held.startswith("batch: 2 of 5 deliveries; starts when full or in 60.0 s")
        for admission in admissions[:10]:
            assert admission.handle is not None
            await admission.handle.wait_finished()
        assert [batch for _, _, batch in RUNS] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
        head = await engine.store.get_execution(ids[0])
        assert head is not None
        assert head.status == "succeeded"
        assert [entry["execution_id"] for entry in head.context["batch"]] == ids[:5]
        member = await engine.store.get_execution(ids[3])
        assert member is not None
        assert (member.status, member.output) == ("succeeded", {"batched_into": ids[0]})
        completed = statistics(engine).completed
    assert completed == 10


async def test_a_batch_that_does_not_fill_runs_when_it_times_out(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow("{size: 100, timeout: 10s}")
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        start = trio.current_time()
        await submit(engine, 0)
        await trio.sleep(4)
        await submit(engine, 1)
        await trio.sleep(4)
        await submit(engine, 2)
        await trio.sleep(2.5)  # 10 s after the first: the window closed
        await submit(engine, 3)  # a new window
        await trio.sleep(60)
        assert statistics(engine).batching == 0
    assert [(round(at - start), batch) for at, _, batch in RUNS] == [
        (10, [0, 1, 2]),
        (20, [3]),
    ]


async def test_keys_batch_apart(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow('{size: 3, timeout: 1m, key: "{{$context.data.device}}"}')
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        for n in range(9):
            await submit(engine, n, device="a" if n % 3 else "b")
        await trio.sleep(120)
    batches = sorted(batch for _, _, batch in RUNS)
    assert batches == [[0, 3, 6], [1, 2, 4], [5, 7, 8]]
    assert sorted(first for _, first, _ in RUNS) == [0, 1, 5]  # $context: the first's


async def test_a_member_cancelled_while_its_batch_is_open_leaves_it(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow("{size: 3, timeout: 1m}")
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        ids = [await submit(engine, n) for n in range(2)]
        assert await engine.cancel(ids[0])
        assert statistics(engine).batching == 1
        ids += [await submit(engine, n) for n in range(2, 4)]  # fills the batch of 3
        await trio.sleep(1)
        cancelled = await engine.store.get_execution(ids[0])
        assert cancelled is not None
        assert cancelled.status == "cancelled"
    assert [batch for _, _, batch in RUNS] == [[1, 2, 3]]


async def test_open_windows_and_formed_batches_resume_after_a_restart(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow("{size: 3, timeout: 1m}", extra="throttle: {limit: 1, period: 1h}")
    store = make_store()
    async with open_engine([flow], store=store, nodes=NODES) as engine:
        # Batch [0, 1, 2] runs, [3, 4, 5] is formed and throttled (one start an hour),
        # and 6, 7 wait in an open window when the engine stops.
        ids = [await submit(engine, n) for n in range(8)]
        await trio.testing.wait_all_tasks_blocked()
        assert statistics(engine).batching == 2
        assert statistics(engine).throttled == 1
    assert [batch for _, _, batch in RUNS] == [[0, 1, 2]]
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        ids.append(await submit(engine, 8))  # fills the resumed window
        handle = engine.handle(ids[6])  # (the resumed batch started at once)
        assert handle is not None
        assert (await handle.wait_finished()).succeeded
    # Each delivery is in one batch, and each batch ran once.
    assert [batch for _, _, batch in RUNS] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


async def test_a_replaced_workflow_runs_its_open_batches_before_it_retires(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    flow = workflow("{size: 5, timeout: 1h}")
    async with open_engine([flow], store=make_store(), nodes=NODES) as engine:
        ids = [await submit(engine, n) for n in range(2)]
        await trio.testing.wait_all_tasks_blocked()
        await engine.apply([attrs.evolve(flow, title="changed")])  # a hot reload
        handle = engine.handle(ids[0])
        assert handle is not None
        assert (await handle.wait_finished()).succeeded
        with trio.fail_after(1):  # the old definition's supervisor retires
            while len(engine._workflows.live()) > 1:
                await trio.sleep(0.01)
        await submit(engine, 2)  # the new definition batches from here
        await trio.testing.wait_all_tasks_blocked()
        assert statistics(engine).batching == 1
    assert [batch for _, _, batch in RUNS] == [[0, 1]]


class FailsOnce(MemoryBackend):
    """Fails the first batch it is asked to form, as a store that lost its disk for a
    moment would (nothing of it is stored)."""

    failed = False

    def apply(self, ops: Sequence[WriteOp]) -> list[object]:
        if not self.failed and any(isinstance(op, FormBatch) for op in ops):
            self.failed = True
            keep = [op for op in ops if not isinstance(op, FormBatch)]
            done = iter(super().apply(keep))
            return [
                StoreError("disk I/O error") if isinstance(op, FormBatch) else next(done)
                for op in ops
            ]
        return super().apply(ops)


async def test_a_batch_the_store_failed_to_form_is_formed_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flow = workflow("{size: 2, timeout: 1h}")
    backend = FailsOnce()
    async with open_engine([flow], store=Store(backend), nodes=NODES) as engine:
        ids = [await submit(engine, n) for n in range(2)]
        handle = engine.handle(ids[0])
        assert handle is not None
        assert (await handle.wait_finished()).succeeded
    assert backend.failed
    assert [batch for _, _, batch in RUNS] == [[0, 1]]


def test_a_test_case_of_a_batched_workflow_gives_its_batch_in_its_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "readings.yaml").write_text(
        "key: readings\nbatch: {size: 3, timeout: 10s}\n"
        'nodes: [{key: s, type: set, values: {second: "{{$context.batch[1].data.n}}"}}]\n'
    )
    batch = [{"data": {"n": 1}}, {"data": {"n": 2}}]
    case = {"context": {"data": {"n": 1}, "batch": batch}, "output": {"second": 2}}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    assert main(["test", str(tmp_path / "readings.yaml"), str(tmp_path / "cases.jsonl")]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
