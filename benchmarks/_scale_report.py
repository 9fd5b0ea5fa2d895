"""The ``scale`` step's part of the report: one row per workload and setup, with its
throughput over one PostgreSQL process and over one SQLite process of the same run.

The rows are built once (:func:`scale_rows`) and rendered as a rich table, Markdown
and JSON; the HTTP table of the other scenarios leaves these outcomes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from rich.table import Table

from ._results import Outcome
from ._scale import SCALE, SETUPS, WORKLOADS, Setup

__all__ = ["ScaleRow", "is_scale", "scale_json", "scale_markdown", "scale_rows", "scale_table"]

_LABELS = {workload.scenario: workload.label for workload in WORKLOADS}
_COLUMNS = (
    "workload",
    "store",
    "processes",
    "req/s",
    "x 1 process",
    "x SQLite",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "non-2xx",
    "errors",
)


def is_scale(outcome: Outcome) -> bool:
    """Whether ``outcome`` comes from the scale step."""
    return outcome.scenario == SCALE or outcome.scenario in _LABELS


@attrs.frozen
class ScaleRow:
    """One measured (or skipped, or failed) setup of one workload. ``over_one`` is its
    req/s over PostgreSQL with one process, ``over_sqlite`` over SQLite with one (None:
    that reference was not measured)."""

    outcome: Outcome
    workload: str
    setup: Setup | None
    over_one: float | None = None
    over_sqlite: float | None = None


def _rps(outcomes: Sequence[Outcome], scenario: str, system: str) -> float | None:
    for outcome in outcomes:
        if outcome.scenario == scenario and outcome.system == system and outcome.result:
            return outcome.result.rps if outcome.result.rps > 0 else None
    return None


def scale_rows(outcomes: Sequence[Outcome]) -> list[ScaleRow]:
    """The scale step's outcomes in run order, with their ratios."""
    rows = []
    for outcome in outcomes:
        if not is_scale(outcome):
            continue
        label = _LABELS.get(outcome.scenario, "all")
        setup = SETUPS.get(outcome.system)
        if outcome.result is None or setup is None:
            rows.append(ScaleRow(outcome, label, setup))
            continue
        rps = outcome.result.rps
        one = _rps(outcomes, outcome.scenario, Setup("postgres", 1).system)
        sqlite = _rps(outcomes, outcome.scenario, Setup("sqlite", 1).system)
        over_one = rps / one if one and setup.store == "postgres" else None
        rows.append(ScaleRow(outcome, label, setup, over_one, rps / sqlite if sqlite else None))
    return rows


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _cells(row: ScaleRow) -> list[str]:
    setup = row.setup
    head = [
        row.workload,
        setup.store if setup else row.outcome.system,
        str(setup.processes) if setup else "-",
    ]
    r = row.outcome.result
    if r is None:
        state = "skipped" if row.outcome.skipped else "FAILED"
        return [*head, state, *[""] * (len(_COLUMNS) - 4)]
    return [
        *head,
        f"{r.rps:,.0f}",
        _times(row.over_one),
        _times(row.over_sqlite),
        f"{r.latency.p50_ms:.2f}",
        f"{r.latency.p90_ms:.2f}",
        f"{r.latency.p99_ms:.2f}",
        str(r.non_2xx),
        str(r.errors + r.unfinished),
    ]


def scale_table(outcomes: Sequence[Outcome]) -> Table | None:
    """The rows as a rich table (None: the run had no scale step)."""
    rows = scale_rows(outcomes)
    if not rows:
        return None
    table = Table(
        title="scale: processes sharing one PostgreSQL (closed loop, same load for every N)",
        caption="x 1 process: over PostgreSQL with one process; x SQLite: over one process "
        "on SQLite (synchronous=FULL)",
    )
    for index, heading in enumerate(_COLUMNS):
        table.add_column(heading, justify="left" if index < 2 else "right")
    for row in rows:
        table.add_row(*_cells(row))
    return table


def scale_markdown(
    outcomes: Sequence[Outcome], facts: dict[str, object], run: dict[str, Any]
) -> str:
    """The rows as a Markdown section (with the machine, the command and the notes), or
    an empty string when the run had no scale step."""
    rows = scale_rows(outcomes)
    if not rows:
        return ""
    effective = run.get("effective", {})
    lines = [
        (
            f"Run {run['timestamp']} on {facts['cpu_model']} ({facts['usable_cores']} cores, "
            "shared by the servers, PostgreSQL and the load generator), Python "
            f"{facts['python']}, commit {str(facts['git_commit'])[:10]}"
            f"{' (with local changes)' if facts.get('git_dirty') else ''}; load generator: "
            f"{run['generator']}, {effective.get('connections')} connections, "
            f"{effective.get('duration_s')} s per setup after "
            f"{effective.get('warmup_s')} s warm-up."
        ),
        "",
        f"Command: `{run['command']}`",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
        *("| " + " | ".join(_cells(row)) + " |" for row in rows),
    ]
    notes = list(dict.fromkeys(f"- {r.workload}: {n}" for r in rows for n in r.outcome.notes))
    notes += [
        f"- {r.outcome.scenario}: skipped: {r.outcome.skipped}" for r in rows if r.outcome.skipped
    ]
    notes += [f"- {r.outcome.scenario}: failed: {r.outcome.error}" for r in rows if r.outcome.error]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def scale_json(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The rows for the JSON document: what was measured and the ratios."""
    return [
        {
            "scenario": row.outcome.scenario,
            "workload": row.workload,
            "store": row.setup.store if row.setup else None,
            "processes": row.setup.processes if row.setup else None,
            "requests_per_s": round(row.outcome.result.rps, 1) if row.outcome.result else None,
            "over_one_process": None if row.over_one is None else round(row.over_one, 3),
            "over_sqlite": None if row.over_sqlite is None else round(row.over_sqlite, 3),
            "skipped": row.outcome.skipped,
            "error": row.outcome.error,
        }
        for row in scale_rows(outcomes)
    ]
