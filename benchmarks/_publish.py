"""``--publish``: put a run's summary and charts into benchmarks/README.md.

The README keeps the latest results between two marker lines; the charts are copied
to ``benchmarks/charts/`` (tracked, unlike ``results/``) so the README can show them.
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


def publish(summary: str, charts: Sequence[Path]) -> Path:
    """Replace the README's results section with ``summary`` and ``charts``.

    Raises ValueError when the README lacks the marker lines.
    """
    text = README.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{README} has no {START} ... {END} section")
    CHARTS.mkdir(exist_ok=True)
    images = []
    for chart in charts:
        kind = chart.stem.rpartition("-")[2]
        shutil.copyfile(chart, CHARTS / f"latest-{kind}.png")
        images.append(f"![{kind}](charts/latest-{kind}.png)")
    body = summary + ("\n" + "\n\n".join(images) + "\n" if images else "")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{body}{END}{tail}")
    return README
