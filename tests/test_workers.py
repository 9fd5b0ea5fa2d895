"""``hookline serve --workers N``: refusals, ``server.workers``, and the pool's supervision.

The pool tests run small stand-in children (a few lines of Python, no engine) that
serve nothing but behave like ``hookline serve --fd N``: they print the serving line
and stop on SIGTERM. They start in tens of milliseconds, so the real clock is used.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from hookline._config import ServerConfig, load_config
from hookline._workers import RestartBudget, WorkerPool, open_listener, refusal
from hookline.cli import main
from hookline.errors import ConfigError

# argv[1]: how to behave; argv[-1]: the inherited socket (the pool appends --fd N).
CHILD = """
import signal, socket, sys, time
mode, fd = sys.argv[1], int(sys.argv[-1])
port = socket.socket(fileno=fd).getsockname()[1]
terms = []
def on_term(signum, frame):
    terms.append(signum)
    print(f"term {len(terms)}", flush=True)
    if mode != "stubborn" or len(terms) == 2:
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
signal.signal(signal.SIGHUP, lambda signum, frame: print("hup", flush=True))
if mode == "broken":
    print("cannot reach the store", file=sys.stderr)
    sys.exit(2)
print("child says hello", flush=True)
print(f"hookline serving 1 workflows on http://127.0.0.1:{port}", flush=True)
if mode == "crashing":
    time.sleep(0.5)
    sys.exit(3)
while True:
    signal.pause()
"""


def _write_config(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "hookline.yaml"
    config.write_text(text)
    return config


def test_workers_refused_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path, "store: {url: 'sqlite:///hook.db'}\n")
    assert main(["serve", "--config", str(config), "--workers", "4"]) == 2
    err = capsys.readouterr().err
    assert "--workers 4 needs the PostgreSQL store" in err
    assert "SQLite and memory:// serve one process" in err


def test_workers_from_the_config_file_refused_without_postgres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, "server: {workers: 3}\n")
    assert main(["serve", "--config", str(config)]) == 2
    assert "server.workers: 3 needs the PostgreSQL store" in capsys.readouterr().err


def test_db_option_with_workers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, "store: {url: 'postgresql://db.example/hookline'}\n")
    db = str(tmp_path / "x.db")
    assert main(["serve", "--config", str(config), "--db", db, "--workers", "2"]) == 2
    assert "needs the PostgreSQL store" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(
    workers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, "store: {url: 'postgresql://db.example/hookline'}\n")
    assert main(["serve", "--config", str(config), "--workers", workers]) == 2
    assert "--workers" in capsys.readouterr().err


def test_refusal_lets_postgres_and_a_single_worker_through() -> None:
    assert refusal("postgresql://db/hookline", 8) is None
    assert refusal("sqlite:///hook.db", 1) is None
    assert refusal("memory://", 2) is not None


def test_server_workers_in_the_config_file(tmp_path: Path) -> None:
    assert load_config(None).server.workers == 1
    config = load_config(_write_config(tmp_path, "server: {workers: 4}\n"))
    assert config.server.workers == 4
    assert config.with_overrides(workers=2).server.workers == 2
    assert config.with_overrides(bind="127.0.0.1:9").server.workers == 4


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "true"])
def test_server_workers_must_be_at_least_one(tmp_path: Path, value: str) -> None:
    path = _write_config(tmp_path, f"server: {{workers: {value}}}\n")
    with pytest.raises(ConfigError, match=r"hookline\.yaml: server\.workers: expected an integer"):
        load_config(path)


def test_workers_override_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="--workers"):
        ServerConfig().with_overrides(workers=0)


def test_restart_budget_backs_off_then_gives_up() -> None:
    budget = RestartBudget(limit=4, period=10.0, first_delay=0.1, max_delay=0.3)
    assert budget.exited(100.0) == pytest.approx(0.1)
    assert budget.exited(101.0) == pytest.approx(0.2)
    assert budget.exited(102.0) == pytest.approx(0.3)  # capped
    assert budget.exited(103.0) is None  # four exits within ten seconds


def test_restart_budget_forgets_old_exits() -> None:
    budget = RestartBudget(limit=3, period=10.0, first_delay=0.1)
    assert budget.exited(0.0) is not None
    assert budget.exited(5.0) is not None
    assert budget.exited(12.0) == pytest.approx(0.2)  # the exit at 0 is out of the window
    assert budget.exited(13.0) is None


def test_listener_on_a_free_port_ipv4_and_ipv6() -> None:
    with open_listener("127.0.0.1:0") as listener:
        assert listener.getsockname()[1] > 0
        with socket.create_connection(listener.getsockname()[:2], timeout=2):
            pass
    if socket.has_ipv6:
        try:
            listener = open_listener("[::1]:0")
        except OSError:
            pytest.skip("no IPv6 loopback here")
        with listener:
            assert listener.family == socket.AF_INET6


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with open_listener("127.0.0.1:0") as sock:
        yield sock


def _pool(
    listener: socket.socket, mode: str, workers: int = 2, budget: RestartBudget | None = None
) -> tuple[WorkerPool, io.StringIO]:
    out = io.StringIO()
    command = [sys.executable, "-c", CHILD, mode]
    return WorkerPool(command, listener, workers, budget=budget, out=out), out


async def _start(nursery: trio.Nursery, pool: WorkerPool, statuses: list[int]) -> str:
    async def run(task_status: trio.TaskStatus[str]) -> None:
        statuses.append(await pool.run(task_status=task_status))

    served: str = await nursery.start(run)
    return served


async def _until(condition: object, timeout: float = 5.0) -> None:
    assert callable(condition)
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_pool_announces_once_every_worker_serves_and_stops_cleanly(
    listener: socket.socket,
) -> None:
    pool, out = _pool(listener, "calm", workers=3)
    statuses: list[int] = []
    port = listener.getsockname()[1]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            served = await _start(nursery, pool, statuses)
            assert served == f"1 workflows on http://127.0.0.1:{port}"
            assert len(set(pool.statistics().pids)) == 3
            pool.signal(signal.SIGTERM)
    assert statuses == [0]
    lines = out.getvalue().splitlines()
    assert lines.count("child says hello") == 3
    assert lines.count("term 1") == 3
    serving = [line for line in lines if "serving" in line]
    assert serving == [f"hookline serving 1 workflows on http://127.0.0.1:{port} with 3 workers"]
    assert pool.statistics().pids == ()


async def test_pool_passes_a_second_signal_on(listener: socket.socket) -> None:
    pool, out = _pool(listener, "stubborn", workers=2)
    statuses: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await _start(nursery, pool, statuses)
            pool.signal(signal.SIGTERM)
            await _until(lambda: out.getvalue().count("term 1") == 2)
            assert len(pool.statistics().pids) == 2  # still draining
            pool.signal(signal.SIGINT)
    assert statuses == [0]
    assert out.getvalue().count("term 2") == 2


async def test_pool_passes_sighup_on_without_stopping(listener: socket.socket) -> None:
    pool, out = _pool(listener, "calm", workers=2)
    statuses: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await _start(nursery, pool, statuses)
            pool.reload()
            await _until(lambda: out.getvalue().count("hup") == 2)
            assert len(pool.statistics().pids) == 2  # still serving
            pool.signal(signal.SIGTERM)
    assert statuses == [0]


async def test_pool_replaces_a_killed_worker(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    pool, _ = _pool(listener, "calm", workers=2)
    statuses: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await _start(nursery, pool, statuses)
            victim = pool.statistics().pids[0]
            os.kill(victim, signal.SIGKILL)
            await _until(lambda: pool.statistics().restarts == 1 and pool.statistics().ready == 2)
            assert victim not in pool.statistics().pids
            pool.signal(signal.SIGTERM)
    assert statuses == [0]
    assert f"worker {victim} exited with SIGKILL; starting another" in caplog.text


async def test_pool_gives_up_when_workers_keep_dying(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    budget = RestartBudget(limit=3, period=10.0, first_delay=0.01)
    pool, _ = _pool(listener, "crashing", workers=2, budget=budget)
    statuses: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await _start(nursery, pool, statuses)
    assert statuses == [1]
    assert "workers keep exiting (3 in 10 s" in caplog.text
    assert pool.statistics().pids == ()


async def test_pool_stops_when_a_worker_fails_to_start(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    pool, out = _pool(listener, "broken", workers=2)
    with trio.fail_after(10):
        status = await pool.run()
    assert status == 2
    assert "exited with status 2 before it was ready" in caplog.text
    assert "serving" not in out.getvalue()
    assert pool.statistics().restarts == 0
