"""A real ``hookline serve`` on 127.0.0.1 with an admin key, for the benchmarks' tests
against a deployment (prepare, --target runs, Locust): one per test session."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "bench-test-admin-key"


@attrs.frozen
class Deployment:
    url: str
    key: str
    workflows: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("deployment")
    workflows = folder / "workflows"
    workflows.mkdir()
    port = _free_port()
    config = folder / "hookline.yaml"
    config.write_text(
        f'server: {{bind: "127.0.0.1:{port}"}}\n'
        f'store: {{url: "sqlite:///{folder / "hookline.db"}"}}\n'
        f"workflows: {workflows}\n"
        f"admin: {{api_keys: [{ADMIN_KEY}]}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BENCH_SECRET"}
    log = (folder / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "hookline", "serve", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"hookline serve exited: {(folder / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"hookline serve not ready: {(folder / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield Deployment(url, ADMIN_KEY, workflows)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@attrs.frozen
class Done:
    returncode: int
    stdout: str
    stderr: str


def bench_here(*argv: str, env: dict[str, str] | None = None) -> Done:
    """``python -m benchmarks ARGV`` in this process (for commands that start no
    server or generator process: cheaper than a new interpreter)."""
    from benchmarks.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Done(code, out.getvalue(), err.getvalue())


def bench(
    *argv: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks ARGV`` from the repository, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
