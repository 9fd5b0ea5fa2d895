"""The embedded engine without HTTP: executions/s of a five-node workflow through
``hookline.open_engine`` + ``engine.run`` on the SQLite store, against the same five
steps as plain function calls, in the same run.

``concurrency`` tasks call ``engine.run`` back to back (so the store can group their
commits); the plain steps run in one loop, no I/O. The engine is also measured on the
in-memory store, to split the cost of durability from the cost of the engine. After
the SQLite run the job rows are counted, to show each node run was recorded durably.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import trio

from ._results import MicroResult
from ._spec import PAYLOADS, MicroSettings, Skip

__all__ = ["WORKFLOW_KEY", "plain_steps", "run_embedded"]

WORKFLOW_KEY = "embedded-5"
NODES = 5


def plain_steps(data: dict[str, Any]) -> dict[str, Any]:
    """The workflow's five ``set`` nodes as plain function calls: the same lookups,
    the same result objects, each step reading the earlier ones. Returns the last."""
    return _all_steps(data)["s5"]


def _all_steps(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    nodes["s1"] = _s1(data)
    nodes["s2"] = _s2(data, nodes)
    nodes["s3"] = _s3(data, nodes)
    nodes["s4"] = _s4(nodes)
    nodes["s5"] = _s5(nodes)
    return nodes


def _s1(data: dict[str, Any]) -> dict[str, Any]:
    return {"ref": data.get("ref"), "repo": data.get("repository", {}).get("full_name")}


def _s2(data: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"ref": nodes["s1"]["ref"], "pusher": data.get("pusher", {}).get("name")}


def _s3(data: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"repo": nodes["s1"]["repo"], "head": data.get("after")}


def _s4(nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"pusher": nodes["s2"]["pusher"], "head": nodes["s3"]["head"]}


def _s5(nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"ref": nodes["s2"]["ref"], "repo": nodes["s3"]["repo"], "by": nodes["s4"]["pusher"]}


async def _engine_rate(
    folder: Path, store: str, data: dict[str, Any], settings: MicroSettings
) -> tuple[int, float, int]:
    """(succeeded executions, seconds, failed executions) over the measured window."""
    from hookline import open_engine

    counts = [0, 0]

    async def caller() -> None:
        while True:
            outcome = await engine.run(WORKFLOW_KEY, data=data)
            counts[0 if outcome.status == "succeeded" else 1] += 1

    async with open_engine(folder, store=store) as engine:
        if WORKFLOW_KEY not in engine.workflows:
            errors = "; ".join(str(error) for error in engine.load_errors)
            raise Skip(f"hookline cannot load {WORKFLOW_KEY}.yaml: {errors}")
        for _ in range(20):  # warm-up: first-use costs are not the steady state
            await engine.run(WORKFLOW_KEY, data=data)
        start = trio.current_time()
        with trio.move_on_after(settings.duration):
            async with trio.open_nursery() as nursery:
                for _ in range(settings.concurrency):
                    nursery.start_soon(caller)
        elapsed = trio.current_time() - start
    return counts[0], elapsed, counts[1]


def _plain_rate(data: dict[str, Any], duration: float) -> tuple[int, float]:
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while time.perf_counter() < deadline:
        for _ in range(100):
            plain_steps(data)
        count += 100
    return count, time.perf_counter() - start


def _durable_plain_rate(
    path: Path, data: dict[str, Any], settings: MicroSettings
) -> tuple[int, float]:
    """The plain steps plus what a durable record of them costs at the least: the
    execution row and five job rows written with raw ``executemany``, one commit per
    batch of ``concurrency`` executions (hookline's schema and row encoding)."""
    from hookline._ids import new_id
    from hookline.store import _rows, _sqlite_writes
    from hookline.store._records import ExecutionRecord, JobRecord
    from hookline.store._schema import migrate

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn)
    count = 0
    start = time.perf_counter()
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
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return count, elapsed


def run_embedded(settings: MicroSettings) -> MicroResult:
    """Measure the engine on SQLite and in memory, and the plain steps."""
    from ._hookline import WORKFLOWS, validate

    folder = settings.workdir / "embedded" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{WORKFLOW_KEY}.yaml").write_bytes((WORKFLOWS / f"{WORKFLOW_KEY}.yaml").read_bytes())
    validate(folder)
    data = json.loads((PAYLOADS / "push.json").read_text())
    database = settings.workdir / "embedded" / "engine.db"
    for name in ("engine.db", "plain.db"):
        for suffix in ("", "-wal", "-shm"):
            (settings.workdir / "embedded" / (name + suffix)).unlink(missing_ok=True)

    durable, durable_s, durable_failed = trio.run(
        _engine_rate, folder, f"sqlite:///{database}", data, settings
    )
    with sqlite3.connect(database) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        executions = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
    conn.close()
    memory, memory_s, _ = trio.run(_engine_rate, folder, "memory://", data, settings)
    plain, plain_s = _plain_rate(data, settings.duration)
    durable_plain, durable_plain_s = _durable_plain_rate(
        settings.workdir / "embedded" / "plain.db", data, settings
    )
    return MicroResult(
        unit="executions",
        subject="engine.run, SQLite store",
        subject_ops=durable,
        subject_s=durable_s,
        baseline="the 5 steps as plain function calls",
        baseline_ops=plain,
        baseline_s=plain_s,
        extra=(
            ("engine.run, memory store", memory / memory_s if memory_s else 0.0),
            (
                "plain steps + raw SQLite rows",
                durable_plain / durable_plain_s if durable_plain_s else 0.0,
            ),
        ),
        facts=(
            ("nodes", NODES),
            ("concurrent callers", settings.concurrency),
            ("failed executions", durable_failed),
            ("executions stored", executions),
            ("jobs stored", jobs),
        ),
    )
