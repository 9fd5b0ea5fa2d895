"""The PostgreSQL coordinator: workers and heartbeats, adoption of dead workers'
executions, start permits under concurrency.max and order keys, and wake-ups.

Each test opens several backends on one schema, one per simulated process; a worker is
made dead by moving its heartbeat into the past, as a process that stopped would leave
it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from hookline.errors import StoreClosed
from hookline.store._ops import AcceptDelivery, RequeueExecution, UpdateExecution
from hookline.store._postgres import PostgresBackend
from hookline.store._postgres_cluster import RATE_SWEEP_EVERY

from ..conftest import postgres_schema_url
from .conftest import delivery, execution

Opener = Callable[[], PostgresBackend]


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return postgres_schema_url(request)


@pytest.fixture
def open_backend(url: str) -> Iterator[Opener]:
    """Opens backends (processes) on one schema; closes them at the end."""
    opened: list[PostgresBackend] = []

    def make() -> PostgresBackend:
        backend = PostgresBackend(url, heartbeat=0.1, lease=1.0)
        backend.open()
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


def accept(backend: PostgresBackend, workflow: str = "orders", order_key: str | None = None) -> str:
    """Accept one delivery through ``backend``'s writer (so it owns the execution)."""
    record = execution(workflow=workflow, order_key=order_key, delivery_id=None)
    [result] = backend.apply([AcceptDelivery(delivery(workflow=workflow), record)])
    assert result is None
    return record.id


def kill(url: str, backend: PostgresBackend) -> None:
    """Make ``backend``'s worker look dead: its last heartbeat is long past."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE workers SET heartbeat_at = heartbeat_at - 3600 WHERE id = %s",
            (backend.worker_id,),
        )


def owner(url: str, execution_id: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT owner FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def test_an_accepted_execution_belongs_to_the_accepting_worker(
    open_backend: Opener, url: str
) -> None:
    a, b = open_backend(), open_backend()
    assert a.worker_id != b.worker_id
    assert owner(url, accept(a)) == a.worker_id
    assert {w.id for w in a.coordinator.workers()} == {a.worker_id, b.worker_id}


def test_live_workers_keep_their_executions(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    accept(a)
    assert a.coordinator.heartbeat()
    assert b.coordinator.adopt(["orders"], lease=1.0, limit=10) == []


def test_a_dead_workers_executions_are_adopted_once_and_it_is_fenced(
    open_backend: Opener, url: str
) -> None:
    a, b, c = open_backend(), open_backend(), open_backend()
    ids = [accept(a) for _ in range(5)]
    kill(url, a)
    adopted_by_b = b.coordinator.adopt(["orders"], lease=1.0, limit=3)
    adopted_by_c = c.coordinator.adopt(["orders"], lease=1.0, limit=10)
    assert [r.record.id for r in adopted_by_b] == ids[:3]  # oldest first
    assert [r.record.id for r in adopted_by_c] == ids[3:]
    assert {owner(url, id) for id in ids[:3]} == {b.worker_id}
    # The dead worker's row is gone: if it was only paused, it learns it lost its work.
    assert not a.coordinator.heartbeat()
    # And it can no longer write what its executions' new owners record.
    [refused] = a.apply([UpdateExecution(ids[0], "succeeded", finished_at=1.0)])
    assert isinstance(refused, Exception)
    assert "another process" in str(refused)


def test_concurrent_sweeps_never_adopt_the_same_execution(open_backend: Opener, url: str) -> None:
    dead = open_backend()
    ids = {accept(dead) for _ in range(60)}
    kill(url, dead)
    sweepers = [open_backend() for _ in range(3)]
    taken: list[list[str]] = [[] for _ in sweepers]

    def sweep(index: int) -> None:
        while True:
            records = sweepers[index].coordinator.adopt(["orders"], lease=1.0, limit=7)
            if not records:
                return
            taken[index].extend(r.record.id for r in records)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    everything = [id for part in taken for id in part]
    assert sorted(everything) == sorted(ids)  # each exactly once


def test_adoption_is_limited_to_the_workflows_asked_for(open_backend: Opener, url: str) -> None:
    a, b = open_backend(), open_backend()
    mine = accept(a, workflow="orders")
    accept(a, workflow="elsewhere")
    kill(url, a)
    assert [r.record.id for r in b.coordinator.adopt(["orders"], lease=1.0, limit=10)] == [mine]


def test_claims_hold_concurrency_max_across_workers(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    on_a = [accept(a) for _ in range(3)]
    on_b = [accept(b) for _ in range(3)]
    first = a.coordinator.claim("orders", on_a, limit=2)
    assert first.granted == tuple(on_a[:2])
    assert b.coordinator.claim("orders", on_b, limit=2).granted == ()
    a.apply([UpdateExecution(on_a[0], "succeeded", finished_at=2.0)])
    assert b.coordinator.claim("orders", on_b, limit=2).granted == (on_b[0],)
    # A running execution asked about again keeps its permit (an adopted one resumes).
    again = a.coordinator.claim("orders", on_a, limit=2)
    assert again.granted == (on_a[1],)


def test_claims_run_an_order_key_one_at_a_time_in_arrival_order(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    first = accept(a, order_key="device-1")
    second = accept(b, order_key="device-1")
    other = accept(b, order_key="device-2")
    # The later one waits for the earlier, whichever process asks first.
    assert b.coordinator.claim("orders", [second, other], limit=10).granted == (other,)
    assert a.coordinator.claim("orders", [first], limit=10).granted == (first,)
    assert b.coordinator.claim("orders", [second], limit=10).granted == ()
    a.apply([UpdateExecution(first, "failed", finished_at=2.0, error="boom")])
    assert b.coordinator.claim("orders", [second], limit=10).granted == (second,)


def test_a_throttled_execution_is_claimed_and_a_waiting_one_holds_no_slot(
    open_backend: Opener, url: str
) -> None:
    a, b = open_backend(), open_backend()
    parked, throttled = accept(a), accept(b)
    assert a.coordinator.claim("orders", [parked], limit=1).granted == (parked,)
    a.apply([UpdateExecution(parked, "waiting")])
    b.apply([UpdateExecution(throttled, "throttled")])
    # The waiting one left its slot (a wake-up says so); the throttled one takes it.
    assert [w.workflow for w in b.coordinator.wait(5)] == ["orders"]
    assert b.coordinator.claim("orders", [throttled], limit=1).granted == (throttled,)
    # A waiting execution is nobody's to adopt: it goes on when its event comes.
    kill(url, a)
    assert b.coordinator.adopt(["orders"], lease=1.0, limit=10) == []


def test_a_rate_is_taken_by_every_worker_as_one_and_a_refusal_books_nothing(
    open_backend: Opener,
) -> None:
    a, b = open_backend(), open_backend()

    def take(backend: PostgresBackend, key: str = "k", interval: float = 60.0) -> float:
        # One a minute, two more at once (the tolerance of a burst of 2).
        return backend.coordinator.take_rate("rate_limit:orders", key, interval, 2 * interval)

    assert [take(a), take(b), take(a)] == [0.0, 0.0, 0.0]
    refused = [take(b), take(a), take(b)]
    # The next is due one interval after the first: refusals moved nothing on.
    assert all(59.0 < wait <= 60.0 for wait in refused), refused
    assert take(b, key="other") == 0.0  # each key its own rate
    # Once the wait is over, a delivery gets through again.
    assert take(a, key="quick", interval=0.2) == 0.0
    for _ in range(2):
        assert take(b, key="quick", interval=0.2) == 0.0
    wait = take(a, key="quick", interval=0.2)
    assert 0.0 < wait <= 0.2
    time.sleep(wait)
    assert take(b, key="quick", interval=0.2) == 0.0


def test_idle_rate_keys_are_forgotten(open_backend: Opener, url: str) -> None:
    a = open_backend()
    for n in range(RATE_SWEEP_EVERY - 1):
        a.coordinator.take_rate("rate_limit:orders", f"client-{n}", 0.001, 0.0)
    time.sleep(0.01)  # every one of those keys is idle now
    a.coordinator.take_rate("rate_limit:orders", "last", 60.0, 0.0)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM flow_rates").fetchone()
    assert row == (1,)


def test_a_claim_reports_executions_no_longer_this_workers(open_backend: Opener, url: str) -> None:
    a, b = open_backend(), open_backend()
    id = accept(a)
    kill(url, a)
    b.coordinator.adopt(["orders"], lease=1.0, limit=10)
    claim = a.coordinator.claim("orders", [id], limit=10)
    assert (claim.granted, claim.gone) == ((), (id,))


def test_an_ending_execution_and_a_cancel_request_wake_the_others(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    id = accept(a)
    assert a.coordinator.claim("orders", [id], limit=1).granted == (id,)
    assert b.coordinator.wait(0) == []
    a.apply([UpdateExecution(id, "succeeded", finished_at=2.0)])
    wakeups = b.coordinator.wait(5)
    assert [w.workflow for w in wakeups] == ["orders"]
    b.coordinator.request_cancel(id)
    # a hears of its own execution's end too (wake-ups go to every worker), and that
    # note may end a wait before the cancel arrives: keep waiting, as the listen loop does.
    cancels: list[str] = []
    deadline = time.monotonic() + 5
    while not cancels and time.monotonic() < deadline:
        cancels += [w.cancel for w in a.coordinator.wait(1) if w.cancel is not None]
    assert cancels == [id]


def test_a_cancel_sent_while_the_owner_is_dead_reaches_its_adopter(
    open_backend: Opener, url: str
) -> None:
    a, b = open_backend(), open_backend()
    doomed, spared = accept(a), accept(a)
    kill(url, a)  # its lease has not run out yet for b, or it has: the same either way
    b.coordinator.request_cancel(doomed)
    adopted = b.coordinator.adopt(["orders"], lease=1.0, limit=10)
    assert {(r.record.id, r.cancel_requested) for r in adopted} == {
        (doomed, True),
        (spared, False),
    }


def test_an_owner_finds_the_cancels_requested_of_its_executions(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    first, second, ended, others = accept(a), accept(a), accept(a), accept(b)
    for id in (second, first, ended, others):
        b.coordinator.request_cancel(id)
    a.apply([UpdateExecution(ended, "cancelled", finished_at=2.0, error="cancelled")])
    assert a.coordinator.cancels_requested() == [first, second]  # oldest first
    assert b.coordinator.cancels_requested() == [others]


def test_a_retry_starts_without_the_cancel_request_and_a_requeue_keeps_it(
    open_backend: Opener, url: str
) -> None:
    a, b = open_backend(), open_backend()
    retried, requeued = accept(a), accept(a)
    for id in (retried, requeued):
        a.coordinator.request_cancel(id)
    a.apply([UpdateExecution(retried, "cancelled", finished_at=2.0, error="cancelled")])
    a.apply([RequeueExecution(retried), RequeueExecution(requeued, statuses=("queued",))])
    a.close()
    adopted = b.coordinator.adopt(["orders"], lease=1.0, limit=10)
    assert {(r.record.id, r.cancel_requested) for r in adopted} == {
        (retried, False),
        (requeued, True),
    }


def test_a_change_of_definitions_is_announced_to_every_worker(open_backend: Opener) -> None:
    a, b = open_backend(), open_backend()
    a.coordinator.announce_definitions()
    heard: list[str | None] = []
    deadline = time.monotonic() + 5
    while not heard and time.monotonic() < deadline:
        heard += [w.definitions_changed_by for w in b.coordinator.wait(1)]
    assert heard == [a.worker_id]


def test_a_closed_worker_leaves_and_its_executions_are_adopted_at_once(
    open_backend: Opener,
) -> None:
    a, b = open_backend(), open_backend()
    id = accept(a)
    a.close()
    assert a.worker_id not in {w.id for w in b.coordinator.workers()}
    assert [r.record.id for r in b.coordinator.adopt(["orders"], lease=1.0, limit=10)] == [id]
    with pytest.raises(StoreClosed):
        a.coordinator.heartbeat()


def test_heartbeat_must_be_shorter_than_the_lease(url: str) -> None:
    with pytest.raises(ValueError, match="below lease"):
        PostgresBackend(url, heartbeat=5, lease=5)
