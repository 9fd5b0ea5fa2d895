"""The results: a rich table on the terminal and a JSON file with the machine's facts."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import attrs
from rich.console import Console
from rich.table import Table

from ._load import LoadResult
from ._scenarios import BASELINE, REPO_ROOT

__all__ = ["Outcome", "machine_facts", "print_table", "write_json"]

PACKAGES = ("hookline", "trio", "hypercorn", "quart", "quart-trio", "h11", "werkzeug", "httpx")


@attrs.frozen
class Outcome:
    """One scenario's run: a result, or the error that stopped it."""

    scenario: str
    description: str
    server_command: tuple[str, ...] = ()
    result: LoadResult | None = None
    error: str | None = None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine_facts(wrk_version: str | None) -> dict[str, object]:
    """What the figures depend on: cores, CPU, Python, package versions, the commit."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": wrk_version,
        "git_commit": _git_commit(),
    }


def _ratio(result: LoadResult, baseline: LoadResult | None) -> str:
    if baseline is None or baseline.rps == 0:
        return "-"
    return f"{result.rps / baseline.rps:.2f}x"


def print_table(outcomes: list[Outcome], console: Console) -> None:
    baseline = next((o.result for o in outcomes if o.scenario == BASELINE), None)
    table = Table(title="hookline benchmarks", caption=f"ratio: req/s over {BASELINE}'s")
    table.add_column("scenario", no_wrap=True)
    for heading in ("req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "ratio"):
        table.add_column(heading, justify="right")
    for outcome in outcomes:
        r = outcome.result
        if r is None:
            table.add_row(outcome.scenario, "[red]failed[/red]", "", "", "", "", "")
            continue
        table.add_row(
            outcome.scenario,
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            str(r.non_2xx),
            str(r.errors),
            _ratio(r, baseline),
        )
    console.print(table)
    for outcome in outcomes:
        if outcome.error:
            console.print(f"{outcome.scenario} failed:", style="red", markup=False)
            console.print(outcome.error, markup=False, highlight=False)


def write_json(
    folder: Path, outcomes: list[Outcome], facts: dict[str, object], settings: dict[str, object]
) -> Path:
    """Write ``<folder>/<UTC timestamp>.json`` and return its path."""
    now = datetime.datetime.now(datetime.UTC)
    baseline = next((o.result for o in outcomes if o.scenario == BASELINE), None)
    scenarios = []
    for outcome in outcomes:
        entry: dict[str, object] = {
            "scenario": outcome.scenario,
            "description": outcome.description,
            "server_command": list(outcome.server_command),
            "error": outcome.error,
        }
        if outcome.result is not None:
            r = outcome.result
            entry.update(
                generator=r.generator,
                requests=r.requests,
                elapsed_s=round(r.elapsed, 3),
                requests_per_s=round(r.rps, 1),
                p50_ms=round(r.p50_ms, 3),
                p99_ms=round(r.p99_ms, 3),
                non_2xx=r.non_2xx,
                errors=r.errors,
                ratio_to_baseline=(
                    round(r.rps / baseline.rps, 3) if baseline and baseline.rps else None
                ),
                load_command=r.command,
                load_output=r.output,
            )
        scenarios.append(entry)
    document = {
        "timestamp": now.isoformat(timespec="seconds"),
        "baseline": BASELINE,
        "settings": settings,
        "machine": facts,
        "scenarios": scenarios,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
