"""Each run writes one HTML page beside its JSON: tables, throughput and latency
charts, machine facts, the commands to reproduce and the server's own figures. The
page of a real --target run, opened in headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._html import render
from tests.benchmarks.conftest import Deployment
from tests.benchmarks.conftest import bench_here as bench

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_names_from_a_run_are_escaped() -> None:
    page = render({"command": "<script>x</script>", "outcomes": [
        {"scenario": "<b>s</b>", "phase": "max", "system": "x", "notes": ["<i>n</i>"],
         "result": {"generator": "g", "requests_per_s": 1.0, "non_2xx": 0, "errors": 0,
                    "latency": {"p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "p999_ms": 4}}}
    ]})  # fmt: skip
    assert "<script>" not in page
    assert "<b>s</b>" not in page
    assert "&lt;b&gt;s&lt;/b&gt;" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_html_report_of_a_target_run_shows_every_part_in_chromium(
    deployment: Deployment, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    results = tmp_path / "results"
    target = ["--target", deployment.url, "--results", str(results)]
    assert bench("prepare", *target, "--key", deployment.key).returncode == 0
    try:
        argv = ["--key", deployment.key, "--duration", "1", "--warmup", "0", "--rounds", "2"]
        done = bench("hookline-async-ingest", *target, *argv, "--no-charts")
    finally:
        bench("cleanup", *target, "--key", deployment.key)
    assert done.returncode == 0, done.stdout + done.stderr
    (document_path,) = results.glob("*.json")
    page_path = document_path.with_suffix(".html")
    document = json.loads(document_path.read_text())
    assert [len(o["rounds"]) for o in document["outcomes"]] == [2]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            assert page.title().startswith("hookline benchmarks: run")
            headings = page.locator("h2").all_inner_texts()
            for part in ("HTTP", "Throughput", "Latency percentiles", "Server-side figures",
                         "Machine", "Commands to reproduce"):  # fmt: skip
                assert part in headings
            assert page.locator("svg.throughput rect").count() == 1
            assert page.locator("svg.latency polyline").count() == 1
            server = page.locator("h2:has-text('Server-side figures') + p + table")
            assert server.locator("tbody tr").count() == 1
            assert "bench-async-ingest" in server.inner_text()
            assert page.locator("span.good").inner_text() == "0"  # lost
            assert "cpu_model" in page.locator("table.facts").inner_text()
            commands = page.locator("pre").inner_text()
            assert "python -m benchmarks hookline-async-ingest --duration 1" in commands
            assert deployment.key not in page.content()
        finally:
            browser.close()
