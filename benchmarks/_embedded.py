"""The embedded engine without HTTP: a five-node workflow through ``hookline.open_engine``
+ ``engine.run``, against the same five steps written by hand, in the same run.

Four sides, each with ``concurrency`` callers running executions back to back:

- the engine on the in-memory store, against **a plain trio task**: each execution a
  task of its own (started in a nursery its caller waits on, as ``engine.run``
  waits), doing the five steps behind a ``trio.CapacityLimiter`` (the workflow's
  ``concurrency.max``), each step followed by ``await trio.lowlevel.checkpoint()``.
  That is what a user would write without hookline; the engine's cost is its CPU
  per execution over this one's.
- the engine on SQLite (durable job records), against **the plain steps plus raw
  SQLite rows**: the execution and five job rows written with ``executemany``, one
  commit per batch of ``concurrency`` executions (hookline's schema and encoding).

Each side reports executions, wall seconds and the process's CPU seconds over its
measured window (after a warm-up). After the SQLite run the job rows are counted, to
show each node run was recorded durably.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ._results import Measured, MicroResult
from ._spec import PAYLOADS, MicroSettings, Skip

if TYPE_CHECKING:
    from hookline import Engine

__all__ = [
    "CALLERS",
    "ENGINE_MEMORY",
    "ENGINE_SQLITE",
    "RAW_SQLITE",
    "TRIO_TASK",
    "WORKFLOW_KEY",
    "engine_execution",
    "prepare",
    "run_embedded",
]

WORKFLOW_KEY = "embedded-5"
NODES = 5
#: Concurrent callers on every side (so the store can group the engine's commits).
CALLERS = 32
#: The workflow's ``concurrency.max``: the plain task's limiter has as many tokens.
LIMIT = 256
WARMUP = 20

ENGINE_MEMORY = "engine.run, memory store"
TRIO_TASK = "plain trio task (CapacityLimiter, 5 checkpoints)"
ENGINE_SQLITE = "engine.run, SQLite store"
RAW_SQLITE = "plain steps + raw SQLite rows"

Nodes = dict[str, dict[str, Any]]


def _s1(data: dict[str, Any], nodes: Nodes) -> dict[str, Any]:
    return {"ref": data.get("ref"), "repo": data.get("repository", {}).get("full_name")}


def _s2(data: dict[str, Any], nodes: Nodes) -> dict[str, Any]:
    return {"ref": nodes["s1"]["ref"], "pusher": data.get("pusher", {}).get("name")}


def _s3(data: dict[str, Any], nodes: Nodes) -> dict[str, Any]:
    return {"repo": nodes["s1"]["repo"], "head": data.get("after")}


def _s4(data: dict[str, Any], nodes: Nodes) -> dict[str, Any]:
    return {"pusher": nodes["s2"]["pusher"], "head": nodes["s3"]["head"]}


def _s5(data: dict[str, Any], nodes: Nodes) -> dict[str, Any]:
    return {"ref": nodes["s2"]["ref"], "repo": nodes["s3"]["repo"], "by": nodes["s4"]["pusher"]}


#: The workflow's five ``set`` nodes by hand: the same lookups, the same result
#: objects, each step reading the earlier ones.
STEPS: tuple[tuple[str, Callable[[dict[str, Any], Nodes], dict[str, Any]]], ...] = (
    ("s1", _s1),
    ("s2", _s2),
    ("s3", _s3),
    ("s4", _s4),
    ("s5", _s5),
)


def _all_steps(data: dict[str, Any]) -> Nodes:
    nodes: Nodes = {}
    for key, step in STEPS:
        nodes[key] = step(data, nodes)
    return nodes


async def _window(
    execute: Callable[[], Awaitable[bool]], settings: MicroSettings, label: str
) -> tuple[Measured, int]:
    """``settings.concurrency`` callers awaiting ``execute()`` back to back for
    ``settings.duration`` s: (what they did, how many executions did not succeed).
    ``execute`` returns whether the execution succeeded."""
    counts = [0, 0]

    async def caller() -> None:
        while True:
            ok = await execute()
            counts[0 if ok else 1] += 1

    for _ in range(WARMUP):  # first-use costs are not the steady state
        await execute()
    start, cpu = trio.current_time(), time.process_time()
    with trio.move_on_after(settings.duration):
        async with trio.open_nursery() as nursery:
            for _ in range(settings.concurrency):
                nursery.start_soon(caller)
    wall = trio.current_time() - start
    return Measured(label, counts[0], wall, time.process_time() - cpu), counts[1]


def engine_execution(engine: Engine, data: dict[str, Any]) -> Callable[[], Awaitable[bool]]:
    """One execution of the workflow through ``engine.run``: True when it succeeded."""

    async def execute() -> bool:
        outcome = await engine.run(WORKFLOW_KEY, data=data)
        return outcome.status == "succeeded"

    return execute


async def _engine(
    folder: Path, store: str, data: dict[str, Any], settings: MicroSettings, label: str
) -> tuple[Measured, int]:
    from hookline import open_engine

    async with open_engine(folder, store=store) as engine:
        if WORKFLOW_KEY not in engine.workflows:
            errors = "; ".join(str(error) for error in engine.load_errors)
            raise Skip(f"hookline cannot load {WORKFLOW_KEY}.yaml: {errors}")
        return await _window(engine_execution(engine, data), settings, label)


async def _trio_task(data: dict[str, Any], settings: MicroSettings) -> Measured:
    limiter = trio.CapacityLimiter(LIMIT)
    results: list[dict[str, Any]] = []

    async def execution() -> None:
        async with limiter:
            nodes: Nodes = {}
            for key, step in STEPS:
                nodes[key] = step(data, nodes)
                await trio.lowlevel.checkpoint()
        results.append(nodes["s5"])

    async def execute() -> bool:
        # Each execution its own task, awaited by its caller, as engine.run's is.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(execution)
        return bool(results.pop())

    measured, _ = await _window(execute, settings, TRIO_TASK)
    return measured


def _raw_sqlite(path: Path, data: dict[str, Any], settings: MicroSettings) -> Measured:
    """The plain steps plus what a durable record of them costs at the least."""
    from hookline._ids import new_id
    from hookline.store import _rows, _sqlite_writes
    from hookline.store._records import ExecutionRecord, JobRecord
    from hookline.store._schema import migrate

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn)
    count = 0
    start, cpu = time.perf_counter(), time.process_time()
    try:
        while time.perf_counter() < start + settings.duration:
            executions, jobs = [], []
            for _ in range(settings.concurrency):
                now, execution_id = time.time(), new_id()
                nodes = _all_steps(data)
                executions.append(
                    _rows.execution_row(
                        ExecutionRecord(
                            id=execution_id,
                            workflow=WORKFLOW_KEY,
                            delivery_id=None,
                            status="succeeded",
                            created_at=now,
                            context={"data": data},
                            started_at=now,
                            finished_at=now,
                            output=nodes["s5"],
                        )
                    )
                )
                jobs += [
                    _rows.job_row(
                        JobRecord(execution_id, key, "set", "succeeded", 1, now, now, output)
                    )
                    for key, output in nodes.items()
                ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_sqlite_writes._INSERT_EXECUTION, executions)
            conn.executemany(_sqlite_writes._UPSERT_JOB, jobs)
            conn.execute("COMMIT")
            count += settings.concurrency
        wall, used = time.perf_counter() - start, time.process_time() - cpu
    finally:
        conn.close()
    return Measured(RAW_SQLITE, count, wall, used)


def prepare(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """A folder holding the workflow alone (validated: raises Skip when this hookline
    cannot load it) and the request data the executions get."""
    from ._hookline import workflow_folder

    folder = workflow_folder(workdir / "embedded", WORKFLOW_KEY)
    return folder, json.loads((PAYLOADS / "push.json").read_text())


def run_embedded(settings: MicroSettings) -> MicroResult:
    """Measure the four sides, memory before SQLite."""
    folder, data = prepare(settings.workdir)
    scratch = settings.workdir / "embedded"
    for name in ("engine.db", "plain.db"):
        for suffix in ("", "-wal", "-shm"):
            (scratch / (name + suffix)).unlink(missing_ok=True)
    database = scratch / "engine.db"

    memory, memory_failed = trio.run(_engine, folder, "memory://", data, settings, ENGINE_MEMORY)
    task = trio.run(_trio_task, data, settings)
    durable, durable_failed = trio.run(
        _engine, folder, f"sqlite:///{database}", data, settings, ENGINE_SQLITE
    )
    with sqlite3.connect(database) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        executions = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
    conn.close()
    raw = _raw_sqlite(scratch / "plain.db", data, settings)
    return MicroResult(
        unit="executions",
        subject=ENGINE_MEMORY,
        subject_ops=memory.ops,
        subject_s=memory.wall_s,
        baseline=TRIO_TASK,
        baseline_ops=task.ops,
        baseline_s=task.wall_s,
        extra=((ENGINE_SQLITE, durable.rate), (RAW_SQLITE, raw.rate)),
        facts=(
            ("nodes", NODES),
            ("concurrent callers", settings.concurrency),
            ("failed executions", memory_failed + durable_failed),
            ("executions stored", executions),
            ("jobs stored", jobs),
        ),
        sides=(memory, task, durable, raw),
    )
