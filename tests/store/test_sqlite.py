"""What only the SQLite backend does: files, migrations, WAL, durability after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import hookline
from hookline.errors import StoreClosed, StoreError
from hookline.store._ops import RecordDelivery
from hookline.store._schema import MIGRATIONS
from hookline.store._sqlite import SQLiteBackend

from .conftest import delivery


def test_opening_twice_migrates_once_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "hookline.db"
    first = SQLiteBackend(path)
    first.open()
    kept = delivery(verdict="rejected")
    first.apply([RecordDelivery(kept)])
    first.close()

    again = SQLiteBackend(path)
    again.open()
    again.open()
    try:
        assert again.get_delivery(kept.id) == kept
    finally:
        again.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    assert rows == [(n, name) for n, (name, _) in enumerate(MIGRATIONS, start=1)]


def test_a_file_from_a_newer_hookline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hookline.db"
    backend = SQLiteBackend(path)
    backend.open()
    backend.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO migrations (version, name, applied_at) VALUES (?, 'future', 0)",
            (len(MIGRATIONS) + 1,),
        )
    with pytest.raises(StoreError, match="newer"):
        SQLiteBackend(path).open()


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "hookline.db"
    backend = SQLiteBackend(path, synchronous="normal")
    backend.open()
    backend.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="could not open"):
        SQLiteBackend(tmp_path / "missing" / "hookline.db").open()


def test_a_closed_backend_refuses_reads_and_writes(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "hookline.db")
    backend.open()
    backend.close()
    with pytest.raises(StoreClosed):
        backend.get_delivery("x")
    with pytest.raises(StoreClosed):
        backend.apply([RecordDelivery(delivery())])


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteBackend("x.db", synchronous="sometimes")
    with pytest.raises(ValueError, match="readers"):
        SQLiteBackend("x.db", readers=0)


def test_reads_from_many_threads_see_committed_writes(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "hookline.db", readers=2)
    backend.open()
    try:
        records = [delivery(verdict="rejected") for _ in range(40)]
        backend.apply([RecordDelivery(r) for r in records])
        found: list[bool] = []

        def read(part: list[str]) -> None:
            found.extend(backend.get_delivery(id) is not None for id in part)

        ids = [r.id for r in records]
        threads = [threading.Thread(target=read, args=(ids[n::4],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert found == [True] * 40
    finally:
        backend.close()


CHILD = """
import sys
import trio
from hookline._ids import new_id
from hookline.store._ops import RecordDelivery
from hookline.store._records import DeliveryRecord
from hookline.store._store import open_store


async def main(path):
    store = open_store("sqlite:///" + path)

    async def writer():
        while True:
            id = new_id()
            record = DeliveryRecord(
                id=id, workflow="w", received_at=0.0, method="POST", path="/w",
                headers={}, query={}, body=b"x" * 200, remote_addr="test",
                verdict="rejected",
            )
            await store.write(RecordDelivery(record))
            print(id, flush=True)

    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        for _ in range(16):
            nursery.start_soon(writer)


trio.run(main, sys.argv[1])
"""


def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "hookline.db"
    root = Path(hookline.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=root,
    )
    # Should the child hang, kill it anyway rather than hang the test run.
    watchdog = threading.Timer(30, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        acknowledged: list[str] = []
        while len(acknowledged) < 300:
            line = child.stdout.readline()
            assert line, "the child stopped before acknowledging enough writes"
            acknowledged.append(line.decode().strip())
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read().decode()
        child.wait()
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL
    # A line cut short by the kill was never acknowledged: only whole lines count.
    acknowledged += [line for line in rest.split("\n")[:-1] if line]

    backend = SQLiteBackend(path)
    backend.open()
    try:
        missing = [id for id in acknowledged if backend.get_delivery(id) is None]
    finally:
        backend.close()
    assert missing == []
