"""``python -m benchmarks flow`` measures issue 17's figures and checks the precise ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._flow import flow
from tests.conftest import postgres_schema_url


def test_the_flow_benchmark_measures_waits_throttle_debounce_and_batch(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "flow.json"
    # The exit status weighs real start times: on a loaded machine that is the
    # benchmark's verdict, not this test's. The test checks what is measured.
    argv = ["--waits", "200", "--period", "0.3", "--batch", "240", "--batch-size", "20"]
    argv += ["--postgres", postgres_schema_url(request)]  # for the three processes
    flow([*argv, "--json", str(out)], tmp_path)
    figures = json.loads(out.read_text())
    assert figures["waits"]["waiting executions"] == 200
    throttle = figures["throttle"]
    assert throttle["limit + burst"] == 6
    assert throttle["starts per key"] == 50
    # What the throttle decided holds strictly, whatever the machine's load.
    assert throttle["most booked starts in any period-long window"] <= 6
    x3 = figures["throttle x3"]  # three real processes on one PostgreSQL
    assert (x3["processes"], x3["processes that started executions"]) == (3, 3)
    assert (x3["starts per key"], x3["limit + burst"]) == (50, 6)
    assert figures["debounce"]["executions run"] == 50  # on a virtual clock: exact
    assert figures["debounce"]["each its key's last"] == 1.0
    batch = figures["batch"]  # a real server, SIGKILLed during the run
    assert (batch["deliveries"], batch["SIGKILLs"]) == (240, 1)
    assert batch["deliveries exactly once"] == 1.0
    assert batch["batch executions"] == batch["batch executions succeeded"] >= 10
