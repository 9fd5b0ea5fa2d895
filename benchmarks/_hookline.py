"""hookline as a scenario's server: one workflow from ``benchmarks/workflows/``, served
by ``python -m hookline serve`` on a fresh SQLite file.

Before serving, the workflow is checked with ``hookline workflows validate``: a
workflow that needs what this hookline does not have yet (a node type, say) makes
the scenario skip with hookline's own message instead of failing the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ._spec import BENCH_SECRET, HERE, REPO_ROOT, Skip

__all__ = ["SERVER_ENV", "WORKFLOWS", "hookline_server", "validate", "workflow_folder"]

WORKFLOWS = HERE / "workflows"

#: The environment the server and the validation see (the signed workflow reads
#: ``env:BENCH_SECRET``).
SERVER_ENV = (("BENCH_SECRET", BENCH_SECRET),)

_CONFIG = """\
# Written by the benchmarks for one run; --bind and --db are passed on the command line.
server: {{bind: "127.0.0.1:{port}"}}
store: {{url: "sqlite:///bench.db"}}
workflows: {workflows}
"""


def validate(folder: Path) -> None:
    """Raise :class:`Skip` with hookline's message unless every workflow in ``folder``
    loads."""
    done = subprocess.run(
        [sys.executable, "-m", "hookline", "workflows", "validate", str(folder)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **dict(SERVER_ENV)},
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().replace(str(folder) + "/", "")
        raise Skip(f"this hookline cannot load the workflow yet: {message}")


def workflow_folder(folder: Path, workflow: str) -> Path:
    """``folder/workflows`` holding ``benchmarks/workflows/<workflow>.yaml`` alone,
    validated (raises :class:`Skip` as :func:`validate` does)."""
    workflows = folder / "workflows"
    shutil.rmtree(workflows, ignore_errors=True)
    workflows.mkdir(parents=True)
    shutil.copy(WORKFLOWS / f"{workflow}.yaml", workflows)
    validate(workflows)
    return workflows


def hookline_server(workflow: str) -> Callable[[int, Path, bool], list[str]]:
    """A scenario command serving ``benchmarks/workflows/<workflow>.yaml`` alone."""

    def command(port: int, folder: Path, quick: bool) -> list[str]:
        workflows = workflow_folder(folder, workflow)
        config = folder / "hookline.yaml"
        config.write_text(_CONFIG.format(port=port, workflows=workflows))
        return [
            sys.executable,
            "-m",
            "hookline",
            "serve",
            "--config",
            str(config),
            "--bind",
            f"127.0.0.1:{port}",
            "--db",
            str(folder / "bench.db"),
        ]

    return command
