"""The report: rich tables on the terminal, a JSON document, a Markdown summary.

Ratios are over the minimal quart-trio route (``x quart``) and the bare ASGI app
(``x asgi``) of the same run; open-loop rows compare at the same offered rate. The
scale step and the issue 12 target ratios have tables of their own
(:mod:`benchmarks._scale_report`, :mod:`benchmarks._ratios`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from ._ratios import ratios_json, ratios_table
from ._results import LoadResult, MicroResult, Outcome
from ._scale_report import is_scale, scale_json, scale_table
from ._scenarios import BASELINE, CEILING
from ._targets import Target, evaluate

__all__ = ["markdown", "print_report", "write_json"]

_HTTP_COLUMNS = (
    "scenario",
    "system",
    "phase",
    "offered/s",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "non-2xx",
    "errors",
    "x quart",
    "x asgi",
)
# The terminal leaves out the system (the scenario names it) and p90 (in the JSON and
# the Markdown): thirteen columns do not fit a terminal.
_TERMINAL = tuple(i for i, name in enumerate(_HTTP_COLUMNS) if name not in ("system", "p90 ms"))


def _reference(outcomes: Sequence[Outcome], scenario: str, phase: str) -> LoadResult | None:
    for outcome in reversed(outcomes):
        if outcome.scenario == scenario and outcome.phase == phase and outcome.result:
            return outcome.result
    return None


def _times(value: float, reference: LoadResult | None) -> str:
    return f"{value / reference.rps:.2f}x" if reference and reference.rps else "-"


def _tail_times(result: LoadResult, reference: LoadResult | None) -> str:
    if reference is None or not reference.latency.p99_ms:
        return "-"
    return f"p99 {result.latency.p99_ms / reference.latency.p99_ms:.2f}x"


def _http_row(outcome: Outcome, outcomes: Sequence[Outcome]) -> list[str]:
    r = outcome.result
    head = [outcome.scenario, outcome.system, outcome.phase]
    if r is None:
        state = "skipped" if outcome.skipped else "FAILED"
        return [*head, state, *[""] * (len(_HTTP_COLUMNS) - 4)]
    quart = _reference(outcomes, BASELINE, outcome.phase)
    asgi = _reference(outcomes, CEILING, outcome.phase)
    failures = r.errors + r.unfinished
    if r.mode == "open":
        # At one offered rate every server that keeps up answers as many: compare tails.
        ratios = [_tail_times(r, quart), _tail_times(r, asgi)]
    else:
        ratios = [_times(r.rps, quart), _times(r.rps, asgi)]
    return [
        *head,
        f"{r.offered_rps:,.0f}" if r.offered_rps else "closed",
        f"{r.rps:,.0f}",
        f"{r.latency.p50_ms:.2f}",
        f"{r.latency.p90_ms:.2f}",
        f"{r.latency.p99_ms:.2f}",
        f"{r.latency.p999_ms:.2f}",
        str(r.non_2xx),
        str(failures),
        *ratios,
    ]


_SERVER_COLUMNS = (
    "scenario",
    "phase",
    "sent",
    "client 2xx",
    "accepted",
    "refused",
    "lost",
    "deliveries",
    "executions finished",
    "commit mean/p99 ms",
    "queue peak",
    "restarts",
)


def _server_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    """The server's own figures of each phase that has them (``--target`` runs)."""
    rows = []
    for outcome in outcomes:
        s = outcome.server
        if s is None:
            continue

        def count(value: int | None) -> str:
            return "-" if value is None else f"{value:,}"

        mean = "-" if s.commit_mean_ms is None else f"{s.commit_mean_ms:.2f}"
        p99 = "-" if s.commit_p99_ms_at_most is None else f"<={s.commit_p99_ms_at_most:g}"
        rows.append(
            [
                outcome.scenario,
                outcome.phase,
                count(s.sent),
                count(s.client_2xx),
                count(s.accepted),
                count(s.refused),
                count(s.lost),
                ", ".join(f"{k} {v:,}" for k, v in s.deliveries.items()) or "-",
                ", ".join(f"{k} {v:,}" for k, v in s.executions_finished.items()) or "-",
                f"{mean} / {p99}",
                str(s.queue_depth_peak),
                str(s.restarts),
            ]
        )
    return rows


def _also(m: MicroResult) -> str:
    """The extra rates, then each side's CPU per op when the benchmark recorded it."""
    also = "; ".join(f"{label}: {rate:,.0f}/s" for label, rate in m.extra)
    if m.sides:
        cpu = ", ".join(f"{side.label} {side.cpu_us:,.0f}" for side in m.sides)
        also += f"; CPU µs per {m.unit.rstrip('s')}: {cpu}"
    return also


def _micro_table(outcomes: Sequence[Outcome]) -> Table | None:
    rows = [o for o in outcomes if o.phase == "micro"]
    if not rows:
        return None
    table = Table(title="in-process benchmarks (same run)")
    for heading in ("benchmark", "subject /s", "baseline /s", "subject/baseline", "also"):
        table.add_column(heading, justify="left" if heading == "benchmark" else "right")
    for outcome in rows:
        m = outcome.micro
        if m is None:
            table.add_row(outcome.scenario, "skipped" if outcome.skipped else "FAILED", "", "", "")
            continue
        also = _also(m)
        table.add_row(
            f"{outcome.scenario}\n[dim]{m.subject}\nvs {m.baseline}[/dim]",
            f"{m.subject_rate:,.0f}",
            f"{m.baseline_rate:,.0f}",
            f"{m.ratio:.3g}x",
            also,
        )
    return table


def _target_table(targets: Sequence[Target]) -> Table:
    table = Table(title="targets (issue 7), measured in this run")
    for heading in ("target", "measured", "goal", "met"):
        table.add_column(heading, justify="left" if heading == "target" else "right")
    for target in targets:
        measured = "-" if target.measured is None else f"{target.measured:.3g}"
        if target.detail:
            measured += f"\n[dim]{target.detail}[/dim]"
        goal = "-" if target.goal is None else ("<= " if target.at_most else ">= ")
        goal += "" if target.goal is None else f"{target.goal:g}"
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[target.met]
        table.add_row(target.name, measured, goal, met)
    return table


def print_report(outcomes: Sequence[Outcome], console: Console) -> None:
    """The HTTP table, the in-process table, the scale table, the targets (when the
    run measured more than the scale step), then notes and failures."""
    http = [o for o in outcomes if o.phase != "micro" and not is_scale(o)]
    if http:
        table = Table(
            title="HTTP benchmarks",
            caption="max: closed loop, ratios of req/s; open@R: open loop at R req/s, latency "
            "from the scheduled send time, ratios of p99; errors include unfinished",
        )
        for index in _TERMINAL:
            heading = _HTTP_COLUMNS[index]
            table.add_column(heading, justify="left" if index < 3 else "right")
        for outcome in http:
            row = _http_row(outcome, outcomes)
            table.add_row(*(row[index] for index in _TERMINAL))
        console.print(table)
    server = _server_rows(outcomes)
    if server:
        table = Table(
            title="server-side figures (the target's /metrics before and after each phase)",
            caption="ledger: sent = accepted + refused + lost; lost must be 0",
        )
        for index, heading in enumerate(_SERVER_COLUMNS):
            table.add_column(heading, justify="left" if index < 2 else "right")
        for row in server:
            table.add_row(*row)
        console.print(table)
    micro = _micro_table(outcomes)
    if micro is not None:
        console.print(micro)
    scale = scale_table(outcomes)
    if scale is not None:
        console.print(scale)
    if not all(is_scale(o) for o in outcomes):
        console.print(_target_table(evaluate(outcomes)))
    ratios = ratios_table(outcomes)
    if ratios is not None:
        console.print(ratios)
    notes = dict.fromkeys(f"note: {o.scenario}: {note}" for o in outcomes for note in o.notes)
    for note in notes:
        console.print(note, highlight=False, markup=False)
    for outcome in outcomes:
        if outcome.skipped:
            console.print(
                f"skipped: {outcome.scenario}: {outcome.skipped}", highlight=False, markup=False
            )
    for outcome in outcomes:
        if outcome.error:
            console.print(f"{outcome.scenario} failed:", style="red", markup=False)
            console.print(outcome.error, markup=False, highlight=False)


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return {k: _plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    entry: dict[str, Any] = _plain(outcome)
    if outcome.result is not None:
        entry["result"]["requests_per_s"] = round(outcome.result.rps, 1)
        cpu = outcome.cpu_us_per_request
        entry["server_cpu_us_per_request"] = None if cpu is None else round(cpu, 1)
    if outcome.micro is not None:
        m = outcome.micro
        entry["micro"]["subject_per_s"] = round(m.subject_rate, 1)
        entry["micro"]["baseline_per_s"] = round(m.baseline_rate, 1)
        entry["micro"]["ratio"] = round(m.ratio, 5)
        for side, plain in zip(m.sides, entry["micro"]["sides"], strict=True):
            plain["per_s"] = round(side.rate, 1)
            plain["cpu_us"] = round(side.cpu_us, 2)
    return entry


def write_json(
    path: Path, outcomes: Sequence[Outcome], facts: dict[str, object], run: dict[str, object]
) -> Path:
    """Write the whole run (settings, machine, outcomes, targets) to ``path``."""
    document = {
        **run,
        "machine": facts,
        "outcomes": [_outcome_json(o) for o in outcomes],
        "targets": [{**_plain(t), "met": t.met} for t in evaluate(outcomes)],
        "target_ratios": ratios_json(outcomes),
        "scale": scale_json(outcomes),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def markdown(outcomes: Sequence[Outcome], facts: dict[str, object], run: dict[str, Any]) -> str:
    """A Markdown summary: the HTTP table, in-process figures, targets, machine, command;
    of every outcome but the scale step's (an empty string when there are none)."""
    outcomes = [o for o in outcomes if not is_scale(o)]
    if not outcomes:
        return ""
    lines = [
        (
            f"Run {run['timestamp']} on {facts['cpu_model']} ({facts['usable_cores']} cores), "
            f"Python {facts['python']}, commit {str(facts['git_commit'])[:10]}"
            f"{' (with local changes)' if facts.get('git_dirty') else ''}; "
            f"load generator: {run['generator']}."
        ),
        "",
        f"Command: `{run['command']}`",
        "",
        "| " + " | ".join(_HTTP_COLUMNS) + " |",
        "|" + "---|" * len(_HTTP_COLUMNS),
    ]
    lines += [
        "| " + " | ".join(_http_row(outcome, outcomes)) + " |"
        for outcome in outcomes
        if outcome.phase != "micro"
    ]
    server = _server_rows(outcomes)
    if server:
        lines += [
            "",
            (
                "Server-side figures (the target's `/metrics`), with the ledger "
                "sent = accepted + refused + lost:"
            ),
            "",
            "| " + " | ".join(_SERVER_COLUMNS) + " |",
            "|" + "---|" * len(_SERVER_COLUMNS),
            *("| " + " | ".join(row) + " |" for row in server),
        ]
    lines += [
        "",
        "| in-process | subject /s | baseline /s | ratio | also |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        if outcome.micro is not None:
            m = outcome.micro
            also = _also(m)
            lines.append(
                f"| {outcome.scenario}: {m.subject} vs {m.baseline} | {m.subject_rate:,.0f} | "
                f"{m.baseline_rate:,.0f} | {m.ratio:.3g}x | {also} |"
            )
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for t in evaluate(outcomes):
        measured = "-" if t.measured is None else f"{t.measured:.3g}"
        goal = "-" if t.goal is None else f"{'<=' if t.at_most else '>='} {t.goal:g}"
        met = {True: "yes", False: "no", None: "-"}[t.met]
        lines.append(f"| {t.name} | {measured} | {goal} | {met} |")
    notes = list(dict.fromkeys(f"- {o.scenario}: {n}" for o in outcomes for n in o.notes))
    notes += [f"- {o.scenario}: skipped: {o.skipped}" for o in outcomes if o.skipped]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
