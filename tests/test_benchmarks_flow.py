"""``python -m benchmarks flow`` measures issue 17's figures and checks the precise ones."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks._flow import flow


def test_the_flow_benchmark_measures_waits_throttle_and_debounce(tmp_path: Path) -> None:
    out = tmp_path / "flow.json"
    assert flow(["--waits", "200", "--period", "0.3", "--json", str(out)], tmp_path) == 0
    figures = json.loads(out.read_text())
    assert figures["waits"]["waiting executions"] == 200
    assert figures["waits"]["KiB per waiting execution"] > 0
    throttle = figures["throttle"]
    assert throttle["the same, allowing 50 ms of start latency"] <= throttle["limit + burst"]
    assert figures["debounce"]["executions run"] == 50
