"""Flow control across three real processes on PostgreSQL: a throttle's rate and a
rate limit's are one rate for every process (their state is the database's)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import postgres_schema_url
from ._cluster import Cluster, deliver, read_db, wait_all_finished

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
    workflows = {"throttled": THROTTLED, "limited": LIMITED}
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
