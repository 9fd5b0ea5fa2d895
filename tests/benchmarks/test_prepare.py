"""``prepare`` deploys the benchmark workflows on a running hookline through its admin
API alone (no restart, no variable on the server), signed with a secret generated for
the run and kept in the results folder; ``cleanup`` removes them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from benchmarks._spec import PAYLOADS, github_signature
from tests.benchmarks.conftest import Deployment
from tests.benchmarks.conftest import bench_here as bench


def test_prepare_deploys_bench_workflows_signed_with_a_new_secret(
    deployment: Deployment, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    done = bench("prepare", "--target", deployment.url, "--key", deployment.key,
                 "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deployed bench-async-ingest at /api/webhooks/bench/async" in done.stdout

    (kept,) = (results / "prepared").glob("*.json")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    prepared = json.loads(kept.read_text())
    secret = prepared["secret"]
    assert len(secret) >= 32
    assert secret != "hookline-bench-secret"
    assert prepared["workflows"]["bench-async-ingest"] == "bench/async"
    assert all(key.startswith("bench-") for key in prepared["workflows"])

    admin = {"Authorization": f"Bearer {deployment.key}"}
    listed = httpx.get(f"{deployment.url}/api/workflows", headers=admin).json()
    assert {"bench-async-ingest", "bench-sync-3"} <= {w["key"] for w in listed["workflows"]}

    body = (PAYLOADS / "push.json").read_bytes()
    url = f"{deployment.url}/api/webhooks/bench/async"
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-GitHub-Delivery": "prepare-test-1"}  # fmt: skip
    signed = {**headers, "X-Hub-Signature-256": github_signature(secret, body)}
    assert httpx.post(url, content=body, headers=signed).status_code == 202
    unsigned = httpx.post(url, content=body, headers={**headers, "X-GitHub-Delivery": "p-2"})
    assert unsigned.status_code in (401, 403)
    old = {**headers, "X-GitHub-Delivery": "p-3",
           "X-Hub-Signature-256": github_signature("hookline-bench-secret", body)}  # fmt: skip
    assert httpx.post(url, content=body, headers=old).status_code in (401, 403)

    done = bench("cleanup", "--target", deployment.url, "--key", deployment.key,
                 "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bench-async-ingest" in done.stdout
    assert not kept.exists()
    listed = httpx.get(f"{deployment.url}/api/workflows", headers=admin).json()
    assert not [w for w in listed["workflows"] if w["key"].startswith("bench-")]
    assert not list(deployment.workflows.glob("bench-*"))
    assert httpx.post(url, content=body, headers=signed).status_code == 404


def test_prepare_without_the_admin_key_says_how_to_pass_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    done = bench("prepare", "--target", deployment.url, "--results", str(tmp_path),
                 env={"HOOKLINE_ADMIN_KEY": ""})  # fmt: skip
    assert done.returncode == 1
    assert "--key" in done.stderr
    assert not (tmp_path / "prepared").exists()


def test_a_target_run_of_a_workflow_not_prepared_is_skipped_with_the_command(
    deployment: Deployment, tmp_path: Path
) -> None:
    # prepared from this results folder, but only the async workflow kept
    results = tmp_path / "results"
    done = bench("prepare", "--target", deployment.url, "--key", deployment.key,
                 "--results", str(results))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (kept,) = (results / "prepared").glob("*.json")
    prepared = json.loads(kept.read_text())
    prepared["workflows"] = {"bench-async-ingest": "bench/async"}
    kept.write_text(json.dumps(prepared))
    try:
        done = bench("hookline-sync", "--target", deployment.url, "--results", str(results),
                     "--no-charts", "--duration", "1", "--warmup", "0")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "python -m benchmarks prepare" in done.stdout
    finally:
        bench("cleanup", "--target", deployment.url, "--key", deployment.key,
              "--results", str(results))  # fmt: skip
