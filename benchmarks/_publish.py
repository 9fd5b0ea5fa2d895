"""``--publish``: put a run's summary and charts into benchmarks/README.md.

The README keeps the latest results between two marker lines, the issue 12 target
ratios and the scale step's each between two others, so that a run of one part leaves
the others' figures alone; the
charts are copied to ``benchmarks/charts/`` (tracked, unlike ``results/``) so the
README can show them.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from ._spec import HERE

__all__ = ["CHARTS", "README", "publish"]

README = HERE / "README.md"
CHARTS = HERE / "charts"
START = "<!-- results:start -->"
END = "<!-- results:end -->"
SCALE_START = "<!-- scale:start -->"
SCALE_END = "<!-- scale:end -->"
TARGETS_START = "<!-- targets:start -->"
TARGETS_END = "<!-- targets:end -->"


def _replace(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise ValueError(f"{README} has no {start} ... {end} section")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}{end}{tail}"


def publish(summary: str, charts: Sequence[Path], *, scale: str = "", targets: str = "") -> Path:
    """Replace the README's results section with ``summary`` and ``charts`` (the scale
    chart excepted), its targets section with ``targets``, and its scale section with
    ``scale`` and the scale chart; an empty ``summary``, ``targets`` or ``scale`` leaves
    its section as it was.

    Raises ValueError when the README lacks the marker lines of a section to replace.
    """
    text = README.read_text()
    CHARTS.mkdir(exist_ok=True)
    images: dict[str, str] = {}
    for chart in charts:
        kind = chart.stem.rpartition("-")[2]
        shutil.copyfile(chart, CHARTS / f"latest-{kind}.png")
        images[kind] = f"![{kind}](charts/latest-{kind}.png)"
    scale_image = images.pop("scale", None)
    if summary:
        body = summary + ("\n" + "\n\n".join(images.values()) + "\n" if images else "")
        text = _replace(text, START, END, body)
    if targets:
        text = _replace(text, TARGETS_START, TARGETS_END, targets)
    if scale:
        body = scale + (f"\n{scale_image}\n" if scale_image else "")
        text = _replace(text, SCALE_START, SCALE_END, body)
    README.write_text(text)
    return README
