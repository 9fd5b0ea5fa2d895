"""The admin API against a real server: executions, deliveries, cancel, access."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from hookline.engine._engine import open_engine
from hookline.http._app import admin_refusal, create_app, is_loopback
from hookline.http._serve import serve
from tests.conftest import StoreFactory
from tests.http.conftest import (
    STANDARD,
    Server,
    assert_problem,
    gate,
    running_server,
    wait_until,
    workflows,
)


async def test_execution_shows_its_status_and_one_job_per_node_run(server: Server) -> None:
    answer = await server.client.post("/api/webhooks/steps", json={"n": 3})
    execution_id = answer.json()["execution_id"]

    response = await server.client.get(f"/api/executions/{execution_id}")

    assert response.status_code == 200
    record = response.json()
    assert record["id"] == execution_id
    assert record["workflow"] == "steps"
    assert record["status"] == "succeeded"
    assert record["output"] == {"size": "small"}
    assert record["context"]["data"] == {"n": 3}
    # The branch not taken ('large') did not run.
    assert [(job["node"], job["type"], job["status"]) for job in record["jobs"]] == [
        ("first", "set", "succeeded"),
        ("big", "condition", "succeeded"),
        ("small", "set", "succeeded"),
    ]
    first = record["jobs"][0]
    assert first["output"] == {"n": 3}
    assert first["attempt"] == 1
    assert first["started_at"] <= first["finished_at"]


async def test_unknown_execution_is_a_404_problem(server: Server) -> None:
    assert_problem(await server.client.get("/api/executions/01NOPE"), 404)
    assert_problem(await server.client.post("/api/executions/01NOPE/cancel"), 404)


async def test_executions_are_listed_in_pages_and_filtered(server: Server) -> None:
    made = [
        (await server.client.post("/api/webhooks/steps", json={"n": n})).json() for n in range(3)
    ]
    await server.client.post("/api/webhooks/fails", json={})

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"workflow": "steps", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await server.client.get("/api/executions", params=params)).json()
        seen.extend(item["id"] for item in page["executions"])
        assert all(item["workflow"] == "steps" for item in page["executions"])
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert sorted(seen) == sorted(item["execution_id"] for item in made)

    failed = (await server.client.get("/api/executions?status=failed")).json()
    assert [item["workflow"] for item in failed["executions"]] == ["fails"]


@pytest.mark.parametrize("query", ["limit=0", "limit=many", "status=sleeping"])
async def test_bad_list_query_is_a_400_problem(server: Server, query: str) -> None:
    assert_problem(await server.client.get(f"/api/executions?{query}"), 400)


THROTTLED = """
key: throttled
trigger: {type: webhook, path: throttled}
throttle: {limit: 1, period: 1h}
nodes: [{key: done, type: set, values: {ok: true}}]
"""


async def test_throttled_executions_are_listed_by_their_status_with_what_holds_them() -> None:
    async with running_server([THROTTLED]) as server:
        client = server.client
        ids = [
            (await client.post("/api/webhooks/throttled", json={"n": n})).json()["execution_id"]
            for n in range(3)
        ]
        await wait_until(
            lambda: getattr(server.engine.workflow_statistics("throttled"), "throttled", 0) == 2
        )
        await server.engine.store.flush()

        listed = (await client.get("/api/executions?status=throttled")).json()
        assert sorted(item["id"] for item in listed["executions"]) == sorted(ids[1:])
        record = (await client.get(f"/api/executions/{ids[2]}")).json()
        assert record["status"] == "throttled"
        assert record["waiting_for"].startswith("throttle: starts in")
        assert (await client.get("/api/executions?status=waiting")).json()["executions"] == []


async def test_cancel_stops_a_running_execution(server: Server) -> None:
    accepted = await server.client.post("/api/webhooks/busy", json={})
    execution_id = accepted.json()["execution_id"]
    await gate("busy").entered.wait()

    response = await server.client.post(f"/api/executions/{execution_id}/cancel")

    assert response.status_code == 202
    with trio.fail_after(2):
        while True:
            record = (await server.client.get(f"/api/executions/{execution_id}")).json()
            if record["status"] != "running":
                break
            await trio.sleep(0.01)
    assert record["status"] == "cancelled"
    assert [job["status"] for job in record["jobs"]] == ["cancelled"]
    assert gate("busy").passed == 0
    # Finished: nothing left to cancel.
    again = await server.client.post(f"/api/executions/{execution_id}/cancel")
    assert_problem(again, 409)


async def test_every_refused_request_is_recorded_with_its_reason(server: Server) -> None:
    client = server.client
    refused = [
        await client.post("/api/webhooks/nobody", json={}),
        await client.get("/api/webhooks/orders/1"),
        await client.post("/api/webhooks/orders/2", content=b"x" * 2048),
        await client.post(
            "/api/webhooks/orders/3", content=b"{", headers={"content-type": "application/json"}
        ),
        await client.post("/api/webhooks/paused", json={}),
    ]
    accepted = await client.post("/api/webhooks/orders/4", json={"n": 1})
    await server.engine.store.flush()

    page = (await client.get("/api/deliveries?verdict=rejected")).json()

    by_path = {(d["method"], d["path"]): d for d in page["deliveries"]}
    assert len(page["deliveries"]) == len(refused)
    for response in refused:
        request = response.request
        delivery = by_path[(request.method, request.url.path)]
        assert delivery["verdict"] == "rejected"
        assert delivery["status"] == response.status_code
        assert delivery["reason"] == response.json()["detail"]
        assert delivery["remote_addr"] == "127.0.0.1"
    assert by_path[("POST", "/api/webhooks/paused")]["workflow"] == "paused"
    assert by_path[("POST", "/api/webhooks/nobody")]["workflow"] is None

    ok = (await client.get("/api/deliveries?verdict=accepted")).json()["deliveries"]
    assert [(d["status"], d["execution_id"]) for d in ok] == [
        (202, accepted.json()["execution_id"])
    ]


async def test_refused_duplicates_are_recorded_too(server: Server) -> None:
    headers = {"idempotency-key": "k-9"}
    await server.client.post("/api/webhooks/orders/1", json={"n": 1}, headers=headers)
    mismatch = await server.client.post("/api/webhooks/orders/1", json={"n": 2}, headers=headers)
    assert mismatch.status_code == 422
    await server.engine.store.flush()

    page = (await server.client.get("/api/deliveries?verdict=rejected")).json()

    assert [(d["status"], d["reason"]) for d in page["deliveries"]] == [
        (422, mismatch.json()["detail"])
    ]


async def test_a_replayed_duplicate_is_recorded_as_a_delivery(server: Server) -> None:
    headers = {"idempotency-key": "k-10"}
    first = await server.client.post("/api/webhooks/orders/1", json={"n": 1}, headers=headers)
    again = await server.client.post("/api/webhooks/orders/1", json={"n": 1}, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    await server.engine.store.flush()

    page = (await server.client.get("/api/deliveries?workflow=orders")).json()

    assert len(page["deliveries"]) == 2
    duplicate = next(d for d in page["deliveries"] if d["verdict"] == "duplicate")
    assert duplicate["execution_id"] == first.json()["execution_id"]


async def test_secret_headers_are_redacted_in_deliveries(server: Server) -> None:
    await server.client.post(
        "/api/webhooks/orders/1",
        json={"n": 1},
        headers={"authorization": "Bearer s3cret", "x-hub-signature-256": "sha256=abc"},
    )
    await server.engine.store.flush()

    response = await server.client.get("/api/deliveries")

    assert "s3cret" not in response.text
    assert "sha256=abc" not in response.text
    (delivery,) = response.json()["deliveries"]
    assert delivery["headers"]["authorization"] == "[redacted]"


# -- access -----------------------------------------------------------------------------


async def test_admin_keys_are_required_when_configured(make_store: StoreFactory) -> None:
    async with running_server(
        STANDARD, admin_keys=["k-one", "k-two"], store=make_store()
    ) as server:
        missing = await server.client.get("/api/executions")
        wrong = await server.client.get(
            "/api/executions", headers={"authorization": "Bearer k-three"}
        )
        basic = await server.client.get("/api/executions", headers={"authorization": "Basic eA=="})
        right = await server.client.get(
            "/api/executions", headers={"authorization": "Bearer k-two"}
        )
        webhook = await server.client.post("/api/webhooks/orders/1", json={"n": 1})
        health = await server.client.get("/healthz")

    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_problem(wrong, 403)
    assert_problem(basic, 401)
    assert right.status_code == 200
    assert right.json()["executions"] == []
    # Webhooks and health checks are not admin routes.
    assert webhook.status_code == 202
    assert health.status_code == 200


def test_without_keys_only_loopback_clients_are_admitted() -> None:
    assert admin_refusal("127.0.0.1", "", ()) is None
    assert admin_refusal("::1", "", ()) is None
    for outsider in ("10.0.0.7", "203.0.113.9", "2001:db8::1", "", "<local>"):
        refusal = admin_refusal(outsider, "Bearer anything", ())
        assert refusal is not None
        assert refusal.status == 403


def test_with_keys_the_client_address_does_not_matter() -> None:
    keys = (b"k-one",)
    assert admin_refusal("203.0.113.9", "Bearer k-one", keys) is None
    refusal = admin_refusal("127.0.0.1", "", keys)
    assert refusal is not None
    assert refusal.status == 401


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("192.168.1.1")
    assert not is_loopback("localhost")


async def test_admin_over_a_non_loopback_address_is_refused(server: Server) -> None:
    # The server binds 127.0.0.1; a client address from elsewhere reaches the app
    # through the ASGI scope, which is what the app reads.
    app: Any = create_app(server.engine)  # QuartTrio's ASGI types are narrower than httpx's
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hookline") as outsider:
        refused = await outsider.get("/api/executions")
        webhook = await outsider.post("/api/webhooks/orders/1", json={"n": 1})
    assert_problem(refused, 403)
    assert webhook.status_code == 202


# -- behind a reverse proxy on the same host (issue 13, finding 1) ----------------------

PWNED = "key: pwned\ntrigger: {type: webhook}\nnodes: [{key: a, type: set, values: {x: 1}}]\n"
FORWARDED = {"x-forwarded-for": "203.0.113.9"}


@asynccontextmanager
async def behind_proxy(
    *, trusted: Sequence[str] = ("127.0.0.1/32",), **serve_options: Any
) -> AsyncIterator[Server]:
    """The standard workflows served on 127.0.0.1 with ``trusted`` proxies: a client of
    this server on loopback stands for a reverse proxy on the same host."""
    proxies = [ipaddress.ip_network(network) for network in trusted]
    async with open_engine(workflows(*STANDARD)) as engine:
        async with trio.open_nursery() as nursery:
            options = {"bind": "127.0.0.1:0", "trusted_proxies": proxies, **serve_options}
            urls = await nursery.start(partial(serve, engine, **options))
            async with httpx.AsyncClient(base_url=urls[0], timeout=10.0) as client:
                yield Server(engine, urls[0], client)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("trusted", [("127.0.0.1/32",), ()], ids=["trusted", "untrusted"])
async def test_no_keys_a_request_forwarded_by_a_local_proxy_is_refused(
    trusted: tuple[str, ...],
) -> None:
    # The attack: no admin keys, a reverse proxy on the host (its requests come from
    # 127.0.0.1) forwards a remote client's requests to the admin API.
    async with behind_proxy(trusted=trusted) as server:
        put = await server.client.put("/api/workflows/pwned", content=PWNED, headers=FORWARDED)
        patch = await server.client.patch(
            "/api/workflows/orders", json={"enabled": False}, headers=FORWARDED
        )
        listed = await server.client.get(
            "/api/executions", headers={"forwarded": "for=203.0.113.9"}
        )
        page = await server.client.get("/ui/", headers={"x-real-ip": "203.0.113.9"})
        metrics = await server.client.get("/metrics", headers=FORWARDED)
        webhook = await server.client.post("/api/webhooks/orders/1", json={}, headers=FORWARDED)
        # The operator on the machine itself, not through the proxy, still gets in.
        local = await server.client.get("/api/workflows/orders")

        assert "pwned" not in server.engine.workflows
        assert server.engine.workflows["orders"].enabled

    assert "forwarded by a proxy" in assert_problem(put, 403)["detail"]
    assert_problem(patch, 403)
    assert_problem(listed, 403)
    assert page.status_code == 403
    assert_problem(metrics, 403)
    assert webhook.status_code == 202
    assert local.status_code == 200


async def test_a_forwarded_client_is_resolved_before_the_loopback_check() -> None:
    # A forged chain naming 127.0.0.1 behind the trusted proxy is still a forwarded
    # request; and the guard reads the client the proxies resolve, not the socket.
    async with behind_proxy() as server:
        forged = await server.client.get(
            "/api/executions", headers={"x-forwarded-for": "127.0.0.1, 203.0.113.9"}
        )
    assert_problem(forged, 403)
    assert admin_refusal("127.0.0.1", "", (), forwarded=True) is not None


async def test_with_keys_a_forwarded_request_needs_a_key() -> None:
    async with behind_proxy(admin_keys=["k-proxy"]) as server:
        missing = await server.client.get("/api/executions", headers=FORWARDED)
        keyed = await server.client.get(
            "/api/executions", headers={**FORWARDED, "authorization": "Bearer k-proxy"}
        )
    assert_problem(missing, 401)
    assert keyed.status_code == 200


async def test_a_disabled_admin_api_answers_404_and_webhooks_still_serve() -> None:
    async with behind_proxy(admin_enabled=False) as server:
        api = await server.client.get("/api/workflows")
        put = await server.client.put("/api/workflows/pwned", content=PWNED)
        page = await server.client.get("/ui/")
        metrics = await server.client.get("/metrics")
        webhook = await server.client.post("/api/webhooks/orders/1", json={})
        health = await server.client.get("/healthz")
    assert "admin.enabled: false" in assert_problem(api, 404)["detail"]
    assert_problem(put, 404)
    assert_problem(page, 404)
    assert_problem(metrics, 404)
    assert webhook.status_code == 202
    assert health.status_code == 200
