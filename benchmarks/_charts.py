"""PNG charts of a run (matplotlib, the ``bench`` extra): throughput per scenario and
system, latency percentiles against offered rate, the in-process benchmarks, and the
scale step (req/s per process count, per workload).

Without matplotlib the charts are skipped with a message; nothing else changes.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._results import Outcome
from ._scale_report import is_scale, scale_rows

__all__ = ["write_charts"]

_COLOURS = {
    "hookline": "#d1495b",
    "quart-trio": "#00798c",
    "asgi": "#30638e",
    "node-red": "#8f2d56",
    "trivial": "#999999",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _throughput(plt: Any, outcomes: Sequence[Outcome], path: Path) -> bool:
    rows = [o for o in outcomes if o.phase == "max" and o.result and not is_scale(o)]
    if not rows:
        return False
    figure, axes = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    labels = [f"{o.scenario}" for o in rows]
    values = [o.result.rps if o.result else 0.0 for o in rows]
    colours = [_COLOURS.get(o.system, "#666666") for o in rows]
    bars = axes.barh(labels, values, color=colours)
    axes.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3)
    axes.invert_yaxis()
    axes.set_xlabel("requests/s (closed loop, higher is better)")
    axes.set_title("Maximum throughput per scenario and system")
    axes.margins(x=0.15)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _latency(plt: Any, outcomes: Sequence[Outcome], path: Path) -> bool:
    series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for o in outcomes:
        r = o.result
        if r and r.mode == "open" and r.offered_rps and o.scenario != "generator-check":
            lat = r.latency
            series[o.scenario].append((r.offered_rps, lat.p50_ms, lat.p99_ms, lat.p999_ms))
    if not series:
        return False
    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for column, (index, title) in enumerate(((1, "p50"), (2, "p99"), (3, "p99.9"))):
        ax = axes[column]
        for name, points in sorted(series.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[index] for p in points], marker="o", label=name)
        ax.set_yscale("log")
        ax.set_title(f"{title} latency")
        ax.set_xlabel("offered requests/s (open loop)")
        ax.grid(visible=True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms from scheduled send time (log)")
    axes[0].legend(fontsize="small")
    figure.suptitle("Latency against offered rate (coordinated omission corrected)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _micro(plt: Any, outcomes: Sequence[Outcome], path: Path) -> bool:
    rows = [o for o in outcomes if o.micro is not None]
    if not rows:
        return False
    figure, axes = plt.subplots(1, len(rows), figsize=(5.5 * len(rows), 4), squeeze=False)
    for ax, outcome in zip(axes[0], rows, strict=True):
        m = outcome.micro
        assert m is not None
        labels = [m.subject, *(label for label, _ in m.extra), m.baseline]
        values = [m.subject_rate, *(rate for _, rate in m.extra), m.baseline_rate]
        # hookline's own figures in its colour; references (plain, raw) in grey.
        colours = [
            _COLOURS["hookline"] if "engine" in x or "Store" in x else "#999" for x in labels
        ]
        bars = ax.bar(range(len(values)), values, color=colours)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
        ax.set_xticks(
            range(len(values)), [textwrap.fill(label, 16) for label in labels], fontsize="small"
        )
        spread = max(values) / max(min(values), 1e-9)
        if spread > 20:
            ax.set_yscale("log")
        ax.set_ylabel(f"{m.unit}/s{' (log)' if spread > 20 else ''}")
        ax.set_title(outcome.scenario)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _scale(plt: Any, outcomes: Sequence[Outcome], path: Path) -> bool:
    groups: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    for row in scale_rows(outcomes):
        if row.outcome.result is None or row.setup is None:
            continue
        ratio = row.over_one if row.over_one is not None else row.over_sqlite
        note = "" if ratio is None else f" ({ratio:.2f}x)"
        rps = row.outcome.result.rps
        groups[row.workload].append((row.setup.system, rps, f"{rps:,.0f}{note}"))
    if not groups:
        return False
    figure, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4), squeeze=False)
    for ax, (workload, bars) in zip(axes[0], groups.items(), strict=True):
        colours = [
            "#999999" if name.startswith("sqlite") else _COLOURS["hookline"] for name, *_ in bars
        ]
        drawn = ax.bar([name for name, *_ in bars], [rps for _, rps, _ in bars], color=colours)
        ax.bar_label(drawn, labels=[label for *_, label in bars], fontsize="small")
        ax.set_ylabel("requests/s (closed loop)")
        ax.set_title(f"{workload}: processes on one PostgreSQL")
        ax.margins(y=0.15)
    figure.suptitle("Scale-out: ratios over 1 process on PostgreSQL (SQLite: over itself)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_charts(outcomes: Sequence[Outcome], folder: Path, stem: str) -> list[Path]:
    """Write ``<stem>-throughput.png``, ``-latency.png``, ``-micro.png``, ``-scale.png``
    (those with data).

    Raises ImportError when matplotlib is missing (``pip install -e '.[bench]'``).
    """
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    charts = (
        ("throughput", _throughput),
        ("latency", _latency),
        ("micro", _micro),
        ("scale", _scale),
    )
    for suffix, draw in charts:
        path = folder / f"{stem}-{suffix}.png"
        if draw(plt, outcomes, path):
            written.append(path)
    return written
