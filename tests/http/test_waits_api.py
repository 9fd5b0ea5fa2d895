"""Operators end waits by hand: POST /api/executions/<id>/release and /time-out."""

from __future__ import annotations

from tests.http.conftest import assert_problem, running_server, wait_until

APPROVAL = """
key: approval
trigger: {type: webhook, path: approval}
timeout: 2d
nodes:
  - key: answer
    type: wait
    event: reactions
    match: "{{$context.data.ticket}}"
    timeout: 1d
    then:
      - {key: approved, type: set, values: {note: "{{$nodes.answer.data.note}}"}}
    timed_out:
      - {key: expired, type: set, values: {expired: true}}
"""

REACTIONS = """
key: reactions
trigger: {type: webhook, path: reactions, correlate: "{{$context.data.ticket}}"}
nodes: [{key: seen, type: set, values: {ok: true}}]
"""


async def test_an_operator_releases_one_wait_and_times_out_another() -> None:
    async with running_server([APPROVAL, REACTIONS]) as server:
        client = server.client
        ids = []
        for ticket in ("T-1", "T-2"):
            answer = await client.post("/api/webhooks/approval", json={"ticket": ticket})
            ids.append(answer.json()["execution_id"])
        await wait_until(lambda: server.engine.events.statistics().waiting == 2)

        released = await client.post(f"/api/executions/{ids[0]}/release", json={"note": "ok"})
        expired = await client.post(f"/api/executions/{ids[1]}/time-out")
        assert released.status_code == 202, released.text
        assert expired.status_code == 202, expired.text
        await wait_until(lambda: all(server.engine.handle(i) is None for i in ids))

        first = (await client.get(f"/api/executions/{ids[0]}")).json()
        second = (await client.get(f"/api/executions/{ids[1]}")).json()
        assert first["output"] == {"note": "ok"}
        assert second["output"] == {"expired": True}
        # Nothing waits any more: both actions are refused now.
        assert_problem(await client.post(f"/api/executions/{ids[0]}/release"), 409)
        assert_problem(await client.post(f"/api/executions/{ids[1]}/time-out"), 409)
        bad = await client.post(
            f"/api/executions/{ids[0]}/release",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert_problem(bad, 400)


THROTTLED = """
key: throttled
trigger: {type: webhook, path: throttled}
throttle: {limit: 1, period: 1h}
nodes: [{key: done, type: set, values: {ok: true}}]
"""


async def test_the_workflows_page_counts_waiting_throttled_and_debouncing() -> None:
    async with running_server([APPROVAL, REACTIONS, THROTTLED]) as server:
        client = server.client
        await client.post("/api/webhooks/approval", json={"ticket": "T-1"})
        for n in range(3):
            await client.post("/api/webhooks/throttled", json={"n": n})
        await wait_until(lambda: server.engine.events.statistics().waiting == 1)
        await wait_until(
            lambda: getattr(server.engine.workflow_statistics("throttled"), "throttled", 0) == 2
        )
        page = (await client.get("/ui/")).text
        assert "1 executions wait for an event" in page
        row = page[page.index('data-workflow="throttled"') :]
        assert "2 throttled, 0 debouncing" in row[: row.index("</tr>")]
        metrics = (await client.get("/metrics")).text
        assert 'hookline_executions_throttled{workflow="throttled"} 2.0' in metrics
        assert "hookline_events_waiting 1.0" in metrics
