"""``python -m benchmarks compare OLD.json NEW.json``: a change inside the runs' own
noise (the range of their rounds) is never a regression; one past it and past the
threshold is, and the exit status says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks._compare import compare
from tests.benchmarks.conftest import bench_here as bench


def _run(
    rounds: list[tuple[float, float]], scenario: str = "hookline-async-ingest"
) -> dict[str, Any]:
    ordered = sorted(rounds)
    rps, p99 = ordered[len(ordered) // 2]
    return {
        "outcomes": [
            {
                "scenario": scenario,
                "phase": "max",
                "result": {"requests_per_s": rps, "latency": {"p99_ms": p99}},
                "rounds": [{"rps": r, "p99_ms": p} for r, p in rounds],
            },
            {"scenario": "embedded-engine", "phase": "micro", "result": None},
        ]
    }


def _verdicts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
    return {c.figure: c.verdict for c in compare(old, new)}


def test_a_change_inside_the_rounds_spread_is_noise() -> None:
    old = _run([(600, 40), (700, 50), (650, 45)])
    new = _run([(560, 48), (640, 55), (610, 52)])  # -6% mean, ranges overlap
    assert _verdicts(old, new) == {"req/s": "noise", "p99 ms": "noise"}


def test_a_drop_past_the_noise_and_the_threshold_is_a_regression() -> None:
    old = _run([(700, 40), (710, 41), (705, 42)])
    new = _run([(500, 80), (510, 82), (505, 81)])
    changes = {c.figure: c for c in compare(old, new)}
    assert changes["req/s"].verdict == "regression"
    assert round(changes["req/s"].percent) == -28
    assert changes["p99 ms"].verdict == "regression"
    assert changes["req/s"].noise_percent is not None


def test_a_small_change_past_the_noise_is_within_threshold_and_a_gain_an_improvement() -> None:
    old = _run([(700, 40), (702, 40.5)])
    assert _verdicts(old, _run([(680, 41), (681, 41.2)]))["req/s"] == "within threshold"
    assert _verdicts(old, _run([(900, 20), (905, 20.5)])) == {
        "req/s": "improvement",
        "p99 ms": "improvement",
    }


def test_single_rounds_have_unknown_noise_and_the_threshold_alone_decides() -> None:
    (change, _) = compare(_run([(700, 40)]), _run([(600, 40)]))
    assert change.noise_percent is None
    assert change.verdict == "regression"


def test_the_command_prints_the_table_and_exits_1_on_a_regression(tmp_path: Path) -> None:
    old, new, same = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "same.json"
    old.write_text(json.dumps(_run([(700, 40), (710, 41), (705, 42)])))
    new.write_text(json.dumps(_run([(500, 80), (510, 82), (505, 81)])))
    same.write_text(json.dumps(_run([(690, 40), (712, 43), (700, 41)])))

    done = bench("compare", str(old), str(new))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "| hookline-async-ingest | max | req/s | 705.0 [700.0-710.0] |" in done.stdout
    assert "regression" in done.stdout
    assert "2 regression(s)." in done.stdout

    done = bench("compare", str(old), str(same))
    assert done.returncode == 0, done.stdout
    assert "No regression." in done.stdout

    # a looser threshold accepts the drop
    done = bench("compare", str(old), str(new), "--threshold", "50", "--latency-threshold", "200")
    assert done.returncode == 0, done.stdout


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = bench("compare", str(bad), str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert "bad.json" in done.stderr
