"""The PostgreSQL :class:`~hookline.store._coordination.Coordinator`: workers, leases,
start permits and wake-ups for several processes sharing one database.

It has two connections of its own, apart from the store's writer and readers: one for
heartbeats, adoption and claims (one call at a time: the engine serialises them), one
that LISTENs for wake-ups. The ways of proven PostgreSQL job queues: adoption takes
rows with ``FOR UPDATE SKIP LOCKED``, a claim holds a per-workflow advisory lock while
it counts, NOTIFY only hints. Times that decide whether a worker is alive are the
database's clock, never a machine's.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from ..errors import StoreClosed, StoreError
from ._coordination import Adopted, Claim, Wakeup, WorkerRecord
from ._rows import execution

__all__ = ["PostgresCoordinator", "new_worker_id"]

Connection = psycopg.Connection[Any]
T = TypeVar("T")

_ENDED, _CANCEL, _DEFINITIONS = "hookline_ended", "hookline_cancel", "hookline_definitions"
# The first key of the two-key advisory lock a claim holds per workflow ("cl").
_CLAIM_LOCK = 0x636C
# The least wait a refused rate reports (the moment it is read, it may be all but due).
_MIN_RETRY = 0.001

# Times deciding whether a worker lives are the database's: clock_timestamp() in seconds.
_JOIN = (
    "INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (%s, %s, %s, "
    "extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp())) "
    "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
)
_HEARTBEAT = "UPDATE workers SET heartbeat_at = extract(epoch from clock_timestamp()) WHERE id = %s"
_LEAVE = "DELETE FROM workers WHERE id = %s"
_BURY = (
    "DELETE FROM workers WHERE heartbeat_at < extract(epoch from clock_timestamp()) - %s "
    "AND id <> %s"
)
# Orphans: unfinished, and their owner is unset or no longer a worker (dead ones were
# just removed). SKIP LOCKED: two workers sweeping at once take different ones.
# (Waiting ones go on when their event or timeout comes, not through adoption.)
_ADOPT = (
    "UPDATE executions SET owner = %s WHERE id IN (SELECT id FROM executions x "
    "WHERE status IN ('queued', 'throttled', 'running') AND workflow = ANY(%s::text[]) "
    "AND (owner IS NULL OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = x.owner)) "
    "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, workflow, delivery_id, "
    "status, created_at, started_at, finished_at, context, output, error, order_key, "
    "workflow_version, flow_key, cancel_requested"
)
# Recorded, so that a cancel sent while the owner is dead (within its lease, or
# after) reaches whoever adopts the execution.
_REQUEST_CANCEL = (
    "UPDATE executions SET cancel_requested = true WHERE id = %s "
    "AND status IN ('queued', 'throttled', 'running', 'waiting')"
)
_CANCELS = (
    "SELECT id FROM executions WHERE owner = %s AND cancel_requested "
    "AND status IN ('queued', 'throttled', 'running', 'waiting') ORDER BY seq"
)
_MINE = (
    "SELECT id, status FROM executions WHERE id = ANY(%s::text[]) AND owner = %s "
    "AND status IN ('queued', 'throttled', 'running', 'waiting')"
)
# Waiting executions hold no slot: only running ones count against concurrency.max.
_RUNNING = "SELECT count(*) FROM executions WHERE workflow = %s AND status = 'running'"
# A queued (or throttled) execution may start unless one of its order key started
# (running, or parked on a ``wait``) or is queued from before. A parked one is never
# started here (a late claim would set it running under its wait): the end of its
# wait queues it again, and it asks then.
_START = (
    "WITH granted AS (SELECT c.id FROM executions c WHERE c.id = ANY(%s::text[]) "
    "AND c.status IN ('queued', 'throttled') "
    "AND (c.order_key IS NULL OR NOT EXISTS (SELECT 1 "
    "FROM executions e WHERE e.workflow = c.workflow AND e.order_key = c.order_key "
    "AND e.status IN ('queued', 'throttled', 'running', 'waiting') AND e.id <> c.id "
    "AND (e.status IN ('running', 'waiting') OR e.seq < c.seq))) ORDER BY c.seq LIMIT %s) "
    "UPDATE executions SET status = 'running', started_at = COALESCE(started_at, %s) "
    "WHERE id IN (SELECT id FROM granted) RETURNING id"
)
# GCRA in one statement, on database time: the row lock orders workers booking the
# same key, and the new TAT is the old one (or now, if it passed) plus one interval.
_BOOK_RATE = (
    "WITH now AS (SELECT extract(epoch from clock_timestamp()) AS t) "
    "INSERT INTO flow_rates AS r (scope, key, tat) SELECT %(scope)s, %(key)s, t + %(i)s "
    "FROM now ON CONFLICT (scope, key) DO UPDATE SET "
    "tat = GREATEST(r.tat, excluded.tat - %(i)s) + %(i)s "
    "RETURNING tat, (SELECT t FROM now)"
)
# GCRA's take on database time: one event of the key goes through only if its TAT is
# within the tolerance of now; a refused one changes nothing (the row lock is held
# to the end of the transaction, so the TAT read next is the one that refused it).
_TAKE_RATE = (
    "WITH now AS (SELECT extract(epoch from clock_timestamp()) AS t) "
    "INSERT INTO flow_rates AS r (scope, key, tat) SELECT %(scope)s, %(key)s, t + %(i)s "
    "FROM now ON CONFLICT (scope, key) DO UPDATE SET "
    "tat = GREATEST(r.tat, excluded.tat - %(i)s) + %(i)s "
    "WHERE r.tat - %(tolerance)s <= excluded.tat - %(i)s RETURNING tat"
)
_RATE_WAIT = (
    "SELECT tat - %(tolerance)s - extract(epoch from clock_timestamp()) FROM flow_rates "
    "WHERE scope = %(scope)s AND key = %(key)s"
)
# A key whose TAT has passed behaves as one never seen: its row can go. Keys such as
# client addresses come and go, so every RATE_SWEEP_EVERY-th rate call removes a few.
_FORGET_IDLE_RATES = (
    "DELETE FROM flow_rates WHERE ctid = ANY(ARRAY(SELECT ctid FROM flow_rates "
    "WHERE tat < extract(epoch from clock_timestamp()) LIMIT %s))"
)
RATE_SWEEP_EVERY, RATE_SWEEP_ROWS = 500, 1000
_WORKERS = (
    "SELECT id, host, pid, started_at, heartbeat_at, "
    "extract(epoch from clock_timestamp()) - heartbeat_at FROM workers ORDER BY id"
)


def new_worker_id() -> str:
    """A worker id that says where the process runs: ``host/pid/random``."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


class PostgresCoordinator:
    """Coordinates this process with the others sharing the database.

    ``connect`` opens a new autocommit connection whose ``hookline.worker`` setting is
    ``worker_id``; ``heartbeat`` and ``lease`` are in seconds (see
    :class:`~hookline.store._coordination.Coordinator`). :meth:`open` registers the
    worker and starts listening; :meth:`close` removes it (its unfinished executions
    are then adopted by the others at once).
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        worker_id: str,
        where: str,
        *,
        heartbeat: float = 1.0,
        lease: float = 10.0,
    ) -> None:
        if not 0 < heartbeat < lease:
            raise ValueError(f"heartbeat ({heartbeat}s) must be above 0 and below lease ({lease}s)")
        self.worker_id = worker_id
        self.heartbeat_interval = heartbeat
        self.lease = lease
        self._connect = connect
        self._where = where
        self._conn: Connection | None = None
        self._listener: Connection | None = None
        self._open = False
        self._rate_calls = 0

    def open(self) -> None:
        if self._open:
            return
        self._open = True
        join = (self.worker_id, socket.gethostname(), os.getpid())
        self._call(lambda conn: conn.execute(_JOIN, join))
        # Listening from the start: a wake-up sent before the first wait is kept.
        self._call(lambda conn: self._listening())

    def close(self) -> None:
        if not self._open:
            return
        try:
            self._call(lambda conn: conn.execute(_LEAVE, (self.worker_id,)))
        except StoreError:
            pass  # the database is gone: the lease runs out instead
        finally:
            self._open = False
            for conn in (self._conn, self._listener):
                if conn is not None:
                    conn.close()
            self._conn = self._listener = None

    def _call(self, fn: Callable[[Connection], T]) -> T:
        if not self._open:
            raise StoreClosed(f"the store on {self._where} is closed")
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            return fn(self._conn)
        except psycopg.Error as exc:
            raise StoreError(f"could not coordinate through {self._where}: {exc}") from exc

    # -- the Coordinator protocol ------------------------------------------------------

    def heartbeat(self) -> bool:
        def beat(conn: Connection) -> bool:
            with conn.transaction():
                # A heartbeat lost in a crash is replaced by the next one.
                conn.execute("SET LOCAL synchronous_commit = off")
                return conn.execute(_HEARTBEAT, (self.worker_id,)).rowcount == 1

        return self._call(beat)

    def cancels_requested(self) -> list[str]:
        rows = self._call(lambda conn: conn.execute(_CANCELS, (self.worker_id,)).fetchall())
        return [str(row[0]) for row in rows]

    def adopt(self, workflows: Sequence[str], lease: float, limit: int) -> list[Adopted]:
        def adopt(conn: Connection) -> list[Adopted]:
            with conn.transaction():
                conn.execute(_BURY, (lease, self.worker_id))
                rows = conn.execute(_ADOPT, (self.worker_id, list(workflows), limit)).fetchall()
            adopted = [Adopted(execution(row[:-1]), cancel_requested=row[-1]) for row in rows]
            return sorted(adopted, key=lambda each: each.record.id)

        return self._call(adopt)

    def claim(self, workflow: str, ids: Sequence[str], limit: int) -> Claim:
        def claim(conn: Connection) -> Claim:
            with conn.transaction():
                # A permit lost in a database crash costs nothing: queued and running
                # executions alike are resumed. So the commit need not wait for the disk.
                conn.execute("SET LOCAL synchronous_commit = off")
                # Claims of one workflow take turns: two counting at once could both
                # see a free slot.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_CLAIM_LOCK, workflow)
                )
                mine = dict(conn.execute(_MINE, (list(ids), self.worker_id)).fetchall())
                granted = [id for id, status in mine.items() if status == "running"]
                queued = [id for id, status in mine.items() if status != "running"]
                row = conn.execute(_RUNNING, (workflow,)).fetchone()
                free = limit - (int(row[0]) if row else 0)
                if queued and free > 0:
                    started = conn.execute(_START, (queued, free, time.time())).fetchall()
                    granted.extend(str(row[0]) for row in started)
            gone = tuple(id for id in ids if id not in mine)
            return Claim(granted=tuple(sorted(granted)), gone=gone)

        return self._call(claim)

    def wait(self, timeout: float) -> list[Wakeup]:
        if not self._open:
            raise StoreClosed(f"the store on {self._where} is closed")
        try:
            listener = self._listening()
            received = list(listener.notifies(timeout=timeout, stop_after=1)) if timeout else []
            received.extend(listener.notifies(timeout=0))
        except psycopg.Error as exc:
            raise StoreError(f"could not listen on {self._where}: {exc}") from exc
        return [_wakeup(note.channel, note.payload) for note in received]

    def _listening(self) -> Connection:
        listener = self._listener
        if listener is None or listener.closed or listener.broken:
            if listener is not None:
                listener.close()
            listener = self._listener = self._connect()
            listener.execute(f"LISTEN {_ENDED}")
            listener.execute(f"LISTEN {_CANCEL}")
            listener.execute(f"LISTEN {_DEFINITIONS}")
        return listener

    def request_cancel(self, execution_id: str) -> None:
        def request(conn: Connection) -> None:
            with conn.transaction():
                conn.execute(_REQUEST_CANCEL, (execution_id,))
                conn.execute("SELECT pg_notify(%s, %s)", (_CANCEL, execution_id))

        self._call(request)

    def announce_definitions(self) -> None:
        notify = "SELECT pg_notify(%s, %s)"
        self._call(lambda conn: conn.execute(notify, (_DEFINITIONS, self.worker_id)))

    def book_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        def book(conn: Connection) -> float:
            self._sweep_rates(conn)
            params = {"scope": scope, "key": key, "i": interval}
            with conn.transaction():
                _unsynchronised(conn)
                row = conn.execute(_BOOK_RATE, params).fetchone()
            assert row is not None
            tat, now = float(row[0]), float(row[1])
            return max(0.0, tat - interval - tolerance - now)

        return self._call(book)

    def take_rate(self, scope: str, key: str, interval: float, tolerance: float) -> float:
        params = {"scope": scope, "key": key, "i": interval, "tolerance": tolerance}

        def take(conn: Connection) -> float:
            self._sweep_rates(conn)
            with conn.transaction():
                _unsynchronised(conn)
                if conn.execute(_TAKE_RATE, params).fetchone() is not None:
                    return 0.0
                row = conn.execute(_RATE_WAIT, params).fetchone()
            # (Due by the time it was read, it is due now: a retry gets through.)
            return max(float(row[0]), _MIN_RETRY) if row is not None else _MIN_RETRY

        return self._call(take)

    def _sweep_rates(self, conn: Connection) -> None:
        self._rate_calls += 1
        if self._rate_calls % RATE_SWEEP_EVERY == 0:
            conn.execute(_FORGET_IDLE_RATES, (RATE_SWEEP_ROWS,))

    def workers(self) -> list[WorkerRecord]:
        rows = self._call(lambda conn: conn.execute(_WORKERS).fetchall())
        return [
            WorkerRecord(row[0], row[1], int(row[2]), row[3], row[4], max(0.0, float(row[5])))
            for row in rows
        ]


def _unsynchronised(conn: Connection) -> None:
    """Commit the transaction without waiting for the disk: a rate's state lost in a
    database crash lets at most one more burst through, and waiting for the disk at
    every booking would delay every start behind it on this connection."""
    conn.execute("SET LOCAL synchronous_commit = off")


def _wakeup(channel: str, payload: str) -> Wakeup:
    if channel == _CANCEL:
        return Wakeup(cancel=payload)
    if channel == _DEFINITIONS:
        return Wakeup(definitions_changed_by=payload)
    return Wakeup(workflow=payload)
