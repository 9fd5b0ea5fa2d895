"""A real ``hookline serve`` process for fault, shutdown and overload tests.

The server runs with ``HOOKLINE_TEST_NODES=1`` (the ``sleep`` and ``fail`` node types)
on a temporary SQLite file or a PostgreSQL schema of the test's own (:func:`store_for`);
its output goes to a log file, never to a pipe nobody reads. After it stops,
:func:`read_db` reads what it stored, as the next start would.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import psycopg
import pytest
import trio

from hookline.store._encoding import unpack

from ..conftest import postgres_schema_url

ROOT = Path(__file__).parent.parent.parent
_URL = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)")
_STORE_URL = re.compile(r"^store:.*$", re.MULTILINE)

# A process killed with SIGKILL leaves its worker row in PostgreSQL: the restarted one
# takes its executions over only once this lease has run out.
POSTGRES_OPTIONS = "heartbeat=0.2&lease=1"

BACKENDS = ["sqlite", "postgres"]
_OURS = frozenset({"heartbeat", "lease", "readers"})


def store_for(request: pytest.FixtureRequest, folder: Path) -> Path | str:
    """Where a server fixture parametrised over :data:`BACKENDS` stores: a SQLite file
    in ``folder``, or a fresh PostgreSQL schema with a short lease (the test is skipped
    when there is no PostgreSQL server)."""
    if request.param == "postgres":
        return f"{postgres_schema_url(request)}&{POSTGRES_OPTIONS}"
    return folder / "hookline.db"


async def wait_for_url(
    process: subprocess.Popen[bytes],
    log: Callable[[], str],
    timeout: float,
    pattern: re.Pattern[str] = _URL,
) -> str | None:
    """The URL ``hookline serve`` says it serves on (``pattern``'s group), read from
    its ``log``; None if the process exits or ``timeout`` passes first."""
    with trio.move_on_after(timeout):
        while process.poll() is None:
            found = pattern.search(log())
            if found:
                return found.group(1)
            await trio.sleep(0.02)
    return None


def write_setup(folder: Path, workflows: dict[str, str], server: str = "") -> Path:
    """A config file in ``folder`` with the ``workflows`` (name -> YAML) beside it."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    for name, text in workflows.items():
        (folder / "workflows" / f"{name}.yaml").write_text(textwrap.dedent(text))
    config = folder / "hookline.yaml"
    config.write_text("workflows: ./workflows\n" + textwrap.dedent(server))
    return config


class Server:
    """``hookline serve`` on a free port, started and stopped as often as needed,
    storing in ``store``: a SQLite file (``--db``), or a store URL, which replaces the
    config's one-line ``store:`` entry if any (PostgreSQL). Its logs go beside the config."""

    def __init__(self, config: Path, store: Path | str) -> None:
        self.config = config
        self.store = store
        self.url = ""
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._where = ["--db", str(store)]
        if isinstance(store, str):
            line = f'store: {{url: "{store}"}}'
            text = _STORE_URL.sub("", config.read_text())
            config.write_text(f"{text.rstrip()}\n{line}\n")
            self._where = []

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"server-{self.starts}.log"

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
                    *self._where,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        url = await wait_for_url(self.process, self.log, timeout)
        if url is not None:
            self.url = url
            return url
        self.process.kill()
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def log(self) -> str:
        """The output of the current (or last) run."""
        return self.log_path.read_text(errors="replace")

    def logs(self) -> list[str]:
        """The output of every run so far, first to last."""
        paths = (self.config.parent / f"server-{n}.log" for n in range(1, self.starts + 1))
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
    """An execution as stored. ``owner`` and ``seq`` are PostgreSQL's (None and 0 on
    SQLite)."""

    id: str
    workflow: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    context: dict[str, Any]
    output: Any
    error: str | None
    order_key: str | None
    owner: str | None
    seq: int

    @property
    def sender_id(self) -> str:
        """The delivery id its sender gave (``X-GitHub-Delivery``)."""
        return str(self.context["headers"]["x-github-delivery"])


@attrs.frozen
class StoredJob:
    execution_id: str
    node: str
    scope: str
    attempt: int
    type: str
    status: str
    started_at: float
    finished_at: float | None
    output: Any
    log: Any
    error: str | None


@attrs.frozen
class StoredDelivery:
    id: str
    verdict: str
    status: int | None
    execution_id: str | None


@attrs.frozen
class Stored:
    """Everything a store holds: executions by id (in arrival order), their jobs in
    save order, the deliveries."""

    executions: dict[str, StoredExecution]
    jobs: dict[str, list[StoredJob]]
    deliveries: list[StoredDelivery]

    def jobs_of(self, execution_id: str, status: str | None = None) -> list[StoredJob]:
        jobs = self.jobs.get(execution_id, [])
        return [job for job in jobs if status is None or job.status == status]

    def by_sender_id(self) -> dict[str, list[StoredExecution]]:
        found: dict[str, list[StoredExecution]] = {}
        for execution in self.executions.values():
            found.setdefault(execution.sender_id, []).append(execution)
        return found


def query(store: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (no parameters) finds in ``store``: a SQLite file, read with
    plain sqlite3, or a PostgreSQL URL, read with psycopg."""
    if isinstance(store, str):
        with psycopg.connect(libpq_url(store)) as conn:
            return conn.execute(sql).fetchall()
    with sqlite3.connect(store, timeout=10) as lite:
        return lite.execute(sql).fetchall()


def libpq_url(url: str) -> str:
    """A store URL without hookline's own options (``heartbeat`` ...), which libpq refuses."""
    parts = urlsplit(url)
    options = [(name, value) for name, value in parse_qsl(parts.query) if name not in _OURS]
    return urlunsplit(parts._replace(query=urlencode(options)))


def unpacked(value: bytes | None) -> Any:
    """A stored blob decoded (None stays None)."""
    return None if value is None else unpack(bytes(value))


def read_db(store: Path | str) -> Stored:
    """Everything the server stored in ``store`` (a SQLite file or a PostgreSQL URL)."""
    # Only PostgreSQL has owners, and arrival numbers whatever the clocks.
    arrival = "owner, seq FROM executions ORDER BY seq"
    if not isinstance(store, str):
        arrival = "NULL, 0 FROM executions ORDER BY id"
    executions = {}
    for row in query(
        store,
        "SELECT id, workflow, status, created_at, started_at, finished_at, context, output, "
        f"error, order_key, {arrival}",
    ):
        key, workflow, status, created_at, started_at, finished_at = row[:6]
        context, output, error, order_key, owner, seq = row[6:]
        executions[key] = StoredExecution(
            key,
            workflow,
            status,
            created_at,
            started_at,
            finished_at,
            unpacked(context),
            unpacked(output),
            error,
            order_key,
            owner,
            seq,
        )
    jobs: dict[str, list[StoredJob]] = {}
    for row in query(
        store,
        "SELECT execution_id, node, scope, attempt, type, status, started_at, finished_at, "
        "output, log, error FROM jobs ORDER BY seq",
    ):
        execution_id, node, scope, attempt, kind, status, started_at, finished_at = row[:8]
        job = StoredJob(
            execution_id,
            node,
            scope,
            attempt,
            kind,
            status,
            started_at,
            finished_at,
            unpacked(row[8]),
            unpacked(row[9]),
            row[10],
        )
        jobs.setdefault(execution_id, []).append(job)
    deliveries = [
        StoredDelivery(*row)
        for row in query(store, "SELECT id, verdict, status, execution_id FROM deliveries")
    ]
    return Stored(executions, jobs, deliveries)


def unfinished(store: Path | str) -> int:
    """How many executions are queued, throttled or running now (read while servers
    run; ``waiting`` ones wait for their event)."""
    live = "('queued', 'throttled', 'running')"
    rows = query(store, f"SELECT count(*) FROM executions WHERE status IN {live}")
    return int(rows[0][0])


async def wait_all_finished(store: Path | str, timeout: float) -> None:
    """Return once nothing is queued, throttled or running; fail after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while left := await trio.to_thread.run_sync(unfinished, store):
        assert time.monotonic() < deadline, f"{left} executions never finished"
        await trio.sleep(0.1)
