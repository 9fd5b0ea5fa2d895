"""The webhook route against a real server: answers of DESIGN.md section 5."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from tests.conftest import StoreFactory
from tests.http.conftest import STANDARD, Server, assert_problem, gate, running_server, wait_until


async def execution(server: Server, execution_id: str) -> dict[str, object]:
    response = await server.client.get(f"/api/executions/{execution_id}")
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


async def wait_status(server: Server, execution_id: str, status: str) -> None:
    with trio.fail_after(3):
        while (await execution(server, execution_id))["status"] != status:
            await trio.sleep(0.01)


# -- async ------------------------------------------------------------------------------


async def test_async_delivery_is_answered_202_after_its_records_commit(
    durable_server: Server,
) -> None:
    server = durable_server
    response = await server.client.post("/api/webhooks/orders/7", json={"n": 3})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    execution_id = body["execution_id"]
    assert response.headers["location"] == f"/api/executions/{execution_id}"
    # Read straight from the database, without flushing: the answer came after commit.
    stored = await server.engine.store.get_execution(execution_id)
    assert stored is not None
    assert stored.workflow == "orders"
    assert stored.context["data"] == {"n": 3}
    assert stored.delivery_id is not None
    delivery = await server.engine.store.get_delivery(stored.delivery_id)
    assert delivery is not None
    assert delivery.verdict == "accepted"
    assert delivery.status == 202
    assert delivery.execution_id == execution_id
    assert delivery.body == b'{"n":3}'
    await wait_status(server, execution_id, "succeeded")


async def test_async_configured_response_is_rendered_from_context_and_execution(
    server: Server,
) -> None:
    response = await server.client.post("/api/webhooks/acked", json={"order": "A-17"})

    assert response.status_code == 200
    assert response.headers["x-accepted-by"] == "hookline"
    assert response.headers["x-order"] == "A-17"
    body = response.json()
    assert body["received"] is True
    assert body["order"] == "A-17"
    await wait_status(server, body["execution"], "succeeded")


async def test_chunked_body_within_the_limit_is_accepted(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"n":'
        yield b" 5}"

    response = await server.client.post(
        "/api/webhooks/orders/1", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202
    stored = await server.engine.store.get_execution(response.json()["execution_id"])
    assert stored is not None
    assert stored.context["data"] == {"n": 5}


# -- sync -------------------------------------------------------------------------------


async def test_sync_finished_answers_200_with_the_output(server: Server) -> None:
    response = await server.client.post("/api/webhooks/steps", json={"n": 50})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["output"] == {"size": "large"}
    record = await execution(server, body["execution_id"])
    assert record["status"] == "succeeded"


async def test_sync_response_node_sets_status_headers_and_body(server: Server) -> None:
    response = await server.client.post(
        "/api/webhooks/reply/item-9?page=4", json={"code": 201, "user": {"name": "Ada"}}
    )

    assert response.status_code == 201
    assert response.headers["x-item"] == "item-9"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "Ada", "page": "4"}
    # The answer came while the workflow was still held after the response node.
    page = (await server.client.get("/api/executions?workflow=reply")).json()
    (running,) = page["executions"]
    assert running["status"] == "running"
    gate("reply").open()
    await wait_status(server, running["id"], "succeeded")


async def test_sync_failed_answers_500_problem_with_the_execution_id(server: Server) -> None:
    response = await server.client.post("/api/webhooks/fails", json={})

    problem = assert_problem(response, 500)
    record = await execution(server, problem["execution_id"])
    assert record["status"] == "failed"
    assert record["workflow"] == "fails"


async def test_sync_past_its_timeout_answers_202_and_goes_on(server: Server) -> None:
    response = await server.client.post("/api/webhooks/slow", json={})

    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    assert response.headers["location"] == f"/api/executions/{execution_id}"
    assert (await execution(server, execution_id))["status"] == "running"
    gate("slow").open()
    await wait_status(server, execution_id, "succeeded")


# -- idempotency ------------------------------------------------------------------------


async def test_duplicate_after_the_first_finished_gets_the_first_answer_again(
    server: Server,
) -> None:
    headers = {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    first = await server.client.post("/api/webhooks/steps", json={"n": 1}, headers=headers)
    assert first.status_code == 200
    # The sync answer is stored for replay by a posted write; a real retry comes later.
    await server.engine.store.flush()

    again = await server.client.post("/api/webhooks/steps", json={"n": 1}, headers=headers)

    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    page = (await server.client.get("/api/executions?workflow=steps")).json()
    assert len(page["executions"]) == 1


async def test_duplicate_while_the_first_is_running_is_409(server: Server) -> None:
    headers = {"idempotency-key": '"order-1"'}
    answers = []

    async def first() -> None:
        answers.append(await server.client.post("/api/webhooks/held", json={}, headers=headers))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await gate("held").entered.wait()
        duplicate = await server.client.post("/api/webhooks/held", json={}, headers=headers)
        problem = assert_problem(duplicate, 409)
        assert "retry-after" in duplicate.headers
        assert "still being processed" in problem["detail"]
        gate("held").open()
    assert answers[0].status_code == 200


async def test_same_key_with_another_body_is_422(server: Server) -> None:
    headers = {"idempotency-key": "k-1"}
    first = await server.client.post("/api/webhooks/orders/1", json={"n": 1}, headers=headers)
    assert first.status_code == 202

    other = await server.client.post("/api/webhooks/orders/1", json={"n": 2}, headers=headers)

    assert_problem(other, 422)


async def test_duplicate_is_replayed_after_a_restart(make_durable_store: StoreFactory) -> None:
    headers = {"x-github-delivery": "d-1"}
    async with running_server(STANDARD, store=make_durable_store()) as first_run:
        first = await first_run.client.post("/api/webhooks/steps", json={"n": 1}, headers=headers)
    async with running_server(STANDARD, store=make_durable_store()) as second_run:
        again = await second_run.client.post("/api/webhooks/steps", json={"n": 1}, headers=headers)
    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


# -- refusals ---------------------------------------------------------------------------


async def test_unknown_webhook_path_is_404(server: Server) -> None:
    assert_problem(await server.client.post("/api/webhooks/nobody/here", json={}), 404)


async def test_method_not_listed_is_405_with_allow(server: Server) -> None:
    response = await server.client.get("/api/webhooks/orders/1")

    assert_problem(response, 405)
    assert response.headers["allow"] == "POST, PUT"


async def test_disabled_workflow_is_503_with_retry_after(server: Server) -> None:
    response = await server.client.post("/api/webhooks/paused", json={})

    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1


async def test_declared_length_over_max_body_is_413(server: Server) -> None:
    response = await server.client.post("/api/webhooks/orders/1", content=b"x" * 2048)

    problem = assert_problem(response, 413)
    assert "1024" in problem["detail"]


async def test_chunked_body_past_max_body_is_413(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    response = await server.client.post("/api/webhooks/orders/1", content=chunks())

    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_malformed_json_with_a_json_content_type_is_400(server: Server) -> None:
    for content_type in ("application/json", "application/vnd.api+json"):
        response = await server.client.post(
            "/api/webhooks/orders/1", content=b'{"n": ', headers={"content-type": content_type}
        )
        assert_problem(response, 400)
    # The same bytes as text are not JSON's business.
    text = await server.client.post(
        "/api/webhooks/orders/1", content=b'{"n": ', headers={"content-type": "text/plain"}
    )
    assert text.status_code == 202


async def test_full_workflow_queue_is_429_with_retry_after(server: Server) -> None:
    accepted: list[str] = []
    refused = None
    for _ in range(6):
        response = await server.client.post("/api/webhooks/busy", json={})
        if response.status_code != 202:
            refused = response
            break
        accepted.append(response.json()["execution_id"])
        if len(accepted) == 1:
            await gate("busy").entered.wait()

    assert refused is not None
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    # One running, one waiting for a runner, one in the queue of size 1: no more.
    assert 2 <= len(accepted) <= 3
    gate("busy").open()
    for execution_id in accepted:
        await wait_status(server, execution_id, "succeeded")


async def test_engine_shutting_down_is_503_with_retry_after(
    make_durable_store: StoreFactory,
) -> None:
    async with running_server(STANDARD, store=make_durable_store()) as server:
        held = await server.client.post("/api/webhooks/busy", json={})
        assert held.status_code == 202
        await gate("busy").entered.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.engine.aclose)
            await wait_until(lambda: not server.engine.statistics().accepting)
            draining = await server.client.post("/api/webhooks/orders/1", json={"n": 1})
            ready = await server.client.get("/readyz")
            # The running execution may finish before the deadline.
            gate("busy").open()
        stopped = await server.client.post("/api/webhooks/orders/1", json={"n": 2})

    for response in (draining, stopped):
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1
    assert_problem(ready, 503)
    async with make_durable_store.running() as reopened:
        record = await reopened.get_execution(held.json()["execution_id"])
        rejected = (await reopened.list_deliveries(verdict="rejected", limit=10)).items
    assert record is not None
    assert record.status == "succeeded"
    # Refused while draining: recorded; refused after the store stopped: answered anyway.
    assert [(d.status, d.workflow) for d in rejected] == [(503, "orders")]
