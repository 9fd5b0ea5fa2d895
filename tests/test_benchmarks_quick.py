"""Smoke test of the benchmarks suite: ``python -m benchmarks --quick`` on two cheap
scenarios (the bare ASGI baseline over HTTP, the store actor in process) runs, prints
its report and writes results a reader can use; so does the ``targets`` step, with
every ratio of issue 12. No figure is asserted: speed is not a test's business."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_run_measures_and_reports(tmp_path: Path) -> None:
    # Without wrk the closed-loop run falls back to the built-in generator.
    generator = "wrk" if shutil.which("wrk") else "builtin"
    argv = [sys.executable, "-m", "benchmarks", "baseline-asgi", "store-actor", "--quick"]
    argv += ["--duration", "1", "--generator", generator, "--results", str(tmp_path)]
    argv.append("--no-charts")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "HTTP benchmarks" in done.stdout
    assert "targets (issue 7)" in done.stdout
    (document_path,) = tmp_path.glob("*.json")
    document = json.loads(document_path.read_text())
    assert document["machine"]["cpu_count"] >= 1
    outcomes = {o["scenario"]: o for o in document["outcomes"]}
    assert set(outcomes) == {"baseline-asgi", "store-actor"}

    http = outcomes["baseline-asgi"]
    assert http["error"] is None
    assert http["skipped"] is None
    assert http["result"]["completed"] > 0
    assert http["result"]["errors"] == 0
    assert http["result"]["mode"] == "closed"
    assert http["reproduce"].startswith("python -m benchmarks baseline-asgi")

    store = outcomes["store-actor"]["micro"]
    assert store["subject_ops"] > 0
    assert store["baseline_ops"] > 0
    assert (tmp_path / document_path.name.replace(".json", ".md")).exists()


def test_quick_targets_measure_and_report_every_issue_12_ratio(tmp_path: Path) -> None:
    generator = "wrk" if shutil.which("wrk") else "builtin"
    argv = [sys.executable, "-m", "benchmarks", "targets", "--quick", "--duration", "1"]
    argv += ["--generator", generator, "--results", str(tmp_path), "--no-charts"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "issue 12 targets" in done.stdout
    (document_path,) = tmp_path.glob("*.json")
    document = json.loads(document_path.read_text())
    measured = {(o["scenario"], o["phase"].partition("@")[0]) for o in document["outcomes"]}
    assert measured == {
        ("baseline-quart", "max"),
        ("hookline-async-ingest", "max"),
        ("hookline-sync", "max"),
        ("hookline-async-ingest", "open"),
        ("baseline-quart", "open"),
        ("embedded-engine", "micro"),
    }
    ratios = document["target_ratios"]
    assert len(ratios) == 5
    for ratio in ratios:
        assert ratio["a"]["value"] is not None, ratio
        assert ratio["b"]["value"] is not None, ratio
        assert ratio["ratio"] is not None, ratio
        assert ratio["met"] in (True, False)
        assert ratio["before"]
    summary = (tmp_path / document_path.name.replace(".json", ".md")).read_text()
    assert "## Issue 12 targets" in summary


def test_unknown_scenario_is_refused_with_the_known_names(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "benchmarks", "no-such-thing", "--results", str(tmp_path)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 2
    assert "no-such-thing" in done.stdout
    assert "baseline-asgi" in done.stdout
    assert not list(tmp_path.iterdir())


def test_quick_scale_measures_processes_on_postgresql_or_says_why_not(tmp_path: Path) -> None:
    # Against HOOKLINE_TEST_POSTGRES_URL (make test sets it) or a PostgreSQL the suite can
    # start; without one the step is skipped with the reason, and the run still passes.
    generator = "wrk" if shutil.which("wrk") else "builtin"
    argv = [sys.executable, "-m", "benchmarks", "scale", "--quick", "--duration", "1"]
    argv += ["--generator", generator, "--results", str(tmp_path), "--no-charts"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    (document_path,) = tmp_path.glob("*.json")
    rows = json.loads(document_path.read_text())["scale"]
    skipped = [row for row in rows if row["skipped"]]
    if skipped:
        (row,) = skipped
        assert "PostgreSQL" in row["skipped"]
        assert "skipped: scale" in done.stdout
        return
    assert [(row["store"], row["processes"]) for row in rows] == [("postgres", 1), ("postgres", 2)]
    assert all(row["error"] is None for row in rows), done.stdout
    assert all(row["requests_per_s"] > 0 for row in rows)
    assert rows[0]["over_one_process"] == 1.0
    assert "x 1 process" in done.stdout
