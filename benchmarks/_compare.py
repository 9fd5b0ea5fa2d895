"""``python -m benchmarks compare OLD.json NEW.json``: each scenario's change, weighed
against the noise of the runs.

Each figure (req/s, p99) of a scenario and phase present in both runs gets an
interval, the lowest to the highest of its rounds around their median (``--rounds N`` repeats each
measured phase N times), or the one figure when the run had one round. A change is
**noise** when the two intervals overlap, and is then never called a regression. It
is a **regression** when the intervals are apart and the new figure is worse by more
than the threshold: req/s lower by more than ``--threshold`` percent (default 10), or
p99 higher by more than ``--latency-threshold`` percent (default 25; tails are
noisier). The exit status is 1 when any row regressed, 0 otherwise, 2 for unreadable
input. Without rounds on either side the noise is unknown: the thresholds alone decide,
and the table says so.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Change", "compare", "compare_files", "compare_table", "load_run"]

REQS_THRESHOLD = 10.0
P99_THRESHOLD = 25.0


@attrs.frozen
class Interval:
    """A figure's rounds: their range and their median (the figure the report shows)."""

    low: float
    high: float
    rounds: int
    median: float

    @property
    def spread_percent(self) -> float:
        """The interval's width as a share of its median (the run's own noise)."""
        return (self.high - self.low) / self.median * 100 if self.median else 0.0

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


@attrs.frozen
class Change:
    """One figure of one scenario and phase, old against new."""

    scenario: str
    phase: str
    figure: str  # "req/s" or "p99 ms"
    old: Interval
    new: Interval
    verdict: str  # "regression", "improvement", "noise", "within threshold"

    @property
    def percent(self) -> float:
        old, new = self.old.median, self.new.median
        return (new - old) / old * 100 if old else 0.0

    @property
    def noise_percent(self) -> float | None:
        """The larger of the two runs' own spreads (None: single rounds, unknown)."""
        if self.old.rounds < 2 and self.new.rounds < 2:
            return None
        return max(self.old.spread_percent, self.new.spread_percent)


def load_run(path: Path) -> dict[str, Any]:
    """A run's JSON document; raises ValueError when it is not one."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a run: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("outcomes"), list):
        raise ValueError(f"{path}: not a benchmarks run (no outcomes)")
    return document


def _interval(outcome: Mapping[str, Any], figure: str) -> Interval:
    rounds = outcome.get("rounds") or []
    if rounds:
        values = [r["rps"] if figure == "req/s" else r["p99_ms"] for r in rounds]
    else:
        result = outcome["result"]
        values = [result["requests_per_s"] if figure == "req/s" else result["latency"]["p99_ms"]]
    return Interval(min(values), max(values), len(values), statistics.median(values))


def _verdict(figure: str, old: Interval, new: Interval, reqs: float, p99: float) -> str:
    if old.median == 0:
        return "noise"
    percent = (new.median - old.median) / old.median * 100
    worse = -percent if figure == "req/s" else percent
    threshold = reqs if figure == "req/s" else p99
    if old.overlaps(new):
        return "noise"
    if worse > threshold:
        return "regression"
    if -worse > threshold:
        return "improvement"
    return "within threshold"


def _measured(document: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for outcome in document["outcomes"]:
        if outcome.get("result"):
            found[(outcome["scenario"], outcome["phase"])] = outcome
    return found


def compare(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    threshold: float = REQS_THRESHOLD,
    latency_threshold: float = P99_THRESHOLD,
) -> list[Change]:
    """Every figure of the scenarios and phases both runs measured."""
    before, after = _measured(old), _measured(new)
    changes = []
    for key in [k for k in before if k in after]:
        for figure in ("req/s", "p99 ms"):
            a, b = _interval(before[key], figure), _interval(after[key], figure)
            verdict = _verdict(figure, a, b, threshold, latency_threshold)
            changes.append(Change(key[0], key[1], figure, a, b, verdict))
    return changes


def _shown(interval: Interval) -> str:
    if interval.rounds < 2:
        return f"{interval.median:,.1f}"
    return f"{interval.median:,.1f} [{interval.low:,.1f}-{interval.high:,.1f}]"


def compare_table(changes: Sequence[Change], old: str, new: str) -> str:
    """The changes as a Markdown table, then the rule applied."""
    lines = [
        f"Comparing {old} (old) with {new} (new).",
        "",
        (
            "| scenario | phase | figure | old [rounds' range] | new [rounds' range] | change "
            "| noise (larger spread) | verdict |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in changes:
        noise = "unknown (1 round)" if c.noise_percent is None else f"{c.noise_percent:.1f}%"
        lines.append(
            f"| {c.scenario} | {c.phase} | {c.figure} | {_shown(c.old)} | {_shown(c.new)} "
            f"| {c.percent:+.1f}% | {noise} | {c.verdict} |"
        )
    if not changes:
        lines.append("| (no scenario and phase measured in both runs) | | | | | | | |")
    return "\n".join(lines)


def compare_files(
    old: Path, new: Path, *, threshold: float, latency_threshold: float
) -> tuple[str, bool]:
    """The table and whether anything regressed; raises ValueError on bad input."""
    changes = compare(
        load_run(old), load_run(new), threshold=threshold, latency_threshold=latency_threshold
    )
    table = compare_table(changes, str(old), str(new))
    regressed = [c for c in changes if c.verdict == "regression"]
    rule = (
        f"\nA regression: the rounds' ranges do not overlap and req/s fell by more than "
        f"{threshold:g}% or p99 rose by more than {latency_threshold:g}%. "
    )
    rule += f"{len(regressed)} regression(s)." if regressed else "No regression."
    return table + "\n" + rule, bool(regressed)
