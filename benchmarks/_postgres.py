"""A PostgreSQL server for the ``scale`` step, and a fresh schema for each measurement.

The server is ``HOOKLINE_TEST_POSTGRES_URL`` when it is set (as ``make test`` and CI set
it), else a throwaway cluster from ``scripts/postgres.sh start``, stopped and removed
afterwards. Where neither can be had, :func:`postgres_server` raises
:class:`~benchmarks._spec.Skip` saying why and what would make it run. postgres.sh
starts its cluster with ``fsync=off`` (fine for tests); the step restarts a cluster it
started with fsync and synchronous commits on, so that its commits cost what a
production server's do. A given server is used as it is, and its durability settings
are read and reported either way.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs

from ._spec import REPO_ROOT, Skip

__all__ = ["PostgresServer", "fresh_schema", "postgres_server", "unfinished_executions"]

SCRIPT = REPO_ROOT / "scripts" / "postgres.sh"
#: The server settings a reader needs to judge the figures.
SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "max_connections",
    "shared_buffers",
)


@attrs.frozen
class PostgresServer:
    """A reachable PostgreSQL at ``url``; ``origin`` says where it came from and
    ``settings`` holds the values of :data:`SETTINGS` on it."""

    url: str
    origin: str
    settings: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """One line for the report: version, origin and durability settings."""
        values = dict(self.settings)
        version = values.get("server_version", "?").split()[0]
        rest = ", ".join(f"{k}={v}" for k, v in self.settings if k != "server_version")
        return f"PostgreSQL {version} ({self.origin}): {rest}"


def _settings(url: str) -> tuple[tuple[str, str], ...]:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            return tuple(
                (name, str(conn.execute(f"SHOW {name}").fetchone()[0]))  # type: ignore[index]
                for name in SETTINGS
            )
    except psycopg.Error as exc:
        raise Skip(f"PostgreSQL at {_redact(url)} is not reachable: {exc}".strip()) from exc


def _redact(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.partition("://")[2]:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.partition(':')[0]}:***@{tail}"


def _server_binaries() -> bool:
    """Whether PostgreSQL's server binaries are installed (postgres.sh would otherwise
    install Debian's package)."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return True
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


@contextlib.contextmanager
def postgres_server(*, install: bool) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the block (see the module docstring). ``install`` False
    (the quick run) never lets postgres.sh install the server package. Raises Skip."""
    url = os.environ.get("HOOKLINE_TEST_POSTGRES_URL")
    if url:
        yield PostgresServer(url, "HOOKLINE_TEST_POSTGRES_URL", _settings(url))
        return
    if os.environ.get("HOOKLINE_TEST_POSTGRES_SKIP"):
        raise Skip(f"no PostgreSQL server: {os.environ['HOOKLINE_TEST_POSTGRES_SKIP']}")
    if not install and not _server_binaries():
        raise Skip(
            "no PostgreSQL server: set HOOKLINE_TEST_POSTGRES_URL or install PostgreSQL "
            "(the quick run installs nothing; `python -m benchmarks scale` does, as root on Debian)"
        )
    exports = start_throwaway()
    try:
        url = exports["HOOKLINE_TEST_POSTGRES_URL"]
        _make_durable(Path(exports["HOOKLINE_POSTGRES_DIR"]))
        origin = "throwaway cluster from scripts/postgres.sh, made durable"
        yield PostgresServer(url, origin, _settings(url))
    finally:
        stop_throwaway(exports["HOOKLINE_POSTGRES_DIR"])


def start_throwaway() -> dict[str, str]:
    """Start a throwaway cluster with scripts/postgres.sh (the tests' too): its exports,
    ``HOOKLINE_TEST_POSTGRES_URL`` and ``HOOKLINE_POSTGRES_DIR``. Raises Skip saying
    why there is none."""
    started = subprocess.run(
        ["sh", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    if started.returncode != 0 or "HOOKLINE_TEST_POSTGRES_URL" not in exports:
        why = (started.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise Skip(
            "no PostgreSQL server: set HOOKLINE_TEST_POSTGRES_URL or install PostgreSQL "
            f"(scripts/postgres.sh start: {why})"
        )
    return exports


def stop_throwaway(folder: str) -> None:
    """Stop the cluster :func:`start_throwaway` started and remove its ``folder``."""
    subprocess.run(["sh", str(SCRIPT), "stop", folder], check=False, timeout=60)


def _make_durable(folder: Path) -> None:
    """Restart the throwaway cluster in ``folder`` (postgres.sh's) with durable commits,
    as PostgreSQL's defaults are: postgres.sh turns fsync off on the server's command
    line, which would flatter every commit beside SQLite's ``synchronous=FULL``, and
    command-line settings can only be overridden by later ones on a new command line.
    Raises Skip when the restart fails."""
    data = folder / "data"
    binaries = Path((folder / "bin").read_text().strip())
    # postmaster.opts holds the last command line: keep it, append the overrides.
    previous = shlex.split((data / "postmaster.opts").read_text())[1:]
    durable = ["-c", "fsync=on", "-c", "full_page_writes=on", "-c", "synchronous_commit=on"]
    argv = [str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-m", "fast"]
    argv += ["-l", str(folder / "server.log"), "-o", shlex.join(previous + durable), "restart"]
    if os.geteuid() == 0:  # postgres.sh made the cluster postgres's: run as its owner
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise Skip(f"could not restart PostgreSQL with fsync on: {done.stderr.strip()}")


def _with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


@contextlib.contextmanager
def fresh_schema(server: PostgresServer, label: str) -> Iterator[str]:
    """A store URL whose tables go into a new, empty schema of ``server``; the schema
    is dropped after the block (hookline's own URL options are left at their
    defaults)."""
    import psycopg
    from psycopg import sql

    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield _with_option(server.url, "options=" + quote(f"-csearch_path={schema}"))
    finally:
        # A worker still exiting may hold locks: wait a little, never for long.
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(server.url, autocommit=True) as conn,
        ):
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def unfinished_executions(store_url: str) -> tuple[int, int] | None:
    """(unfinished, all) executions in the store at ``store_url`` (PostgreSQL), or None
    when they cannot be counted."""
    import psycopg

    query = (
        "SELECT count(*) FILTER (WHERE status IN ('queued', 'throttled', 'running')), "
        "count(*) FROM executions"
    )
    try:
        with psycopg.connect(store_url, connect_timeout=10) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return (int(row[0]), int(row[1])) if row else None
