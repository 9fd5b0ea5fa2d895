"""A batched workflow over HTTP: a sync sender hears 202 + Location at once, the batch's
execution lists its deliveries (API and UI), and open batches are counted."""

from __future__ import annotations

from tests.http.conftest import running_server, wait_until

READINGS = """
key: readings
trigger: {type: webhook, path: "readings/{device}", mode: sync, sync_timeout: 30s}
batch: {size: 3, timeout: 1h, key: "{{$context.params.device}}"}
nodes: [{key: count, type: set, values: {device: "{{$context.params.device}}"}}]
"""


async def test_a_batch_answers_202_lists_its_deliveries_and_is_counted() -> None:
    async with running_server([READINGS]) as server:
        client = server.client
        answers = [
            await client.post(f"/api/webhooks/readings/{device}", json={"n": n})
            for n, device in enumerate(["a", "a", "b", "a"])
        ]
        for answer in answers:
            assert answer.status_code == 202, answer.text
            execution_id = answer.json()["execution_id"]
            assert answer.headers["location"] == f"/api/executions/{execution_id}"
        ids = [answer.json()["execution_id"] for answer in answers]
        await wait_until(lambda: server.engine.handle(ids[0]) is None)

        # Device a's batch (deliveries 0, 1, 3) ran as its first delivery's execution.
        shown = (await client.get(f"/api/executions/{ids[0]}")).json()
        assert shown["status"] == "succeeded"
        assert [entry["execution_id"] for entry in shown["batch"]] == [ids[0], ids[1], ids[3]]
        assert all(entry["delivery_id"] for entry in shown["batch"])
        member = (await client.get(f"/api/executions/{ids[1]}")).json()
        assert (member["status"], member["output"]) == ("succeeded", {"batched_into": ids[0]})
        assert "batch" not in member
        # Device b's delivery waits in its open batch: counted, and said why.
        waiting = (await client.get(f"/api/executions/{ids[2]}")).json()
        assert waiting["waiting_for"].startswith("batch: 1 of 3 deliveries")
        page = (await client.get("/ui/")).text
        row = page[page.index('data-workflow="readings"') :]
        assert "1 batching" in row[: row.index("</tr>")]
        metrics = (await client.get("/metrics")).text
        assert 'hookline_executions_batching{workflow="readings"} 1.0' in metrics

        batch_page = (await client.get(f"/ui/executions/{ids[0]}")).text
        assert 'id="batch-deliveries"' in batch_page
        assert all(f"/ui/executions/{id_}" in batch_page for id_ in (ids[1], ids[3]))
        listed = (await client.get("/ui/executions")).text
        row = listed[listed.index(f'data-execution="{ids[1]}"') :]
        assert "batched into" in row[: row.index("</tr>")]
        member_page = (await client.get(f"/ui/executions/{ids[1]}")).text
        assert 'id="execution-batched-into"' in member_page
        assert f"/ui/executions/{ids[0]}" in member_page
