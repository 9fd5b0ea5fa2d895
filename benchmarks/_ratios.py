"""The target ratios of issue 12, each of two figures measured in the same run.

``python -m benchmarks targets`` measures what they need (or ``make bench`` does, as
part of everything); :func:`target_ratios` reads them from the run's outcomes. A
ratio whose figures the run did not produce is reported as not measured, never as met.
The "before" column holds the figures issue 12 quotes for the code before its rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from rich.table import Table

from ._embedded import ENGINE_MEMORY, ENGINE_SQLITE, RAW_SQLITE, TRIO_TASK
from ._results import Measured, Outcome
from ._scenarios import ASYNC_INGEST, BASELINE, EMBEDDED, SYNC

__all__ = [
    "Figure",
    "TargetRatio",
    "half_rate",
    "ratios_json",
    "ratios_markdown",
    "ratios_table",
    "target_ratios",
]

#: The open-loop target is measured at this fraction of hookline's async-ingest maximum.
HALF = 0.5


@attrs.frozen
class Figure:
    """One side of a ratio: ``value`` in ``unit`` (None: not measured); ``detail``
    adds what else was measured with it, ``cpu_us`` its CPU cost per execution or
    request (None: not sampled)."""

    label: str
    value: float | None
    unit: str
    detail: str = ""
    cpu_us: float | None = None

    def render(self) -> str:
        if self.value is None:
            return f"{self.label}: -"
        shown = f"{self.value:,.0f}" if self.value >= 100 else f"{self.value:.3g}"
        return f"{self.label}: {shown} {self.unit}" + (f" ({self.detail})" if self.detail else "")


@attrs.frozen
class TargetRatio:
    """``a`` over ``b`` against ``goal``: at most (costs, latencies) or at least
    (throughput). ``before`` is the ratio issue 12 quotes for the code before it."""

    name: str
    a: Figure
    b: Figure
    goal: float
    at_most: bool
    before: str

    @property
    def ratio(self) -> float | None:
        if self.a.value is None or not self.b.value:
            return None
        return self.a.value / self.b.value

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio <= self.goal if self.at_most else ratio >= self.goal

    @property
    def goal_text(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.goal:g}x"

    @property
    def cpu_ratio(self) -> float | None:
        """The same ratio from CPU cost alone (throughput: B's cost over A's): what
        the figures would give if each side had the cores to itself."""
        a, b = self.a.cpu_us, self.b.cpu_us
        if not a or not b:
            return None
        return a / b if self.at_most else b / a

    @property
    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"{self.ratio:.3g}x"

    @property
    def cpu_ratio_text(self) -> str:
        return "-" if self.cpu_ratio is None else f"{self.cpu_ratio:.3g}x"


def _max_rps(outcomes: Sequence[Outcome], scenario: str) -> float | None:
    for outcome in reversed(outcomes):
        if outcome.scenario == scenario and outcome.phase == "max" and outcome.result:
            return outcome.result.rps or None
    return None


def half_rate(rps: float) -> float:
    """The offered rate for the open-loop target: half of ``rps``, to the nearest 10
    (as the latency sweep rounds, so its 50% run is this one)."""
    return float(max(10, round(rps * HALF / 10) * 10))


def _p99(outcomes: Sequence[Outcome], scenario: str, rate: float) -> float | None:
    for outcome in reversed(outcomes):
        r = outcome.result
        if outcome.scenario == scenario and r and r.mode == "open" and r.offered_rps == rate:
            return r.latency.p99_ms
    return None


def _sides(outcomes: Sequence[Outcome]) -> dict[str, Measured]:
    for outcome in reversed(outcomes):
        if outcome.scenario == EMBEDDED and outcome.micro is not None:
            return {side.label: side for side in outcome.micro.sides}
    return {}


def _cpu(side: Measured | None, label: str) -> Figure:
    if side is None or not side.ops:
        return Figure(label, None, "CPU µs/execution")
    detail = f"{side.rate:,.0f} executions/s"
    return Figure(label, side.cpu_us, "CPU µs/execution", detail, side.cpu_us)


def _rate(side: Measured | None, label: str) -> Figure:
    if side is None or not side.ops:
        return Figure(label, None, "executions/s")
    detail = f"{side.cpu_us:,.0f} CPU µs/execution"
    return Figure(label, side.rate, "executions/s", detail, side.cpu_us)


def _req(outcomes: Sequence[Outcome], scenario: str, label: str) -> Figure:
    found = next(
        (o for o in reversed(outcomes) if o.scenario == scenario and o.phase == "max" and o.result),
        None,
    )
    if found is None or found.result is None:
        return Figure(label, None, "req/s")
    cpu = found.cpu_us_per_request
    detail = "" if cpu is None else f"server {cpu:,.0f} CPU µs/request"
    return Figure(label, found.result.rps or None, "req/s", detail, cpu)


def _open_loop(outcomes: Sequence[Outcome]) -> TargetRatio:
    top = _max_rps(outcomes, ASYNC_INGEST)
    rate = half_rate(top) if top else None
    at = f"at {rate:,.0f} req/s" if rate else "at 1/2 of hookline's max"
    mine = _p99(outcomes, ASYNC_INGEST, rate) if rate else None
    theirs = _p99(outcomes, BASELINE, rate) if rate else None
    return TargetRatio(
        f"open loop at 1/2 of hookline's max ({at}): p99 over the quart-trio route's",
        Figure("hookline async ingest p99", mine, "ms", at),
        Figure("quart-trio route p99", theirs, "ms", at),
        1.5,
        at_most=True,
        before="18x",
    )


def target_ratios(outcomes: Sequence[Outcome]) -> list[TargetRatio]:
    """The five ratios of issue 12 as this run measured them, in the issue's order."""
    sides = _sides(outcomes)
    quart = _req(outcomes, BASELINE, "quart-trio route")
    return [
        TargetRatio(
            "embedded 5-node, memory store: CPU per execution over a plain trio task",
            _cpu(sides.get(ENGINE_MEMORY), "hookline"),
            _cpu(sides.get(TRIO_TASK), "plain trio task"),
            3.0,
            at_most=True,
            before="14-18x",
        ),
        TargetRatio(
            "embedded 5-node, SQLite: executions/s over the steps + raw SQLite rows",
            _rate(sides.get(ENGINE_SQLITE), "hookline"),
            _rate(sides.get(RAW_SQLITE), "steps + raw rows"),
            0.5,
            at_most=False,
            before="0.145x",
        ),
        TargetRatio(
            "sync 3-node over HTTP / quart-trio route (req/s)",
            _req(outcomes, SYNC, "hookline sync"),
            quart,
            0.8,
            at_most=False,
            before="0.52x",
        ),
        TargetRatio(
            "async signed ingest, idempotency / quart-trio route (req/s)",
            _req(outcomes, ASYNC_INGEST, "hookline async"),
            quart,
            1.0,
            at_most=False,
            before="0.64x",
        ),
        _open_loop(outcomes),
    ]


_COLUMNS = ("target", "figure A", "figure B", "ratio", "goal", "met", "before", "by CPU")
_CAPTION = (
    "before: the ratio issue 12 quotes for the code before its rewrite; by CPU: the same "
    "ratio from CPU per execution or request alone, to read when other work shared the cores"
)
_MET = {True: "yes", False: "no", None: "-"}


def _cells(t: TargetRatio) -> list[str]:
    return [
        t.name,
        t.a.render(),
        t.b.render(),
        t.ratio_text,
        t.goal_text,
        _MET[t.met],
        t.before,
        t.cpu_ratio_text,
    ]


def ratios_table(outcomes: Sequence[Outcome]) -> Table | None:
    """The ratios as a rich table (None: the run measured none of them)."""
    rows = target_ratios(outcomes)
    if all(t.ratio is None for t in rows):
        return None
    table = Table(
        title="issue 12 targets: ratios of two figures measured in this run", caption=_CAPTION
    )
    for index, heading in enumerate(_COLUMNS):
        table.add_column(heading, justify="left" if index < 3 else "right")
    colour = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}
    for t in rows:
        cells = _cells(t)
        cells[5] = colour[t.met]
        table.add_row(*cells)
    return table


def ratios_markdown(
    outcomes: Sequence[Outcome], facts: dict[str, object], run: dict[str, Any]
) -> str:
    """The ratios as a Markdown section with the machine and the command (an empty
    string when the run measured none of them)."""
    rows = target_ratios(outcomes)
    if all(t.ratio is None for t in rows):
        return ""
    effective = run.get("effective", {})
    lines = [
        (
            f"Run {run['timestamp']} on {facts['cpu_model']} ({facts['usable_cores']} cores), "
            f"Python {facts['python']}, commit {str(facts['git_commit'])[:10]}"
            f"{' (with local changes)' if facts.get('git_dirty') else ''}; HTTP: "
            f"{run['generator']}, {effective.get('connections')} connections, "
            f"{effective.get('duration_s')} s per phase; in process: "
            f"{effective.get('micro_duration_s')} s per side. Other work on the machine "
            f"during the run: {run.get('other_work_cores', '-')} cores on average."
        ),
        "",
        f"Command: `{run['command']}`",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
        *("| " + " | ".join(_cells(t)) + " |" for t in rows),
        "",
        _CAPTION[0].upper() + _CAPTION[1:] + ".",
    ]
    return "\n".join(lines) + "\n"


def ratios_json(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The ratios for the JSON document: both figures, the ratio, the goal, met."""

    def figure(f: Figure) -> dict[str, Any]:
        value = None if f.value is None else round(f.value, 3)
        cpu = None if f.cpu_us is None else round(f.cpu_us, 2)
        return {"label": f.label, "value": value, "unit": f.unit, "detail": f.detail, "cpu_us": cpu}

    return [
        {
            "name": t.name,
            "a": figure(t.a),
            "b": figure(t.b),
            "ratio": None if t.ratio is None else round(t.ratio, 4),
            "cpu_ratio": None if t.cpu_ratio is None else round(t.cpu_ratio, 4),
            "goal": t.goal,
            "at_most": t.at_most,
            "met": t.met,
            "before": t.before,
        }
        for t in target_ratios(outcomes)
    ]
