"""A scenario exported to Locust runs with a master and two workers against a real
hookline, open loop with signed requests and unique idempotency keys, and its
statistics merge back into the suite's JSON, Markdown and HTML report, beside the
server's own figures."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.benchmarks.conftest import Deployment, bench

# Not imported here: locust monkey-patches the whole process with gevent.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="Locust is not installed (the test extra has it)",
)


@pytest.fixture
def prepared(deployment: Deployment, tmp_path: Path) -> Iterator[Path]:
    results = tmp_path / "results"
    done = bench("prepare", "--target", deployment.url, "--key", deployment.key,
                 "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    yield results
    bench("cleanup", "--target", deployment.url, "--key", deployment.key,
          "--results", str(results))  # fmt: skip


def test_two_locust_workers_load_the_target_and_merge_into_one_report(
    deployment: Deployment, prepared: Path
) -> None:
    done = bench(
        "locust", "run", "hookline-async-ingest", "--target", deployment.url,
        "--rate", "40", "--duration", "3", "--workers", "2", "--results", str(prepared),
        env={"HOOKLINE_ADMIN_KEY": deployment.key}, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 workers)" in done.stdout

    (document_path,) = prepared.glob("*-locust.json")
    document = json.loads(document_path.read_text())
    (outcome,) = document["outcomes"]
    result = outcome["result"]
    assert outcome["scenario"] == "hookline-async-ingest"
    assert outcome["phase"] == "open@40"
    assert result["generator"].startswith("locust ")
    assert result["generator"].endswith("(2 workers)")
    # 40/s for 3 s, split over the two workers, every request answered 2xx
    assert result["sent"] == 120
    assert result["completed"] == 120
    assert result["non_2xx"] == 0
    assert result["errors"] == 0
    assert result["latency"]["p99_ms"] > 0
    server = outcome["server"]
    assert server["accepted"] == 120, server  # unique ids: no duplicate, nothing lost
    assert server["lost"] == 0
    assert document["machine"]["locust"]
    assert "--worker" in outcome["reproduce"]
    assert document_path.with_suffix(".md").exists()
    assert "hookline-async-ingest" in document_path.with_suffix(".html").read_text()

    # The exported file signs with the run's signature, never the secret itself.
    (locustfile,) = (prepared / "locust").glob("*.py")
    (kept,) = (prepared / "prepared").glob("*.json")
    assert json.loads(kept.read_text())["secret"] not in locustfile.read_text()
    assert "X-Hub-Signature-256" in locustfile.read_text()


def test_export_prints_the_master_worker_and_merge_commands(
    deployment: Deployment, prepared: Path
) -> None:
    out = prepared / "ingest.py"
    done = bench("locust", "export", "hookline-duplicates", "--target", deployment.url,
                 "--rate", "500", "--out", str(out), "--results", str(prepared))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--master" in done.stdout
    assert "--worker --master-host MASTER_HOST" in done.stdout
    assert "locust merge" in done.stdout
    text = out.read_text()
    compile(text, str(out), "exec")
    assert "REPEAT_LAG = 64" in text  # half the ids repeat, as in the suite
    assert "RATE = 500.0" in text
    meta = json.loads(out.with_name("ingest.py.bench.json").read_text())
    assert meta["workflow"] == "bench-async-ingest"


def test_export_refuses_a_scenario_that_is_not_hookline_over_http(tmp_path: Path) -> None:
    done = bench("locust", "export", "store-actor", "--target", "http://127.0.0.1:9",
                 "--results", str(tmp_path))  # fmt: skip
    assert done.returncode == 2
    assert "hookline-async-ingest" in done.stdout
