"""``python -m benchmarks.profile_embedded [--store memory|sqlite] [--seconds S]``: where
the embedded engine spends its time on the five-node workflow of ``embedded-engine``.

The same load as the benchmark (32 callers of ``engine.run`` back to back, after a
warm-up) under pyinstrument (the ``dev`` extra): first the functions by their own
time (flat), then the call tree. Sampling covers the loop's thread, where the engine
runs; SQLite's writer thread is not in it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from ._embedded import WARMUP, WORKFLOW_KEY, engine_execution, prepare
from ._spec import Skip

__all__ = ["main"]


async def _profiled(
    folder: Path, store: str, data: dict[str, Any], seconds: float, concurrency: int
) -> tuple[Any, int]:
    from pyinstrument import Profiler

    from hookline import open_engine

    done = [0]
    async with open_engine(folder, store=store) as engine:
        if WORKFLOW_KEY not in engine.workflows:
            raise Skip("; ".join(str(error) for error in engine.load_errors))
        execute = engine_execution(engine, data)

        async def caller() -> None:
            while True:
                await execute()
                done[0] += 1

        for _ in range(WARMUP):
            await execute()
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(caller)
        profiler.stop()
    return profiler, done[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_embedded")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lines", type=int, default=15, help="flat lines to print (15)")
    args = parser.parse_args(argv)
    try:
        from pyinstrument.renderers import ConsoleRenderer
    except ImportError:
        print("pyinstrument is missing: pip install -e '.[dev]'")
        return 2
    with tempfile.TemporaryDirectory(prefix="hookline-profile-") as scratch:
        try:
            folder, data = prepare(Path(scratch))
        except Skip as exc:
            print(exc)
            return 1
        store = "memory://" if args.store == "memory" else f"sqlite:///{scratch}/engine.db"
        profiler, done = trio.run(_profiled, folder, store, data, args.seconds, args.concurrency)
    session = profiler.last_session
    print(
        f"{done:,} executions of {WORKFLOW_KEY} on the {args.store} store in "
        f"{session.duration:.2f} s ({done / session.duration:,.0f}/s), "
        f"{args.concurrency} callers; CPU {session.cpu_time:.2f} s"
    )
    flat = ConsoleRenderer(flat=True, time="percent_of_total")
    lines = [line for line in flat.render(session).splitlines() if line.strip()]
    print(f"\nflat, self time (top {args.lines}):")
    print("\n".join(lines[: args.lines + 2]))
    tree = ConsoleRenderer(time="percent_of_total", short_mode=True)
    print("\ncall tree:")
    print(tree.render(session))
    return 0


if __name__ == "__main__":
    sys.exit(main())
