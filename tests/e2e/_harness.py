"""A real ``hookline serve`` process for fault, shutdown and overload tests.

The server runs with ``HOOKLINE_TEST_NODES=1`` (the ``sleep`` and ``fail`` node types)
on a temporary SQLite file; its output goes to a log file, never to a pipe nobody
reads. After it stops, :func:`read_db` reads what it stored, as the next start would.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from hookline.store._encoding import unpack

ROOT = Path(__file__).parent.parent.parent
_URL = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)")


def write_setup(folder: Path, workflows: dict[str, str], server: str = "") -> Path:
    """A config file in ``folder`` with the ``workflows`` (name -> YAML) beside it."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    for name, text in workflows.items():
        (folder / "workflows" / f"{name}.yaml").write_text(textwrap.dedent(text))
    config = folder / "hookline.yaml"
    config.write_text("workflows: ./workflows\n" + textwrap.dedent(server))
    return config


class Server:
    """``hookline serve`` on a free port, started and stopped as often as needed."""

    def __init__(self, config: Path, db: Path) -> None:
        self.config = config
        self.db = db
        self.url = ""
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.db.parent / f"server-{self.starts}.log"

    async def start(self, timeout: float = 30.0) -> str:
        self.starts += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOOKLINE_TEST_NODES": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hookline",
                    "serve",
                    "--config",
                    str(self.config),
                    "--bind",
                    "127.0.0.1:0",
                    "--db",
                    str(self.db),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        with trio.move_on_after(timeout):
            while self.process.poll() is None:
                found = _URL.search(self.log())
                if found:
                    self.url = found.group(1)
                    return self.url
                await trio.sleep(0.02)
        self.process.kill()
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def log(self) -> str:
        """The output of the current (or last) run."""
        return self.log_path.read_text(errors="replace")

    def logs(self) -> list[str]:
        """The output of every run so far, first to last."""
        paths = (self.db.parent / f"server-{n}.log" for n in range(1, self.starts + 1))
        return [path.read_text(errors="replace") for path in paths]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def send(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after ``timeout`` seconds."""
        assert self.process is not None
        with trio.move_on_after(timeout):
            while self.process.poll() is None:
                await trio.sleep(0.01)
        return self.process.poll()

    def rss_kib(self) -> int:
        """The server's resident memory (VmRSS), in KiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert found is not None
        return int(found.group(1))

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@attrs.frozen
class StoredExecution:
    id: str
    workflow: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    context: dict[str, Any]
    order_key: str | None


@attrs.frozen
class StoredJob:
    execution_id: str
    node: str
    status: str
    attempt: int
    output: Any
    started_at: float
    finished_at: float | None


@attrs.frozen
class Stored:
    executions: dict[str, StoredExecution]
    jobs: dict[str, list[StoredJob]]
    deliveries: list[tuple[str, str, str | None]]  # (id, verdict, execution id)


def read_db(db: Path) -> Stored:
    """Everything the server stored, read with plain sqlite3."""
    with sqlite3.connect(db) as conn:
        executions = {
            row[0]: StoredExecution(
                row[0], row[1], row[2], row[3], row[4], row[5], unpack(row[6]), row[7]
            )
            for row in conn.execute(
                "SELECT id, workflow, status, created_at, started_at, finished_at, context, "
                "order_key FROM executions ORDER BY id"
            )
        }
        jobs: dict[str, list[StoredJob]] = {}
        for row in conn.execute(
            "SELECT execution_id, node, status, attempt, output, started_at, finished_at "
            "FROM jobs ORDER BY seq"
        ):
            jobs.setdefault(row[0], []).append(
                StoredJob(row[0], row[1], row[2], row[3], unpack(row[4]), row[5], row[6])
            )
        deliveries = list(conn.execute("SELECT id, verdict, execution_id FROM deliveries"))
    return Stored(executions, jobs, deliveries)


def unfinished(db: Path) -> int:
    """How many executions are queued or running (read while the server runs)."""
    with sqlite3.connect(db, timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM executions WHERE status IN ('queued', 'running')"
        ).fetchone()
    return int(row[0])


async def wait_all_finished(db: Path, timeout: float) -> None:
    """Return once nothing is queued or running; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while unfinished(db):
        assert time.monotonic() < deadline, f"{unfinished(db)} executions never finished"
        await trio.sleep(0.1)
