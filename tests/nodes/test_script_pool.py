"""The code node's worker pool: a fresh context per run, hard OS limits, parallel runs,
supervision, and its life with the engine.

Real worker processes on the real clock (bounds of a second or more). Each test runs
in its own trio run, so it starts its own small pool (a worker starts in well under
a second).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from hookline import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import NodeError
from hookline.nodes import _script_pool
from hookline.nodes._js import compile_script
from hookline.nodes._script_pool import ScriptPool, ScriptPoolConfig

MIB = 1024 * 1024


@pytest.fixture
async def pool() -> AsyncIterator[ScriptPool]:
    """One worker, so that consecutive runs land in the same process."""
    pool = ScriptPool(ScriptPoolConfig(workers=1, worker_memory=256 * MIB))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        nursery.cancel_scope.cancel()


async def execute(
    pool: ScriptPool, body: str, inputs: dict[str, Any] | None = None, **kw: Any
) -> Any:
    return await pool.execute(compile_script(body), inputs or {}, **kw)


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_a_run_that_mutates_built_ins_leaves_the_next_run_pristine(pool: ScriptPool) -> None:
    # Two scripts (as of two workflows) in the same worker process, one after the other.
    vandal = """
      Array.prototype.map = () => 'hacked';
      Object.prototype.polluted = true;
      JSON.stringify = () => '"forged"';
      globalThis.JSON = {parse: () => 1};
      globalThis.secret = 'kept?';
      String.prototype.replace = null;
      crypto.createHmac = () => 'forged';
      return 1;
    """
    first = await execute(pool, vandal)
    assert first.error is None
    check = """
      return [
        [1, 2].map((x) => x * 2), ({}).polluted, typeof secret, JSON.stringify({a: 1}),
        'refs/heads/main'.replace('refs/heads/', ''),
        require('crypto').createHmac('sha256', 'k').update('x').digest('hex').length,
      ];
    """
    second = await execute(pool, check)
    assert second.value == [[2, 4], None, "undefined", '{"a":1}', "main", 64]
    assert pool.statistics().restarts == 0  # the same worker: a fresh context, not a new process


async def test_a_script_allocating_ten_times_its_limit_is_stopped_and_the_server_does_not_grow(
    pool: ScriptPool,
) -> None:
    before = rss()
    started = time.monotonic()
    outcome = await execute(
        pool,
        "const big = new Uint8Array(160 * 1024 * 1024).fill(7); return big.length;",
        memory=16 * MIB,
        time_limit=2.0,
    )
    assert outcome.error == "the script went past its memory limit of 16MiB"
    assert time.monotonic() - started < 4.0  # within twice its time limit
    assert rss() - before < 50 * MIB


async def test_the_worker_memory_cap_holds_past_a_larger_script_limit(pool: ScriptPool) -> None:
    # The script may use 1GiB, its worker only 256MiB: the OS cap (RLIMIT_AS) stops it.
    outcome = await execute(
        pool,
        "const parts = []; for (;;) parts.push(new Float64Array(1024 * 1024).fill(1));",
        memory=1024 * MIB,
        time_limit=5.0,
    )
    assert outcome.limit == "memory"
    assert "256MiB" in (outcome.error or "")
    assert (await execute(pool, "return 'still serving';")).value == "still serving"


async def test_a_spinning_script_is_killed_at_its_time_limit_and_its_worker_replaced(
    pool: ScriptPool,
) -> None:
    # A script that may call crypto runs without QuickJS's own time limit (its binding
    # refuses host calls under one): the pool's kill stops it.
    started = time.monotonic()
    outcome = await execute(pool, "const c = crypto; for (;;) {}", time_limit=1.0)
    assert outcome.error == "the script ran past its time limit of 1s"
    assert time.monotonic() - started < 2.0
    assert (await execute(pool, "return 40 + 2;")).value == 42
    stats = pool.statistics()
    assert (stats.time_stops, stats.kills, stats.restarts, stats.crashes) == (1, 1, 1, 0)


async def test_a_plain_spinning_script_is_stopped_at_its_time_limit(pool: ScriptPool) -> None:
    started = time.monotonic()
    outcome = await execute(pool, "for (;;) {}", time_limit=1.0)
    assert outcome.error == "the script ran past its time limit of 1s"
    assert time.monotonic() - started < 2.0
    assert (await execute(pool, "return 40 + 2;")).value == 42
    assert pool.statistics().time_stops == 1


async def test_scripts_run_in_parallel_up_to_the_pool_size_and_then_wait() -> None:
    pool = ScriptPool(ScriptPoolConfig(workers=2))
    spin = compile_script("for (;;) {}")
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        for _ in range(3):
            nursery.start_soon(lambda: pool.execute(spin, {}, time_limit=5.0))
        with trio.fail_after(10):
            while pool.statistics().workers - pool.statistics().idle < 2:
                await trio.sleep(0.01)
        stats = pool.statistics()
        assert (stats.workers, stats.idle, stats.waiting) == (2, 0, 1)
        nursery.cancel_scope.cancel()


async def test_workers_that_keep_failing_to_start_stop_the_pool_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_script_pool, "_WORKER", "/nonexistent/worker.py")
    pool = ScriptPool(ScriptPoolConfig(workers=1, intensity=2, period=60.0))
    script = compile_script("return 1;")
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        for _ in range(3):
            with pytest.raises(NodeError, match="a script worker failed to start"):
                await pool.execute(script, {})
        with pytest.raises(NodeError, match="not running: 3 worker failures within 1m"):
            await pool.execute(script, {})
        stats = pool.statistics()
        assert (stats.crashes, stats.intensity) == (3, 2)
        assert stats.broken is not None
        nursery.cancel_scope.cancel()


WORKFLOW = """
key: js
nodes:
  - key: double
    type: code
    code: "if (context.data.n !== 21) throw new Error('bad input'); return 42;"
"""


async def test_the_engine_starts_the_pool_and_its_workers_end_with_it() -> None:
    workflow = load_workflow_text(WORKFLOW, source="js.yaml", env={})
    async with open_engine(
        [workflow], scripts=ScriptPoolConfig(workers=2, prestart=True)
    ) as engine:
        stats = engine.statistics().scripts
        assert stats is not None
        assert (stats.size, stats.workers, stats.idle) == (2, 2, 2)
        pids = [worker.process.pid for worker in engine.scripts._idle]
        assert (await engine.run("js", data={"n": 21})).status == "succeeded"
        failed = await engine.run("js", data={"n": 1})
        assert failed.status == "failed"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped and reaped with the engine


async def test_a_script_burning_cpu_drops_to_a_low_priority_and_a_short_one_does_not(
    pool: ScriptPool,
) -> None:
    assert (await execute(pool, "return 1;")).value == 1
    worker = pool._idle[0]
    assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: execute(pool, "for (;;) {}", time_limit=5.0))
        with trio.fail_after(4):
            while not worker.demoted:
                await trio.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == 10
        assert os.sched_getscheduler(worker.process.pid) == os.SCHED_IDLE
        nursery.cancel_scope.cancel()


PARALLEL = """
key: both
nodes:
  - key: fan
    type: parallel
    mode: all
    branches:
      - [{key: left, type: code, timeout: 20s, code: "while (!globalThis.stop) {} return 1;"}]
      - [{key: right, type: code, timeout: 20s, code: "while (!globalThis.stop) {} return 2;"}]
"""


async def test_the_scripts_of_one_execution_run_in_parallel() -> None:
    workflow = load_workflow_text(PARALLEL, source="both.yaml", env={})
    config = ScriptPoolConfig(workers=2, prestart=True)
    async with open_engine([workflow], scripts=config) as engine:
        await engine.submit("both")
        with trio.fail_after(10):
            while engine.scripts.statistics().idle:
                await trio.sleep(0.01)  # until both branches hold a worker at once
        stats = engine.scripts.statistics()
        assert (stats.workers, stats.idle, stats.waiting) == (2, 0, 0)
        engine.hurry()
