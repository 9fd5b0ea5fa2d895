"""One HTML page per run, written beside its JSON: the HTTP and in-process tables, a
throughput chart and a latency-percentile chart (inline SVG: the page is one file
with no script and nothing fetched), the server's own figures with the ledger, the
machine's facts and the commands that reproduce each figure.

It is rendered from the JSON document alone (:func:`render`), so a run merged from
another tool (``python -m benchmarks locust merge``) gets the same page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render", "write_html"]

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_PERCENTILES = (("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms"))

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child, table.facts td { text-align: left; }
thead th { background: #f2f2f2; }
code, pre { font: 12px/1.4 ui-monospace, monospace; background: #f6f6f6; }
pre { padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
.bad { color: #b00020; font-weight: 600; } .good { color: #1b5e20; font-weight: 600; }
figure { margin: 1rem 0; } figcaption { color: #555; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _e(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """``rows`` are HTML already (escaped by the caller)."""
    heads = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'


def _http(outcomes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [o for o in outcomes if o.get("result")]


def _label(o: Mapping[str, Any]) -> str:
    return f"{o['scenario']} {o['phase']}"


def _throughput_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars of req/s, one per HTTP row."""
    if not rows:
        return ""
    width, left, bar, gap = 760, 260, 18, 6
    top = max((o["result"]["requests_per_s"] for o in rows), default=0) or 1.0
    height = len(rows) * (bar + gap) + 30
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="throughput" '
            f'class="chart throughput" width="{width}" height="{height}">'
        )
    ]
    for i, o in enumerate(rows):
        y = 10 + i * (bar + gap)
        rps = o["result"]["requests_per_s"]
        w = (width - left - 90) * rps / top
        colour = _COLOURS[i % len(_COLOURS)]
        parts.append(
            f'<text x="{left - 6}" y="{y + bar - 5}" text-anchor="end" font-size="12">'
            f"{_e(_label(o))}</text>"
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}">'
            f"<title>{_e(_label(o))}: {rps:,.1f} req/s</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + bar - 5}" font-size="12">'
            f"{rps:,.0f} req/s</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _latency_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per HTTP row through p50, p90, p99 and p99.9, on a log scale of ms."""
    if not rows:
        return ""
    width, height, left, right, top_pad, bottom = 760, 320, 60, 230, 15, 40
    values = [
        o["result"]["latency"][key]
        for o in rows
        for _, key in _PERCENTILES
        if o["result"]["latency"][key] > 0
    ]
    low = 10 ** math.floor(math.log10(min(values))) if values else 0.1
    high = 10 ** math.ceil(math.log10(max(values))) if values else 10.0
    high = max(high, low * 10)
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def y_of(ms: float) -> float:
        ms = max(ms, low)
        share = (math.log10(ms) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return top_pad + plot_h * (1 - share)

    def x_of(i: int) -> float:
        return left + plot_w * i / (len(_PERCENTILES) - 1)

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="latency '
            f'percentiles" class="chart latency" width="{width}" height="{height}">'
        ),
        (
            f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" fill="none" '
            'stroke="#999"/>'
        ),
    ]
    decade = low
    while decade <= high * 1.0001:
        y = y_of(decade)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{decade:g} ms</text>"
        )
        decade *= 10
    for i, (name, _) in enumerate(_PERCENTILES):
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="12">{name}</text>'
        )
    for n, o in enumerate(rows):
        colour = _COLOURS[n % len(_COLOURS)]
        latency = o["result"]["latency"]
        points = " ".join(
            f"{x_of(i):.1f},{y_of(latency[key]):.1f}" for i, (_, key) in enumerate(_PERCENTILES)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{_e(_label(o))}</title></polyline>"
        )
        ly = top_pad + 14 * n + 8
        parts.append(
            f'<line x1="{width - right + 12}" x2="{width - right + 30}" y1="{ly}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="3"/><text x="{width - right + 34}" '
            f'y="{ly + 4}" font-size="11">{_e(_label(o))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _http_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "scenario", "system", "phase", "generator", "offered/s", "req/s", "p50 ms", "p90 ms",
        "p99 ms", "p99.9 ms", "non-2xx", "errors", "rounds (req/s)",
    )  # fmt: skip
    body = []
    for o in rows:
        r = o["result"]
        rounds = ", ".join(f"{x['rps']:,.0f}" for x in o.get("rounds") or []) or "-"
        body.append(
            [
                _e(o["scenario"]),
                _e(o["system"]),
                _e(o["phase"]),
                _e(r["generator"]),
                _num(r.get("offered_rps")) if r.get("offered_rps") else "closed",
                _num(r["requests_per_s"], 1),
                *(_num(r["latency"][key]) for _, key in _PERCENTILES),
                _num(r["non_2xx"]),
                _num(r["errors"]),
                _e(rounds),
            ]
        )
    return _table(head, body)


def _server_table(rows: Sequence[Mapping[str, Any]]) -> str:
    served = [o for o in rows if o.get("server")]
    if not served:
        return (
            "<p>No server-side figures: they are scraped from <code>/metrics</code> in "
            "<code>--target</code> runs of workflows deployed by <code>prepare</code>.</p>"
        )
    head = (
        "scenario", "phase", "workflow", "sent", "client 2xx", "accepted", "refused", "lost",
        "deliveries by verdict", "executions finished", "commit mean ms", "commit p99 ms (<=)",
        "queue peak", "restarts",
    )  # fmt: skip
    body = []
    for o in served:
        s = o["server"]
        lost = s.get("lost")
        css = "good" if lost == 0 else "bad"
        verdicts = ", ".join(f"{k} {v:,}" for k, v in s["deliveries"].items()) or "-"
        finished = ", ".join(f"{k} {v:,}" for k, v in s["executions_finished"].items()) or "-"
        body.append(
            [
                _e(o["scenario"]),
                _e(o["phase"]),
                _e(s["workflow"]),
                _num(s.get("sent")),
                _num(s.get("client_2xx")),
                _num(s.get("accepted")),
                _num(s.get("refused")),
                f'<span class="{css}">{_num(lost)}</span>',
                _e(verdicts),
                _e(finished),
                _num(s.get("commit_mean_ms")),
                _num(s.get("commit_p99_ms_at_most")),
                _num(s.get("queue_depth_peak")),
                _num(s.get("restarts")),
            ]
        )
    return (
        "<p>The ledger: sent = accepted + refused + lost, where sent is what the client "
        "put on the wire, accepted what the server recorded as accepted or duplicate "
        "deliveries of the workflow, refused the answers outside 2xx; lost must be 0.</p>"
        + _table(head, body)
    )


def _micro_table(outcomes: Sequence[Mapping[str, Any]]) -> str:
    micro = [o for o in outcomes if o.get("micro")]
    if not micro:
        return ""
    body = [
        [
            _e(o["scenario"]),
            _e(f"{o['micro']['subject']} vs {o['micro']['baseline']}"),
            _num(o["micro"].get("subject_per_s"), 1),
            _num(o["micro"].get("baseline_per_s"), 1),
            _num(o["micro"].get("ratio"), 4),
        ]
        for o in micro
    ]
    head = ("scenario", "measured", "subject /s", "baseline /s", "ratio")
    return "<h2>In process</h2>" + _table(head, body)


def _facts(document: Mapping[str, Any]) -> str:
    machine = dict(document.get("machine") or {})
    packages = machine.pop("packages", None) or {}
    rows = [[_e(k), _e(v)] for k, v in machine.items()]
    rows += [[_e(f"package {k}"), _e(v)] for k, v in packages.items()]
    for key in ("generator", "other_work_cores"):
        if key in document:
            rows.append([_e(key), _e(document[key])])
    for key, value in (document.get("effective") or {}).items():
        rows.append([_e(key), _e(value)])
    return _table(("fact", "value"), rows, css="facts")


def _commands(document: Mapping[str, Any]) -> str:
    lines = [f"# the run\n{document.get('command', '')}"]
    for o in document.get("outcomes", []):
        parts = [f"# {o['scenario']} {o['phase']}"]
        if o.get("reproduce"):
            parts.append(o["reproduce"])
        if o.get("server_command"):
            parts.append("# server: " + " ".join(o["server_command"]))
        if o.get("result") and o["result"].get("command"):
            parts.append("# load: " + o["result"]["command"])
        lines.append("\n".join(parts))
    return "<pre>" + _e("\n\n".join(lines)) + "</pre>"


def _problems(outcomes: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for o in outcomes:
        if o.get("skipped"):
            items.append(f"<li>{_e(o['scenario'])}: skipped: {_e(o['skipped'])}</li>")
        if o.get("error"):
            items.append(f'<li class="bad">{_e(o["scenario"])}: failed: {_e(o["error"])}</li>')
        items += [f"<li>{_e(o['scenario'])}: {_e(n)}</li>" for n in o.get("notes") or []]
    return f"<h2>Notes</h2><ul>{''.join(items)}</ul>" if items else ""


def render(document: Mapping[str, Any]) -> str:
    """The page for one run's JSON document."""
    outcomes = document.get("outcomes", [])
    rows = _http(outcomes)
    machine = document.get("machine") or {}
    title = f"hookline benchmarks: run {document.get('timestamp', '')}"
    intro = (
        f"Run {_e(document.get('timestamp', ''))} on {_e(machine.get('cpu_model', '?'))} "
        f"({_e(machine.get('usable_cores', '?'))} cores), Python {_e(machine.get('python', '?'))}, "
        f"commit {_e(str(machine.get('git_commit', ''))[:10])}; load generator: "
        f"{_e(document.get('generator', '?'))}."
    )
    charts = ""
    if rows:
        charts = (
            f"<h2>Throughput</h2><figure>{_throughput_svg(rows)}<figcaption>Answered "
            "requests per second over each measured window.</figcaption></figure>"
            f"<h2>Latency percentiles</h2><figure>{_latency_svg(rows)}<figcaption>p50, "
            "p90, p99 and p99.9 in ms (log scale); open-loop rows count from each "
            "request's scheduled send time.</figcaption></figure>"
        )
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>{intro}</p>"
        f"<p>Command: <code>{_e(document.get('command', ''))}</code></p>"
        f"<h2>HTTP</h2>{_http_table(rows) if rows else '<p>No HTTP scenario.</p>'}"
        f"{charts}"
        f"<h2>Server-side figures</h2>{_server_table(rows)}"
        f"{_micro_table(outcomes)}{_problems(outcomes)}"
        f"<h2>Machine</h2>{_facts(document)}"
        f"<h2>Commands to reproduce</h2>{_commands(document)}"
        "</body></html>\n"
    )


def write_html(document: Mapping[str, Any], path: Path) -> Path:
    path.write_text(render(document), encoding="utf-8")
    return path
