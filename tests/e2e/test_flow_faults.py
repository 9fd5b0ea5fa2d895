"""Flow control with a real server, a real store and SIGKILL: a debounce window in
progress survives the process (nothing lost, nothing run twice), and so do parked waits
(each ends once, on its event or its timeout)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ..nodes._receiver import receiver
from ._harness import (
    BACKENDS,
    Server,
    query,
    read_db,
    store_for,
    wait_all_finished,
    write_setup,
)
from .test_faults import send_until_accepted

pytestmark = pytest.mark.slow

# The burst (with a restart in it) must fit in one quiet period: then every key's
# window closes after it, once, with the key's last delivery.
DEBOUNCED = """
    key: crm
    debounce: {period: 20s, key: "{{$context.data.record}}"}
    concurrency: {max: 16, queue: 5000}
    nodes:
      - key: sync
        type: set
        values: {record: "{{$context.data.record}}", n: "{{$context.data.n}}"}
"""

DELIVERIES = 1000
KEYS = 50
SENDERS = 16


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    config = write_setup(tmp_path, {"crm": DEBOUNCED}, "server: {shutdown_timeout: 5s}\n")
    process = Server(config, store_for(request, tmp_path))
    yield process
    process.cleanup()


async def test_a_burst_over_fifty_keys_with_a_sigkill_runs_each_keys_last_delivery_once(
    server: Server, rng: random.Random
) -> None:
    # (Without a kill: tests/engine/test_flow_control.py and test_debounce.py.)
    await server.start()
    plan = [(n, f"record-{rng.randrange(KEYS)}") for n in range(DELIVERIES)]
    executions: dict[int, str] = {}
    kill_at = rng.randrange(DELIVERIES // 4, DELIVERIES // 2)
    started = trio.current_time()

    async def sender(mine: list[tuple[int, str]], client: httpx.AsyncClient) -> None:
        for n, record in mine:
            if n == kill_at:
                server.kill()
                await server.start()
            answer = await send_until_accepted(
                server, client, "/api/webhooks/crm", f"d-{n}", {"record": record, "n": n}
            )
            executions[n] = answer.json()["execution_id"]

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for index in range(SENDERS):
            nursery.start_soon(sender, plan[index::SENDERS], client)
    burst = trio.current_time() - started
    await wait_all_finished(server.store, timeout=60)
    stored = read_db(server.store)
    ran = {
        n: stored.executions[execution]
        for n, execution in executions.items()
        if stored.executions[execution].status == "succeeded"
    }
    # Senders race: a key's last delivery is the one accepted last (ids sort by time).
    last: dict[str, tuple[str, int]] = {}
    for n, record in plan:
        last[record] = max(last.get(record, ("", -1)), (executions[n], n))
    # Exactly one execution per key, and it is the key's last delivery.
    assert sorted(ran) == sorted(n for _, n in last.values()), f"burst took {burst:.1f} s"
    for n, execution in ran.items():
        assert stored.jobs[execution.id][0].output == {"record": plan[n][1], "n": n}
    others = [stored.executions[e] for n, e in executions.items() if n not in ran]
    assert all(run.status == "cancelled" for run in others)
    assert all(run.error and "(debounce)" in run.error for run in others)


# Two approval workflows waiting on the same event workflow: the tickets of the first
# get their events (its timeout outlasts the test), those of the second time out (its
# deadlines fall around the restart). Each branch tells the receiver it ran.
APPROVAL = """
    key: {key}
    trigger: {{type: webhook, path: {key}}}
    timeout: 2h
    nodes:
      - key: answer
        type: wait
        event: reactions
        match: "{{{{$context.data.ticket}}}}"
        timeout: {timeout}
        then:
          - key: approved
            type: http
            method: POST
            url: "{url}/approved"
            json:
              ticket: "{{{{$context.data.ticket}}}}"
              note: "{{{{$nodes.answer.data.note}}}}"
        timed_out:
          - key: expired
            type: http
            method: POST
            url: "{url}/expired"
            json: {{ticket: "{{{{$context.data.ticket}}}}"}}
"""
REACTIONS = """
    key: reactions
    trigger: {type: webhook, path: reactions, correlate: "{{$context.data.ticket}}"}
    nodes: [{key: seen, type: set, values: {ok: true}}]
"""
WAITS = 20  # half get their event, half time out
SHORT = 8  # seconds: the timeout of the waits that get no event
FINAL = ("succeeded", "failed", "cancelled")


def unmatched_events(metrics: str) -> float:
    found = re.search(r"^hookline_events_unmatched_total (\S+)$", metrics, re.MULTILINE)
    assert found is not None, metrics
    return float(found.group(1))


async def test_waits_survive_a_sigkill_and_each_ends_once(tmp_path: Path) -> None:
    with receiver() as calls:
        workflows = {
            "approval": APPROVAL.format(key="approval", timeout="1h", url=calls.url("")),
            "approval-short": APPROVAL.format(
                key="approval-short", timeout=f"{SHORT}s", url=calls.url("")
            ),
            "reactions": REACTIONS,
        }
        config = write_setup(tmp_path, workflows, 'http_node: {allow_hosts: ["127.0.0.1"]}\n')
        server = Server(config, tmp_path / "hookline.db")
        try:
            await server.start()
            tickets = {f"T-{n}": "approval" if n % 2 else "approval-short" for n in range(WAITS)}
            executions: dict[str, str] = {}
            async with httpx.AsyncClient(timeout=10) as client:
                for ticket, workflow in tickets.items():
                    answer = await client.post(
                        f"{server.url}/api/webhooks/{workflow}", json={"ticket": ticket}
                    )
                    assert answer.status_code == 202, answer.text
                    executions[ticket] = answer.json()["execution_id"]
                for ticket, execution in executions.items():
                    shown = await until_waiting(client, f"{server.url}/api/executions/{execution}")
                    assert f"reactions ({ticket})" in str(shown.get("waiting_for")), shown

                server.kill()
                await server.start()
                evented = [t for t, workflow in tickets.items() if workflow == "approval"]
                for ticket in evented:
                    for n in range(2):  # the second finds no wait: the first ended it
                        await send_until_accepted(
                            server,
                            client,
                            "/api/webhooks/reactions",
                            f"{ticket}-{n}",
                            {"ticket": ticket, "note": f"ok {ticket}"},
                        )
                await until_all_ended(server, list(executions.values()))
                metrics = (await client.get(f"{server.url}/metrics")).text
            # Only the second of each pair matched nothing (counted since the restart).
            assert unmatched_events(metrics) == len(evented)
            stored = read_db(server.store)
        finally:
            server.cleanup()
        # Each execution ended once, taking the branch its wait's end chose.
        called = sorted((r.path, r.json()["ticket"], r.json().get("note")) for r in calls.requests)
        assert called == sorted(
            ("/approved", ticket, f"ok {ticket}")
            if workflow == "approval"
            else ("/expired", ticket, None)
            for ticket, workflow in tickets.items()
        )
        for ticket, workflow in tickets.items():
            execution = stored.executions[executions[ticket]]
            assert execution.status == "succeeded", (ticket, execution)
            # One job of the wait node, ended once (a second end would be a second attempt
            # or a second call to the receiver).
            waits = [job for job in stored.jobs_of(execution.id) if job.node == "answer"]
            assert [(job.status, job.attempt) for job in waits] == [("succeeded", 1)], ticket
            if workflow == "approval":
                assert waits[0].output["data"] == {"ticket": ticket, "note": f"ok {ticket}"}
            else:
                assert waits[0].output == {"timed_out": True}
        # No wait is left behind.
        assert query(server.store, "SELECT count(*) FROM waits") == [(0,)]


async def until_waiting(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The execution at ``url`` once it is parked (it parks a moment after its 202)."""
    with trio.fail_after(10):
        while True:
            shown: dict[str, Any] = (await client.get(url)).json()
            if shown["status"] == "waiting":
                return shown
            await trio.sleep(0.05)


async def until_all_ended(server: Server, executions: list[str]) -> None:
    """Return once every one of ``executions`` is finished (the short waits time out
    within :data:`SHORT` seconds of their start)."""
    ids = ", ".join(f"'{id}'" for id in executions)
    sql = f"SELECT count(*) FROM executions WHERE id IN ({ids}) AND status NOT IN {FINAL}"
    with trio.fail_after(SHORT + 30):
        while (await trio.to_thread.run_sync(query, server.store, sql))[0][0]:
            await trio.sleep(0.1)
