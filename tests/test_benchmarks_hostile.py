"""The ``hostile`` benchmark (issue 13) runs for a second: refused 1 MB requests grow the
store by under 5% of what it received; a catastrophic regular expression on a long text
leaves ``/healthz`` answering. The full run is ``python -m benchmarks hostile``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks._hostile import redos, refused_disk

REPO = Path(__file__).resolve().parent.parent


async def test_refused_1mb_requests_barely_grow_the_store() -> None:
    figures = await refused_disk(0.6, senders=2, clients=100)
    assert figures["requests"] > 0
    assert figures["refused_403"] == figures["requests"]
    assert figures["errors"] == 0
    assert figures["ratio"] < 0.05, figures
    assert figures["recorded_body_bytes"] == 4096
    assert figures["held"]


async def test_a_catastrophic_pattern_leaves_healthz_answering() -> None:
    figures = await redos(0.6, text=60_000)
    bad = figures["catastrophic"]
    assert bad["webhook_requests"] > 0
    assert set(bad["webhook_answers"]) == {"200"}
    assert bad["healthz_probes"] > 0
    assert figures["plain"]["webhook_requests"] > 0


def test_the_command_prints_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "hostile.json"
    argv = [sys.executable, "-m", "benchmarks", "hostile", "refused", "--duration", "0.5"]
    argv += ["--senders", "1", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [figures] = json.loads(out.read_text())
    assert figures["check"] == "refused"
    assert figures["held"]
