"""The UI's charts: deliveries per minute, success rate and p50/p99 duration over the
last hour and the last day, drawn as server-rendered SVG from stored records.

:func:`buckets` and :func:`chart_svg` are pure (records and a time in, numbers and
markup out); :func:`workflow_charts` reads the records. Reading stops at
:data:`MAX_RECORDS` per kind: a chart of a busier window says it is sampled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs
from markupsafe import Markup, escape

from ..engine._engine import Engine

__all__ = ["MAX_RECORDS", "WINDOWS", "Bucket", "Charts", "buckets", "chart_svg", "workflow_charts"]

MAX_RECORDS = 5000
PAGE = 500
WINDOWS = (("hour", 3600.0, 60), ("day", 86400.0, 48))
"""Each window: its name, its length in seconds and how many buckets it is cut into."""

WIDTH, HEIGHT, PAD = 320, 90, 22
BASE = HEIGHT - PAD  # the y of the zero line


@attrs.frozen
class Bucket:
    """One slice of a window: deliveries received, executions finished (and of them
    succeeded) and the p50/p99 of their durations (None: none finished)."""

    start: float
    seconds: float
    deliveries: int = 0
    finished: int = 0
    succeeded: int = 0
    p50: float | None = None
    p99: float | None = None

    @property
    def per_minute(self) -> float:
        return self.deliveries * 60.0 / self.seconds

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``ordered`` (sorted), nearest rank; None if empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def buckets(
    received: Iterable[float],
    finished: Iterable[tuple[float, str, float]],
    *,
    now: float,
    window: float,
    count: int,
) -> list[Bucket]:
    """Cut ``[now - window, now)`` into ``count`` buckets: ``received`` are delivery
    times, ``finished`` (finished_at, status, duration) the executions that ended."""
    size = window / count
    start = now - window
    counts = [0] * count
    durations: list[list[float]] = [[] for _ in range(count)]
    ok = [0] * count
    for at in received:
        index = int((at - start) // size)
        if 0 <= index < count:
            counts[index] += 1
    for at, status, duration in finished:
        index = int((at - start) // size)
        if 0 <= index < count:
            durations[index].append(duration)
            ok[index] += status == "succeeded"
    result = []
    for index in range(count):
        ordered = sorted(durations[index])
        result.append(
            Bucket(
                start=start + index * size,
                seconds=size,
                deliveries=counts[index],
                finished=len(ordered),
                succeeded=ok[index],
                p50=percentile(ordered, 0.5),
                p99=percentile(ordered, 0.99),
            )
        )
    return result


def _runs(values: Sequence[float | None], top: float) -> list[list[tuple[float, float]]]:
    """The points (x, y) of the values, in runs broken where a value is missing."""
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        y = BASE - (value / top if top else 0) * (HEIGHT - 2 * PAD)
        runs[-1].append((PAD + index * step, y))
    return [run for run in runs if run]


def _format(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    return f"{value:.2g}"


def chart_svg(
    title: str,
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
    top: float | None = None,
    chart_id: str = "",
) -> Markup:
    """A small line chart: each series a (name, values) pair, drawn on one scale from
    0 to ``top`` (default: the largest value). Text is escaped."""
    values = [v for _, points in series for v in points if v is not None]
    scale = top if top is not None else max(values, default=0.0)
    scale_text = escape(_format(scale, unit)) if values else "no data"
    parts = [
        (
            f'<svg class="chart" id="{escape(chart_id)}" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        ),
        f'<text class="chart-title" x="{PAD}" y="13">{escape(title)}</text>',
        f'<line class="axis" x1="{PAD}" y1="{BASE}" x2="{WIDTH - PAD}" y2="{BASE}"/>',
        f'<text class="chart-scale" x="{WIDTH - PAD}" y="13" text-anchor="end">{scale_text}</text>',
    ]
    for index, (name, points) in enumerate(series):
        for run in _runs(points, scale):
            if len(run) == 1:  # a lone value: a dot, a line of one point shows nothing
                x, y = run[0]
                parts.append(f'<circle class="dot s{index}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
                continue
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(
                f'<polyline class="series s{index}" data-series="{escape(name)}" points="{line}"/>'
            )
        if len(series) > 1:
            x = PAD + index * 70
            parts.append(
                f'<text class="legend s{index}" x="{x}" y="{HEIGHT - 6}">{escape(name)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it is escaped above)


@attrs.frozen
class Charts:
    """One window's charts (``name``: hour or day) and whether its records were sampled."""

    name: str
    deliveries: Markup
    success: Markup
    duration: Markup
    totals: dict[str, float | int | None]
    sampled: bool = False


async def _received(engine: Engine, key: str | None, since: float) -> tuple[list[float], bool]:
    """When each delivery since ``since`` arrived (newest first); True when capped."""
    found: list[float] = []
    cursor = None
    while len(found) < MAX_RECORDS:
        page = await engine.store.list_deliveries(workflow=key, limit=PAGE, cursor=cursor)
        for record in page.items:
            if record.received_at < since:
                return found, False
            found.append(record.received_at)
        cursor = page.cursor
        if cursor is None:
            return found, False
    return found, True


async def _finished(
    engine: Engine, key: str | None, since: float
) -> tuple[list[tuple[float, str, float]], bool]:
    """(finished_at, status, duration) of each execution made since ``since`` that
    ended; True when capped."""
    found: list[tuple[float, str, float]] = []
    seen = 0
    cursor = None
    while seen < MAX_RECORDS:
        page = await engine.store.list_executions(workflow=key, limit=PAGE, cursor=cursor)
        for record in page.items:
            if record.created_at < since:
                return found, False
            seen += 1
            if record.finished_at is not None and record.started_at is not None:
                duration = record.finished_at - record.started_at
                found.append((record.finished_at, record.status, duration))
        cursor = page.cursor
        if cursor is None:
            return found, False
    return found, True


async def workflow_charts(engine: Engine, key: str | None, now: float) -> list[Charts]:
    """The charts of workflow ``key`` (None: every workflow) for each window."""
    since = now - max(length for _, length, _ in WINDOWS)
    received, sampled_d = await _received(engine, key, since)
    finished, sampled_e = await _finished(engine, key, since)
    charts = []
    for name, length, count in WINDOWS:
        cut = buckets(received, finished, now=now, window=length, count=count)
        ended = sum(b.finished for b in cut)
        durations = sorted(d for at, _, d in finished if at >= now - length)
        totals: dict[str, float | int | None] = {
            "deliveries": sum(b.deliveries for b in cut),
            "success_rate": (sum(b.succeeded for b in cut) / ended) if ended else None,
            "p50": percentile(durations, 0.5),
            "p99": percentile(durations, 0.99),
        }
        suffix = f"{key or 'all'}-{name}"
        charts.append(
            Charts(
                name=name,
                deliveries=chart_svg(
                    "deliveries per minute",
                    [("per minute", [b.per_minute for b in cut])],
                    chart_id=f"chart-deliveries-{suffix}",
                ),
                success=chart_svg(
                    "success rate",
                    [("succeeded", [b.success_rate for b in cut])],
                    unit="%",
                    top=1.0,
                    chart_id=f"chart-success-{suffix}",
                ),
                duration=chart_svg(
                    "duration p50 / p99",
                    [("p50", [b.p50 for b in cut]), ("p99", [b.p99 for b in cut])],
                    unit="s",
                    chart_id=f"chart-duration-{suffix}",
                ),
                totals=totals,
                sampled=sampled_d or sampled_e,
            )
        )
    return charts
