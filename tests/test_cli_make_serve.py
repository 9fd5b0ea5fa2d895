"""``make serve`` serves a copy of the examples: what an operator changes through the
admin API lands in ``var/examples/``, never in the tracked ``examples/`` files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from hookline.cli import main

from .e2e._server import ROOT, ServerProcess

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make here")


def make(checkout: Path, *targets: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(checkout), *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_disabling_a_served_example_leaves_the_tracked_file_alone(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "Makefile", checkout)
    shutil.copytree(ROOT / "examples", checkout / "examples")
    tracked = checkout / "examples" / "workflows" / "hello.yaml"
    original = tracked.read_bytes()
    makefile = (ROOT / "Makefile").read_text()
    assert "serve: $(VENV)/.installed served-examples" in makefile
    assert "hookline serve --config $(SERVED)/hookline.yaml" in makefile
    make(checkout, "served-examples")  # what `make serve` makes before serving
    served = checkout / "var" / "examples"
    copy = served / "workflows" / "hello.yaml"
    assert copy.read_bytes() == original

    server = ServerProcess(served / "hookline.yaml", tmp_path / "hookline.db")
    try:
        assert main(["workflows", "disable", "hello", "--url", server.url]) == 0
    finally:
        assert server.stop(signal.SIGTERM) == 0

    assert tracked.read_bytes() == original
    assert copy.read_bytes() != original
    assert "enabled: false" in copy.read_text()
    # The next `make serve` keeps the change: the copy is newer than the example...
    assert "hello.yaml" not in make(checkout, "served-examples")
    assert "enabled: false" in copy.read_text()
    # ...until the example itself changes in the repo (a pull), which wins.
    later = copy.stat().st_mtime + 10
    os.utime(tracked, (later, later))
    assert "hello.yaml" in make(checkout, "served-examples")
    assert copy.read_bytes() == original
