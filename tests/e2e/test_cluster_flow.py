"""Flow control across three real processes on PostgreSQL: a throttle's rate and a
rate limit's are one rate for every process (their state is the database's), a debounce
runs each key's last delivery once whichever processes took its burst, and a wait
parked by one process ends, once, on an event another process accepts."""

from __future__ import annotations

import bisect
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ..nodes._receiver import Receiver, receiver
from ._cluster import Cluster, deliver, read_db, wait_all_finished, wait_for
from ._harness import StoredExecution, query

pytestmark = pytest.mark.slow

LIMIT, BURST, PERIOD = 4, 1, 1.0
THROTTLED = f"""
    key: throttled
    throttle:
      {{limit: {LIMIT}, period: {PERIOD}s, burst: {BURST}, key: "{{{{$context.data.account}}}}"}}
    concurrency: {{max: 16, queue: 1000}}
    nodes:
      - {{key: done, type: set, values: {{n: "{{{{$context.data.n}}}}"}}}}
"""

PER_ACCOUNT = 24  # six periods' worth at the steady rate

# A rate limit whose period outlasts the test: burst + 1 deliveries per key get in, and
# no more however many processes take them (three separate rates would let in three
# times as many).
RATE_LIMIT, RATE_BURST = 10, 4
LIMITED = f"""
    key: limited
    rate_limit:
      {{limit: {RATE_LIMIT}, period: 1h, burst: {RATE_BURST}, key: "{{{{$context.data.sender}}}}"}}
    nodes:
      - {{key: done, type: set, values: {{n: "{{{{$context.data.n}}}}"}}}}
"""


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    workflows = {"throttled": THROTTLED, "limited": LIMITED, "debounced": DEBOUNCED}
    nodes = Cluster(tmp_path, postgres_schema_url(request), workflows)
    yield nodes
    nodes.cleanup()


def most_in_any_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + period) - i for i, t in enumerate(times))


async def test_a_throttle_holds_across_processes(cluster: Cluster) -> None:
    await cluster.start()
    accepted: dict[str, list[str]] = defaultdict(list)

    async def send(n: int, account: str, client: httpx.AsyncClient) -> None:
        node = cluster.nodes[n % len(cluster.nodes)]  # spread as a load balancer would
        answer = await deliver(
            cluster,
            client,
            "/api/webhooks/throttled",
            f"{account}-{n}",
            {"account": account, "n": n},
            prefer=node,
        )
        accepted[account].append(answer.json()["execution_id"])

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for n in range(PER_ACCOUNT):
            for account in ("a", "b"):
                nursery.start_soon(send, n, account, client)
    await wait_all_finished(cluster.db_url, timeout=60)
    state = read_db(cluster.db_url)
    for account, ids in accepted.items():
        runs = [state.executions[id] for id in ids]
        assert {run.status for run in runs} == {"succeeded"}
        assert len({run.owner for run in runs}) >= 2  # processes shared the starts
        starts = [run.started_at for run in runs if run.started_at is not None]
        # Starts are recorded a moment after their booked time (the permit's round
        # trip, longer on a loaded machine): a window a little shorter absorbs that.
        assert most_in_any_window(starts, PERIOD - 0.25) <= LIMIT + BURST, account
        # And the rate is one rate, not one per process: the run took its time.
        span = max(starts) - min(starts)
        assert span >= (PER_ACCOUNT - BURST - 1) * PERIOD / LIMIT - 0.2, account


async def test_a_rate_limit_holds_across_processes(cluster: Cluster) -> None:
    await cluster.start()
    answers: dict[str, list[httpx.Response]] = defaultdict(list)

    async def send(n: int, sender: str, client: httpx.AsyncClient) -> None:
        node = cluster.nodes[n % len(cluster.nodes)]
        answer = await client.post(
            f"{node.url}/api/webhooks/limited", json={"sender": sender, "n": n}
        )
        answers[sender].append(answer)

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for n in range(30):
            for sender in ("a", "b"):
                nursery.start_soon(send, n, sender, client)
    interval = 3600 / RATE_LIMIT
    for sender, got in answers.items():
        accepted = [answer for answer in got if answer.status_code == 202]
        refused = [answer for answer in got if answer.status_code != 202]
        # Of one key's 30, burst + 1 got in over all three processes; none too many.
        assert len(accepted) == RATE_BURST + 1, sender
        assert {answer.status_code for answer in refused} == {429}
        # Retry-After: when the next one is due, from the rate's stored state.
        for answer in refused:
            assert interval - 5 <= int(answer.headers["retry-after"]) <= interval + 1
    await wait_all_finished(cluster.db_url, timeout=30)
    state = read_db(cluster.db_url)
    assert sorted(d.status for d in state.deliveries if d.verdict == "rejected") == [429] * 50
    assert len(state.executions) == 2 * (RATE_BURST + 1)


# A period longer than the burst takes: every delivery is stored before a window closes.
DEBOUNCED = """
    key: debounced
    debounce: {period: 3s, key: "{{$context.data.record}}"}
    concurrency: {max: 16, queue: 1000}
    nodes:
      - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
"""
RECORDS, DEBOUNCED_DELIVERIES = 10, 150


async def test_a_debounce_holds_across_processes(cluster: Cluster) -> None:
    await cluster.start()
    accepted: dict[str, list[str]] = defaultdict(list)

    async def send(n: int, client: httpx.AsyncClient) -> None:
        # Round-robin: each record's deliveries reach all three processes in turn.
        node = cluster.nodes[n % len(cluster.nodes)]
        record = f"r{n % RECORDS}"
        data = {"record": record, "n": n}
        path = "/api/webhooks/debounced"
        answer = await deliver(cluster, client, path, f"debounced-{n}", data, prefer=node)
        accepted[record].append(answer.json()["execution_id"])

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for n in range(DEBOUNCED_DELIVERIES):
            nursery.start_soon(send, n, client)
    await wait_all_finished(cluster.db_url, timeout=20)
    state = read_db(cluster.db_url)
    assert sum(len(ids) for ids in accepted.values()) == DEBOUNCED_DELIVERIES
    arrived = [state.executions[id].created_at for ids in accepted.values() for id in ids]
    assert max(arrived) - min(arrived) < 3.0, "the burst outlasted the debounce period"
    for record, ids in accepted.items():
        runs = [state.executions[id] for id in ids]
        assert len({run.owner for run in runs}) == len(cluster.nodes), record
        # One execution per record, with its last delivery, whichever process took it.
        went_on = [run for run in runs if run.status != "cancelled"]
        assert [run.id for run in went_on] == [max(ids)], record
        assert went_on[0].status == "succeeded"
        assert went_on[0].output == {"n": went_on[0].context["data"]["n"]}
        for run in runs:
            if run is not went_on[0]:
                assert run.error is not None
                assert run.error.startswith("superseded by execution "), run


async def test_a_debounce_holds_across_processes_one_of_them_killed(
    cluster: Cluster, rng: random.Random
) -> None:
    cluster.rng = rng
    await cluster.start()
    kill_at = rng.randrange(DEBOUNCED_DELIVERIES // 4, DEBOUNCED_DELIVERIES // 2)
    victim = cluster.nodes[0]

    async def send(mine: list[int], client: httpx.AsyncClient) -> None:
        for n in mine:
            if n == kill_at:
                victim.kill()  # its windows' executions are queued, for another to adopt
            node = cluster.nodes[n % len(cluster.nodes)]
            data = {"record": f"r{n % RECORDS}", "n": n}
            path = "/api/webhooks/debounced"
            await deliver(cluster, client, path, f"debounced-{n}", data, prefer=node)

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for index in range(8):
            nursery.start_soon(send, list(range(index, DEBOUNCED_DELIVERIES, 8)), client)
    await wait_all_finished(cluster.db_url, timeout=20)
    runs: dict[str, list[StoredExecution]] = defaultdict(list)
    for run in read_db(cluster.db_url).executions.values():
        runs[run.context["data"]["record"]].append(run)
    # A delivery the victim stored but never answered was sent again: both are stored.
    sent = {run.sender_id for record in runs.values() for run in record}
    assert sent == {f"debounced-{n}" for n in range(DEBOUNCED_DELIVERIES)}
    assert sorted(runs) == sorted(f"r{n}" for n in range(RECORDS))
    for record, found in runs.items():
        went_on = [run for run in found if run.status != "cancelled"]
        assert [run.id for run in went_on] == [max(run.id for run in found)], record
        assert went_on[0].status == "succeeded", went_on[0]
        superseded = [run for run in found if run is not went_on[0]]
        assert all(run.error and "(debounce)" in run.error for run in superseded), record


APPROVAL = """
    key: approval
    timeout: 2h
    nodes:
      - key: answer
        type: wait
        event: reactions
        match: "{{{{$context.data.ticket}}}}"
        timeout: 1h
        then:
          - key: approved
            type: http
            method: POST
            url: "{url}/approved"
            json: {{ticket: "{{{{$context.data.ticket}}}}", by: "{{{{$nodes.answer.data.by}}}}"}}
"""
REACTIONS = """
    key: reactions
    trigger: {type: webhook, path: reactions, correlate: "{{$context.data.ticket}}"}
    nodes: [{key: seen, type: set, values: {ok: true}}]
"""
TICKETS = 12


@pytest.fixture
def calls() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


@pytest.fixture
def waiting_cluster(
    request: pytest.FixtureRequest, tmp_path: Path, calls: Receiver
) -> Iterator[Cluster]:
    workflows = {"approval": APPROVAL.format(url=calls.url("")), "reactions": REACTIONS}
    server = 'http_node: {allow_hosts: ["127.0.0.1"]}\n'
    nodes = Cluster(tmp_path, postgres_schema_url(request), workflows, server=server)
    yield nodes
    nodes.cleanup()


async def test_an_event_accepted_by_one_process_ends_a_wait_parked_by_another(
    waiting_cluster: Cluster, calls: Receiver
) -> None:
    cluster = waiting_cluster
    await cluster.start()
    parker, *others = cluster.nodes
    executions: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(TICKETS):
            ticket = f"T-{n}"
            answer = await client.post(
                f"{parker.url}/api/webhooks/approval", json={"ticket": ticket}
            )
            assert answer.status_code == 202, answer.text
            executions[ticket] = answer.json()["execution_id"]
        for execution in executions.values():
            await wait_for(
                cluster.db_url,
                "SELECT 1 FROM executions WHERE id = %s AND status = 'waiting'",
                (execution,),
                timeout=10,
            )

        async def react(ticket: str, node: int) -> None:
            data = {"ticket": ticket, "by": others[node].name}
            path = "/api/webhooks/reactions"
            await deliver(cluster, client, path, f"{ticket}-{node}", data, prefer=others[node])

        # Each event at once to both other processes: one of them ends the wait.
        async with trio.open_nursery() as nursery:
            for ticket in executions:
                for node in range(len(others)):
                    nursery.start_soon(react, ticket, node)
        await wait_for(
            cluster.db_url,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM executions WHERE id = ANY(%s) "
            "AND status NOT IN ('succeeded', 'failed', 'cancelled'))",
            (list(executions.values()),),
            timeout=30,
        )
        unmatched = 0.0
        for node in others:
            metrics = (await client.get(f"{node.url}/metrics")).text
            found = re.search(r"^hookline_events_unmatched_total (\S+)$", metrics, re.MULTILINE)
            assert found is not None, metrics
            unmatched += float(found.group(1))
    # Of each pair of events, one ended the wait and the other found none.
    assert unmatched == TICKETS
    state = read_db(cluster.db_url)
    by_ticket = {r.json()["ticket"]: r.json()["by"] for r in calls.requests}
    assert len(calls.requests) == TICKETS
    assert sorted(by_ticket) == sorted(executions)
    for ticket, id in executions.items():
        execution = state.executions[id]
        assert execution.status == "succeeded", execution
        waits = [job for job in state.jobs_of(id) if job.node == "answer"]
        assert [(job.status, job.attempt) for job in waits] == [("succeeded", 1)], ticket
        assert waits[0].output["data"] == {"ticket": ticket, "by": by_ticket[ticket]}
        # The process that accepted the event resumed the execution, not the parker.
        assert cluster.owner(execution.owner) is not parker, execution
    assert query(cluster.db_url, "SELECT count(*) FROM waits") == [(0,)]
