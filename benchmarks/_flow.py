"""``python -m benchmarks flow``: issue 17's figures, measured in process.

- **waits**: N executions parked on a ``wait`` node, then N matching events from 32
  senders at once. Reports the RSS each waiting execution costs (the engine's and the
  memory store's: the benchmark keeps ids only, both paths are warmed up first) and the
  p50/p99 from an event's acceptance to its execution's end, beside N executions parked
  on a ``delay`` node (RSS) that are then cancelled.
- **throttle**: starts per key over ten periods, in process; the most in any window
  one period long (sliding) against ``limit + burst``, for the starts the throttle
  booked (its decisions, judged strictly) and for the starts as recorded (when each
  execution really started and wrote it), strictly and allowing 50 ms of start
  latency, with the latency itself (recorded less booked, p99 and max).
- **throttle x3**: the same target with three ``hookline serve`` processes sharing
  one PostgreSQL (:mod:`._flow_throttle`), on recorded starts allowing 100 ms (the
  start permit's round trip to the database, on top of loop lag); skipped, saying why,
  without a PostgreSQL server (``--postgres URL`` names one; else
  ``HOOKLINE_TEST_POSTGRES_URL`` or scripts/postgres.sh's throwaway).

  Which starts are judged: the throttle guarantees its *bookings*. A recorded start
  is its booking plus the time the process took to carry it out (its event loop was
  busy; on a cluster, the start permit too). A start carried out late by more than
  the gap to a later, on-time start moves into that start's window: the strict count
  of recorded starts can then exceed ``limit + burst`` by one, while no booking does.
  That measures loop lag, not the rate, so the exit status weighs bookings strictly
  (where they can be observed: in process) and recorded starts with the allowance;
  every figure is printed.
- **debounce**: 1,000 deliveries over 50 keys give exactly 50 executions, each its
  key's last delivery.
- **batch**: 10,000 deliveries (``--batch``) over HTTP to a real ``hookline serve``
  process with ``batch: {size: 100}`` (``--batch-size``), SIGKILLed once a third of them
  are in and started again: every delivery must be in exactly one batch execution
  (:mod:`._flow_batch`).

Each runs on the memory store, on trio's real clock (waits, throttle) or a virtual one
(debounce), except batch (a server process on SQLite) and throttle x3 (three on
PostgreSQL); figures print as a table, and ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import resource
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
import trio.testing

from ._flow_batch import batch_run
from ._flow_throttle import THROTTLE_ALLOWANCE, most_in_any_window, postgres_store
from ._flow_throttle import throttle_processes as _throttle_processes
from ._spec import Skip

__all__ = ["flow"]

# Concurrent senders of the events that end the waits.
SENDERS = 32

WAITING = """
key: approval
timeout: 2h
concurrency: {max: 100000, queue: 100000}
nodes:
  - key: answer
    type: wait
    event: reactions
    match: "{{$context.data.ticket}}"
    timeout: 1h
    then: [{key: done, type: set, values: {ok: true}}]
"""

REACTIONS = """
key: reactions
concurrency: {queue: 100000}
trigger: {path: reactions, correlate: "{{$context.data.ticket}}"}
nodes: [{key: seen, type: set, values: {ok: true}}]
"""

DELAYED = """
key: delayed
timeout: 2h
concurrency: {max: 100000, queue: 100000}
nodes: [{key: nap, type: delay, duration: 1h}]
"""

THROTTLED = """
key: throttled
concurrency: {max: 64, queue: 100000}
throttle: {limit: %(limit)d, period: %(period)ss, burst: %(burst)d, key: "{{$context.data.k}}"}
nodes: [{key: go, type: set, values: {ok: true}}]
"""

DEBOUNCED = """
key: debounced
concurrency: {max: 64, queue: 100000}
debounce: {period: 30s, key: "{{$context.data.k}}"}
nodes: [{key: go, type: set, values: {n: "{{$context.data.n}}"}}]
"""


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _load(*texts: str) -> list[Any]:
    from hookline.engine._loader import load_workflow_text

    return [load_workflow_text(textwrap.dedent(t), source=f"{n}.yaml") for n, t in enumerate(texts)]


def _running(engine: Any, key: str) -> int:
    found = engine.workflow_statistics(key)
    return 0 if found is None else int(found.running)


def _output(outcome: Any) -> dict[str, Any]:
    output: dict[str, Any] = outcome.output
    return output


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _waits(count: int) -> dict[str, float]:
    from hookline import open_engine

    workflows = _load(WAITING, REACTIONS, DELAYED)
    async with open_engine(workflows, store="memory://", pending_limit=10 * count) as engine:
        # Warm up both paths first: the first executions of each pay one-time costs
        # (code paths, the store's tables growing) that are no execution's own.
        await _park_and_release(engine, 200, "W")
        await _delay_and_cancel(engine, 200)
        gc.collect()
        base = _rss_mib()
        # Only ids are kept here, as a sender would: what stays is the engine's own.
        waiting = [
            (await engine.submit("approval", data={"ticket": f"T-{n}"})).execution_id
            for n in range(count)
        ]
        while engine.events.statistics().waiting < count:  # noqa: ASYNC110 (a statistic)
            await trio.sleep(0.05)
        gc.collect()
        waiting_rss = _rss_mib() - base
        latencies: list[float] = []

        # Events come from SENDERS senders at once (a burst of 10,000 at once would
        # measure its own queue, not a resume).
        senders = trio.CapacityLimiter(SENDERS)

        async def resume(n: int, execution_id: str) -> None:
            async with senders:
                sent = time.perf_counter()
                await engine.submit("reactions", data={"ticket": f"T-{n}"})
                handle = engine.handle(execution_id)  # resumed by the event's acceptance
                if handle is not None:
                    await handle.wait_finished()
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for n, execution_id in enumerate(waiting):
                nursery.start_soon(resume, n, execution_id)
        resumed_in = time.perf_counter() - started
        gc.collect()
        base = _rss_mib()
        delayed = await _delay_and_cancel(engine, count, measure=True)
        delay_rss = delayed - base
    return {
        "waiting executions": count,
        "KiB per waiting execution": waiting_rss * 1024 / count,
        "KiB per delayed execution": delay_rss * 1024 / count,
        "event senders at once": SENDERS,
        "event to end p50 ms": _percentile(latencies, 0.5) * 1000,
        "event to end p99 ms": _percentile(latencies, 0.99) * 1000,
        "all resumed in s": resumed_in,
    }


async def _park_and_release(engine: Any, count: int, prefix: str) -> None:
    for n in range(count):
        await engine.submit("approval", data={"ticket": f"{prefix}-{n}"})
    while engine.events.statistics().waiting < count:  # noqa: ASYNC110 (a statistic)
        await trio.sleep(0.05)
    for n in range(count):
        await engine.submit("reactions", data={"ticket": f"{prefix}-{n}"})
    while engine.events.statistics().waiting:  # noqa: ASYNC110 (a statistic)
        await trio.sleep(0.05)


async def _delay_and_cancel(engine: Any, count: int, *, measure: bool = False) -> float:
    """Park ``count`` executions on a delay, then cancel them; the RSS (MiB) while
    they were parked when ``measure``."""
    delayed = [(await engine.submit("delayed", data={})).execution_id for _ in range(count)]
    while _running(engine, "delayed") < count:  # noqa: ASYNC110 (a statistic)
        await trio.sleep(0.05)
    if measure:
        gc.collect()
    rss = _rss_mib()
    for execution_id in delayed:
        await engine.cancel(execution_id)
    return rss


async def _throttle(limit: int, period: float, burst: int, keys: int) -> dict[str, float]:
    from hookline import open_engine

    text = THROTTLED % {"limit": limit, "period": period, "burst": burst}
    per_key = limit * 10  # ten periods' worth
    # Records on trio's clock, the one the throttle books on: booked and recorded
    # starts compare directly.
    async with open_engine(_load(text), store="memory://", clock=trio.current_time) as engine:
        booked = _record_bookings(engine, "throttled")
        handles: list[tuple[str, str, Any]] = []
        for n in range(per_key):
            for k in range(keys):
                admission = await engine.submit("throttled", data={"k": f"k{k}", "n": n})
                handles.append((f"k{k}", admission.execution_id, admission.handle))
        for _, _, handle in handles:
            await handle.wait_finished()
        starts: dict[str, list[float]] = {}
        for key, execution_id, _ in handles:
            record = await engine.store.get_execution(execution_id)
            assert record is not None
            assert record.started_at is not None
            starts.setdefault(key, []).append(record.started_at)
    # Each key's starts follow its bookings in order: pair them up.
    lags = [
        start - booking
        for key, times in starts.items()
        for start, booking in zip(sorted(times), sorted(booked[key]), strict=True)
    ]
    return {
        "keys": keys,
        "starts per key": per_key,
        "most booked starts in any period-long window": most_in_any_window(booked, period, 1e-6),
        "most recorded starts in any period-long window": most_in_any_window(starts, period, 1e-6),
        "the same, allowing 50 ms of start latency": most_in_any_window(starts, period, 0.05),
        "start latency p99 ms": _percentile(lags, 0.99) * 1000,
        "start latency max ms": max(lags) * 1000,
        "limit + burst": limit + burst,
    }


def _record_bookings(engine: Any, key: str) -> dict[str, list[float]]:
    """The starts the throttle of workflow ``key`` books from now on, by rate key (its
    GCRA, wrapped: bookings are not stored)."""
    gcra = engine._workflows.supervisors[key].runner._throttle
    schedule = gcra.schedule
    booked: dict[str, list[float]] = {}

    def recording(rate_key: str, now: float) -> float:
        start: float = schedule(rate_key, now)
        booked.setdefault(rate_key, []).append(start)
        return start

    gcra.schedule = recording
    return booked


def _throttle_x3(folder: Path, period: float, postgres: str | None) -> dict[str, float]:
    """The three-process throttle on ``postgres`` (a URL on an empty schema), else on a
    fresh schema of a server found or started (raises Skip without one)."""
    if postgres is not None:
        return trio.run(functools.partial(_throttle_processes, folder, postgres, period=period))
    with postgres_store() as url:
        return trio.run(functools.partial(_throttle_processes, folder, url, period=period))


async def _debounce() -> dict[str, float]:
    from hookline import open_engine

    async with open_engine(_load(DEBOUNCED), store="memory://") as engine:
        last: dict[str, int] = {}
        handles: list[Any] = []
        for n in range(1000):
            key = f"k{(n * 7919) % 50}"
            last[key] = n
            handles.append((await engine.submit("debounced", data={"k": key, "n": n})).handle)
        outcomes = [await handle.wait_finished() for handle in handles]
    ran = sorted(int(_output(o)["n"]) for o in outcomes if o.succeeded)
    return {
        "deliveries": 1000,
        "keys": 50,
        "executions run": len(ran),
        "each its key's last": float(ran == sorted(last.values())),
    }


def flow(argv: Sequence[str], results: Path) -> int:
    """The ``flow`` command: print the figures; 1 if a precision check missed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks flow",
        description="Issue 17's flow control figures: waits against delays, throttle "
        "precision, debounce exactness, batch exactness across a SIGKILL.",
    )
    parser.add_argument("--waits", type=int, default=10_000, help="waiting executions (10000)")
    parser.add_argument(
        "--period", type=float, default=1.0, help="the throttle's period in seconds (1)"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="batched deliveries (10000)")
    parser.add_argument("--batch-size", type=int, default=100, help="the batch's size (100)")
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL URL on an empty schema for the three-process throttle (default: "
        "a fresh schema of HOOKLINE_TEST_POSTGRES_URL or of a throwaway server)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, float]] = {
        "waits": trio.run(_waits, args.waits),
        "throttle": trio.run(_throttle, 5, args.period, 1, 4),
        "debounce": trio.run(_debounce, clock=trio.testing.MockClock(autojump_threshold=0)),
    }
    with tempfile.TemporaryDirectory(prefix="hookline-flow-batch-") as folder:
        figures["batch"] = trio.run(batch_run, Path(folder), args.batch, args.batch_size)
    with tempfile.TemporaryDirectory(prefix="hookline-flow-throttle-") as folder:
        try:
            figures["throttle x3"] = _throttle_x3(Path(folder), args.period, args.postgres)
        except Skip as why:
            print(f"throttle x3 skipped: {why}", file=sys.stderr)
    for name, values in figures.items():
        print(name)
        for label, value in values.items():
            print(f"  {label:<50} {value:,.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    throttle, debounce = figures["throttle"], figures["debounce"]
    ok = throttle["most booked starts in any period-long window"] <= throttle["limit + burst"]
    ok = ok and throttle["the same, allowing 50 ms of start latency"] <= throttle["limit + burst"]
    if "throttle x3" in figures:
        x3 = figures["throttle x3"]
        allowed = f"the same, allowing {THROTTLE_ALLOWANCE * 1000:.0f} ms of start latency"
        ok = ok and x3[allowed] <= x3["limit + burst"]
    ok = ok and debounce["executions run"] == 50 and debounce["each its key's last"] == 1.0
    ok = ok and figures["batch"]["deliveries exactly once"] == 1.0
    print("met" if ok else "missed", file=sys.stderr)
    return 0 if ok else 1
