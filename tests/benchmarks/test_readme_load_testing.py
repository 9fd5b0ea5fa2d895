"""The README's load-testing walk-through, run as written against a real
``hookline serve`` with an admin key: prepare, a measured ``--target`` run of async
ingest whose ledger balances, cleanup."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.conftest import REPO, Deployment

README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"


def walkthrough() -> list[str]:
    """The ``python -m benchmarks`` commands of the README's load-testing section."""
    text = README.read_text()
    section = text.split("### Load testing a deployment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "the load-testing section has no sh block"
    return [line for line in block.group(1).splitlines() if line.startswith("python -m benchmarks")]


def test_the_readme_walks_from_a_clone_to_a_measured_deployment_in_three_commands(
    deployment: Deployment,
) -> None:
    commands = walkthrough()
    assert [c.split()[3] for c in commands] == ["prepare", "hookline-async-ingest", "cleanup"]
    env = {**os.environ, "HOOKLINE_URL": deployment.url, "HOOKLINE_ADMIN_KEY": deployment.key}
    env.pop("BENCH_SECRET", None)
    outputs: list[str] = []
    try:
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
        prepare_out, run_out, cleanup_out = outputs
        assert "deployed bench-async-ingest" in prepare_out
        assert "bench-async-ingest" in cleanup_out

        found = re.search(r"^results: (\S+\.json),", run_out, flags=re.MULTILINE)
        assert found is not None, run_out
        document_path = Path(found.group(1))
        assert document_path.parent == RESULTS
        document = json.loads(document_path.read_text())
        (outcome,) = document["outcomes"]
        assert outcome["scenario"] == "hookline-async-ingest"
        assert outcome["error"] is None, outcome
        assert outcome["skipped"] is None, outcome
        assert outcome["result"]["completed"] > 0
        assert "signature verified: an unsigned request was refused" in outcome["notes"]
        server = outcome["server"]
        assert server["workflow"] == "bench-async-ingest"
        assert server["lost"] == 0, server
        assert server["sent"] == server["accepted"] + server["refused"]
        assert server["deliveries"]["accepted"] == server["accepted"]
        assert server["executions_finished"]["succeeded"] == server["accepted"]
        assert server["commits"] > 0
        assert "(balanced)" in run_out
        assert document_path.with_suffix(".html").exists()
        # The admin key is never written into the results.
        assert deployment.key not in document_path.read_text()
        port = deployment.url.rsplit(":", 1)[1]
        assert not (RESULTS / "prepared" / f"127.0.0.1-{port}.json").exists()
    finally:
        # What the run wrote into the repository's (git-ignored) results folder.
        for output in outputs:
            for stem in re.findall(r"^results: \S+/(\w+)\.json,", output, flags=re.MULTILINE):
                for created in RESULTS.glob(f"{stem}*"):
                    created.unlink()
