"""``python -m benchmarks [scenario ...] [--target URL] [--rate R] [--duration D]
[--connections C] [--rounds N] [--quick]``, and the commands ``prepare``, ``cleanup``,
``compare`` and ``locust``: see ``--help`` and benchmarks/README.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from ._commands import COMMANDS, redacted
from ._embedded import CALLERS
from ._html import write_html
from ._load import wrk_path, wrk_version
from ._machine import CoreUse, machine_facts
from ._peers import node_red_version, node_version
from ._plans import generator_check, latency_sweep, soak, targets
from ._prepare import load_prepared
from ._progress import RunProgress
from ._publish import publish
from ._ratios import ratios_markdown
from ._report import markdown, print_report, write_json
from ._results import Outcome
from ._runner import Runner, RunSettings
from ._scale import scale
from ._scale_report import scale_markdown
from ._scenarios import DEFAULT, SCENARIOS, TARGETS
from ._spec import HERE, HttpScenario, MicroScenario

RESULTS = HERE / "results"
_PLANS = {
    "latency-sweep": latency_sweep,
    "generator-check": generator_check,
    "scale": scale,
    "soak": soak,
    TARGETS: targets,
}
_MICRO_CONCURRENCY = {"embedded-engine": CALLERS, "store-actor": 64}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure hookline's throughput and latency beside its stack's ceiling "
        "and a peer, in one run. Without scenario names: every default scenario.",
        epilog="scenarios:\n"
        + "\n".join(f"  {name:24} {s.description}" for name, s in SCENARIOS.items())
        + "\n\ncommands (each has --help):\n"
        + "\n".join(f"  {name:24} {summary}" for name, (summary, _) in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help="default: all")
    parser.add_argument("--target", help="base URL of a deployed hookline to load instead")
    parser.add_argument(
        "--key",
        default=os.environ.get("HOOKLINE_ADMIN_KEY"),
        help="admin key of the target, for its /metrics (default: $HOOKLINE_ADMIN_KEY)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat each measured phase N times (1)"
    )
    parser.add_argument("--rate", type=float, help="open loop at R req/s instead of closed loop")
    parser.add_argument("--duration", type=float, help="measured seconds per phase (10)")
    parser.add_argument("--connections", type=int, help="closed-loop connections (32)")
    parser.add_argument("--open-connections", type=int, help="open-loop connection pool (64)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds before each server (2)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "builtin"),
        default="auto",
        help="closed-loop generator (auto: wrk when installed)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke run: seconds, no warm-up, no installs"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument(
        "--publish", action="store_true", help="put the results and charts in the README"
    )
    return parser


def _settings(args: argparse.Namespace, wrk: str | None) -> RunSettings:
    quick = args.quick
    duration = args.duration or (1.5 if quick else 10.0)
    return RunSettings(
        duration=duration,
        warmup=args.warmup if args.warmup is not None else (0.0 if quick else 2.0),
        connections=args.connections or (4 if quick else 32),
        open_connections=args.open_connections or (16 if quick else 64),
        rate=args.rate,
        quick=quick,
        wrk=wrk,
        threads=max(1, args.threads),
        target=args.target.rstrip("/") if args.target else None,
        micro_duration=1.0 if quick else min(duration, 5.0),
        admin_key=args.key,
        prepared=load_prepared(args.results, args.target) if args.target else None,
        rounds=max(1, args.rounds),
    )


def _run_step(runner: Runner, name: str) -> None:
    scenario = SCENARIOS[name]
    if isinstance(scenario, HttpScenario):
        if runner.settings.rate is not None:
            runner.http_rates(scenario, [runner.settings.rate])
        else:
            runner.http_max(scenario)
    elif isinstance(scenario, MicroScenario):
        runner.micro(scenario, _MICRO_CONCURRENCY.get(name, 32))
    else:
        _PLANS[name](runner)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; 0 when none failed (skips are fine), 1 when one
    failed, 2 for bad arguments."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0] in COMMANDS:
        return COMMANDS[given[0]][1](given[1:], RESULTS)
    args = _parser().parse_args(argv)
    # Piped into a CI log, rich would assume 80 columns and squeeze the tables.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    names = args.scenarios or DEFAULT
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        console.print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    wrk = wrk_path() if args.generator != "builtin" else None
    if args.generator == "wrk" and wrk is None:
        console.print("wrk is not installed: run benchmarks/install-wrk.sh")
        return 2
    settings = _settings(args, wrk)
    generator = f"wrk ({wrk_version(wrk)})" if wrk else "built-in closed loop (trio)"
    if wrk is None and args.generator == "auto":
        console.print("wrk not found (benchmarks/install-wrk.sh installs it): using the built-in")
    console.print(
        f"{len(names)} step(s): {settings.duration:g} s per phase after {settings.warmup:g} s "
        f"warm-up; closed loop: {generator}, {settings.connections} connections; open loop: "
        f"built-in, {settings.open_connections} connections"
    )
    started = datetime.datetime.now(datetime.UTC)
    cores_before = CoreUse.now()
    outcomes: list[Outcome]
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as scratch:
        with RunProgress(console, len(names)) as progress:
            runner = Runner(settings, Path(scratch), progress)
            for name in names:
                _run_step(runner, name)
                progress.step_done()
        outcomes = runner.outcomes
        other_cores = CoreUse.now().other_cores(cores_before)
        facts = machine_facts(
            Path(scratch),
            wrk=wrk_version(wrk) if wrk else None,
            node=node_version(),
            node_red=node_red_version(),
        )
    command = shlex.join(["python", "-m", "benchmarks", *redacted(given)])
    run: dict[str, object] = {
        "timestamp": started.isoformat(timespec="seconds"),
        "command": command,
        "generator": generator,
        # The admin key is a credential: never written down.
        "settings": {k: v for k, v in vars(args).items() if k not in ("results", "key")},
        "effective": {
            "duration_s": settings.duration,
            "warmup_s": settings.warmup,
            "connections": settings.connections,
            "open_connections": settings.open_connections,
            "micro_duration_s": settings.micro_duration,
        },
        # Figures taken while other work shared the cores are not comparable.
        "other_work_cores": other_cores,
    }
    print_report(outcomes, console)
    if other_cores is not None:
        console.print(f"other work on this machine during the run: {other_cores:.2f} cores")
    stem = f"{started:%Y%m%dT%H%M%SZ}"
    folder: Path = args.results
    path = write_json(folder / f"{stem}.json", outcomes, facts, run)
    summary = markdown(outcomes, facts, run)
    ratios = ratios_markdown(outcomes, facts, run)
    scaled = scale_markdown(outcomes, facts, run)
    parts = (summary, ratios and f"## Issue 12 targets\n\n{ratios}", scaled)
    (folder / f"{stem}.md").write_text("\n".join(part for part in parts if part))
    page = write_html(json.loads(path.read_text()), path.with_suffix(".html"))
    console.print(f"results: {path}, {path.with_suffix('.md')} and {page}")
    charts: list[Path] = []
    if not args.no_charts:
        try:
            from ._charts import write_charts

            charts = write_charts(outcomes, folder, stem)
        except ImportError:
            console.print("charts skipped: matplotlib is missing (pip install -e '.[bench]')")
        for chart in charts:
            console.print(f"chart: {chart}")
    if args.publish:
        # `targets` alone measures a few scenarios: the full results stay as they were.
        alone = list(names) == [TARGETS]
        readme = publish(
            "" if alone else summary, [] if alone else charts, scale=scaled, targets=ratios
        )
        console.print(f"published to {readme}")
    return 1 if any(outcome.failed for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
