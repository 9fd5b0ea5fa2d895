"""``/metrics``: Prometheus text whose counters add up to what was sent."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from hookline._logging import JsonLinesFormatter
from tests.conftest import StoreFactory
from tests.http.conftest import (
    BUSY,
    FAILS,
    ORDERS,
    Server,
    assert_problem,
    gate,
    running_server,
    wait_until,
)

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_counters_add_up_to_what_was_sent_while_under_load(
    make_any_store: StoreFactory,
) -> None:
    accepted, unrouted, failed, duplicates = 60, 15, 10, 5
    async with running_server([ORDERS, FAILS], store=make_any_store()) as server:
        seen: list[float] = []

        async def send_orders(start: int) -> None:
            for n in range(start, accepted, 4):
                assert (
                    await server.client.post(f"/api/webhooks/orders/{n}", json={"n": n})
                ).status_code == 202

        async def send_others() -> None:
            for n in range(unrouted):
                assert (
                    await server.client.post(f"/api/webhooks/nowhere/{n}", json={})
                ).status_code == 404
            for _ in range(failed):
                assert (await server.client.post("/api/webhooks/fails", json={})).status_code == 500
            for _ in range(duplicates):
                answer = await server.client.post(
                    "/api/webhooks/orders/0", json={"n": 0}, headers={"idempotency-key": "same"}
                )
                assert answer.status_code == 202

        async def scrape_meanwhile(done: trio.Event) -> None:
            while not done.is_set():
                samples = await scrape(server)
                seen.append(
                    value(
                        samples, "hookline_deliveries_total", workflow="orders", verdict="accepted"
                    )
                )
                await trio.sleep(0.01)

        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scrape_meanwhile, done)
            async with trio.open_nursery() as senders:
                for start in range(4):
                    senders.start_soon(send_orders, start)
                senders.start_soon(send_others)
            done.set()

        await server.engine.store.flush()
        await wait_until(lambda: server.engine.pending() == 0)
        await server.engine.store.flush()
        samples = await scrape(server)

    # Scraped during the load, the counter only grew.
    assert len(seen) >= 2
    assert seen == sorted(seen)
    # The first of the same-key requests was accepted, the rest replayed.
    assert (
        value(samples, "hookline_deliveries_total", workflow="orders", verdict="accepted")
        == accepted + 1
    )
    assert (
        value(samples, "hookline_deliveries_total", workflow="orders", verdict="duplicate")
        == duplicates - 1
    )
    assert value(samples, "hookline_deliveries_total", workflow="", verdict="rejected") == unrouted
    assert (
        value(samples, "hookline_deliveries_total", workflow="fails", verdict="accepted") == failed
    )
    finished = "hookline_executions_finished_total"
    assert value(samples, finished, workflow="orders", status="succeeded") == accepted + 1
    assert value(samples, finished, workflow="fails", status="failed") == failed
    jobs = "hookline_job_duration_seconds_count"
    assert value(samples, jobs, workflow="orders", type="set", status="succeeded") == accepted + 1
    assert value(samples, jobs, workflow="fails", type="end", status="succeeded") == failed
    durations = "hookline_execution_duration_seconds_count"
    assert value(samples, durations, workflow="fails", status="failed") == failed
    # Every write went through a committed batch that was measured.
    batched = value(samples, "hookline_store_batch_size_sum")
    assert value(samples, "hookline_store_commit_seconds_count") == value(
        samples, "hookline_store_batch_size_count"
    )
    assert 0 < batched <= value(samples, "hookline_store_ops_total")
    assert value(samples, "hookline_pending") == 0


async def test_queue_depth_and_in_flight_are_gauges_of_now(make_store: StoreFactory) -> None:
    async with running_server([BUSY], store=make_store()) as server:
        await server.client.post("/api/webhooks/busy", json={})
        await gate("busy").entered.wait()
        await server.client.post("/api/webhooks/busy", json={})
        held = await scrape(server)
        gate("busy").open()
        await wait_until(lambda: server.engine.pending() == 0)
        after = await scrape(server)

    assert value(held, "hookline_executions_running", workflow="busy") == 1
    assert value(held, "hookline_workflow_queue_depth", workflow="busy") == 1
    assert value(held, "hookline_workflow_queue_capacity", workflow="busy") == 1
    assert value(held, "hookline_node_in_flight", workflow="busy", node="wait") == 1
    assert value(held, "hookline_pending") == 2
    assert value(after, "hookline_executions_running", workflow="busy") == 0
    assert (
        value(after, "hookline_actor_restarts_total", supervisor="workflow:busy", actor="node:wait")
        == 0
    )
    assert value(after, "hookline_accepting") == 1


async def test_metrics_are_guarded_like_the_admin_api(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], admin_keys=["k1"], store=make_store()) as server:
        refused = await server.client.get("/metrics")
        allowed = await server.client.get("/metrics", headers={"authorization": "Bearer k1"})
    assert_problem(refused, 401)
    assert allowed.status_code == 200


async def test_one_log_line_per_delivery_and_per_execution_end(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("hookline.delivery", "hookline.execution"):
        caplog.set_level(logging.INFO, logger=name)
    answer = await server.client.post(
        "/api/webhooks/fails", json={"n": 1}, headers={"authorization": "Bearer s3cret"}
    )
    await server.engine.store.flush()

    lines: dict[str, list[dict[str, object]]] = defaultdict(list)
    for record in caplog.records:
        if record.name in ("hookline.delivery", "hookline.execution"):
            lines[record.name].append(record.fields)  # type: ignore[attr-defined]
    (delivery,) = lines["hookline.delivery"]
    (ended,) = lines["hookline.execution"]
    execution_id = answer.json()["execution_id"]
    assert delivery["execution_id"] == ended["execution_id"] == execution_id
    assert ended["delivery_id"] == delivery["delivery_id"]
    assert ended["status"] == "failed"
    assert delivery["verdict"] == "accepted"
    assert "s3cret" not in caplog.text


async def test_json_lines_carry_the_linking_ids(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("hookline.delivery", "hookline.execution"):
        caplog.set_level(logging.INFO, logger=name)
    await server.client.post("/api/webhooks/steps", json={"n": 1})
    await server.engine.store.flush()

    formatter = JsonLinesFormatter()
    lines = [
        formatter.format(r)
        for r in caplog.records
        if r.name in ("hookline.delivery", "hookline.execution")
    ]

    documents = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    assert [d["event"] for d in documents] == ["delivery", "execution_end"]
    delivery, ended = documents
    assert delivery["logger"] == "hookline.delivery"
    assert delivery["level"] == "info"
    assert delivery["execution_id"] == ended["execution_id"]
    assert ended["delivery_id"] == delivery["delivery_id"]
    assert ended["duration_ms"] >= 0


async def test_cancelled_and_timed_out_executions_are_counted_apart_from_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from hookline import NodeCall, load_workflow_text, open_engine
    from hookline.http._metrics import engine_metrics

    async def nap(call: NodeCall) -> object:
        await trio.sleep(1.5)
        return None

    text = """
    key: naps
    timeout: 2s
    nodes:
      - {key: first, type: nap}
      - {key: second, type: nap}
    """
    workflow = load_workflow_text(text, source="naps.yaml", nodes={"nap": nap})
    async with open_engine([workflow], nodes={"nap": nap}) as engine:
        metrics = engine_metrics(engine)
        timed_out = await engine.submit("naps")
        cancelled = await engine.submit("naps")
        await trio.sleep(0.5)
        await engine.cancel(cancelled.execution_id)
        for admission in (timed_out, cancelled):
            assert admission.handle is not None
            await admission.handle.wait_finished()
        await engine.store.flush()
        samples = parse(metrics.render().decode())
    finished = "hookline_executions_finished_total"
    assert value(samples, finished, workflow="naps", status="timed_out") == 1
    assert value(samples, finished, workflow="naps", status="cancelled") == 1
    assert value(samples, finished, workflow="naps", status="failed") == 0
