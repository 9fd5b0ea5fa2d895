"""``python -m benchmarks [scenario ...] [--duration S] [--connections C] [--quick]``."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
from rich.console import Console

from ._load import LoadSettings, run_builtin, run_wrk, wrk_path
from ._report import Outcome, machine_facts, print_table, write_json
from ._scenarios import HERE, SCENARIOS, Scenario
from ._servers import ServerError, running_server

RESULTS = HERE / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure hookline's webhook throughput beside reference servers.",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help="default: all")
    parser.add_argument("--duration", type=float, help="seconds per scenario (default 10)")
    parser.add_argument("--connections", type=int, help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first (default 2)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 s, 2 connections, no warm-up"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "builtin"),
        default="auto",
        help="load generator (auto: wrk when installed)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON")
    return parser


def _wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[0]
    return first.partition("Copyright")[0].replace("[epoll]", "").strip()


def _measure(
    scenario: Scenario, workdir: Path, settings: LoadSettings, warmup: float, wrk: str | None
) -> Outcome:
    server_command: tuple[str, ...] = ()
    try:
        with running_server(scenario, workdir) as server:
            server_command = server.command
            stamp = f"{scenario.name}-{time.time_ns()}"
            # The warm-up's figures are dropped: only the last phase's result is kept.
            phases = [("warmup", warmup)] if warmup > 0 else []
            phases.append(("run", settings.duration))
            for phase, seconds in phases:
                phase_settings = LoadSettings(seconds, settings.connections, settings.threads)
                if wrk is not None:
                    result = run_wrk(
                        wrk, server.base_url, scenario.request, phase_settings, f"{stamp}-{phase}"
                    )
                else:
                    result = run_builtin(
                        server.base_url, scenario.request, phase_settings, f"{stamp}-{phase}"
                    )
                    rerun = ["python", "-m", "benchmarks", scenario.name, "--generator"]
                    rerun += ["builtin", "--duration", f"{seconds:g}"]
                    rerun += ["--connections", str(settings.connections), "--warmup", "0"]
                    result = attrs.evolve(result, command=shlex.join(rerun))
    except (ServerError, RuntimeError) as exc:
        return Outcome(scenario.name, scenario.description, server_command, error=str(exc))
    return Outcome(scenario.name, scenario.description, server_command, result=result)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; 0 when all ran, 1 when any failed, 2 for bad arguments."""
    args = _parser().parse_args(argv)
    console = Console()
    names = args.scenarios or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        console.print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    duration = args.duration or (2.0 if args.quick else 10.0)
    connections = args.connections or (2 if args.quick else 32)
    warmup = args.warmup if args.warmup is not None else (0.0 if args.quick else 2.0)
    settings = LoadSettings(duration, connections, max(1, args.threads))

    wrk = wrk_path() if args.generator != "builtin" else None
    if args.generator == "wrk" and wrk is None:
        console.print("wrk is not installed: run benchmarks/install-wrk.sh")
        return 2
    generator = f"wrk ({_wrk_version(wrk)})" if wrk else "builtin (trio, one process)"
    console.print(
        f"{len(names)} scenario(s), {duration:g} s each after {warmup:g} s warm-up, "
        f"{connections} connections, load generator: {generator}"
    )

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as scratch:
        for name in names:
            console.print(f"[bold]{name}[/bold] ...")
            outcome = _measure(SCENARIOS[name], Path(scratch), settings, warmup, wrk)
            outcomes.append(outcome)

    print_table(outcomes, console)
    reproduce = ["python", "-m", "benchmarks", *names, "--duration", f"{duration:g}"]
    reproduce += ["--connections", str(connections), "--warmup", f"{warmup:g}"]
    reproduce += ["--threads", str(settings.threads), "--generator", args.generator]
    path = write_json(
        args.results,
        outcomes,
        machine_facts(_wrk_version(wrk) if wrk else None),
        {
            "duration_s": duration,
            "connections": connections,
            "threads": settings.threads,
            "warmup_s": warmup,
            "generator": generator,
            "reproduce": shlex.join(reproduce),
        },
    )
    console.print(f"results: {path}")
    return 1 if any(outcome.error for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
