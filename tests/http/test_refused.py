"""Refused requests cannot fill the disk: bodies cut short, recording rationed.

Issue 13, finding 2: requests refused with 401/403/408 were stored with their whole
body for 7 days (50 bad-signature requests of 1 MB grew the database by 52 MB in
0.4 s), and junk 404/405/400 requests were recorded at line rate.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import httpx
import pytest
import trio

from hookline._config import load_config
from hookline.engine._engine import open_engine
from hookline.engine._refusal_limit import BucketRate, RefusalPolicy
from hookline.engine._retention import Retention, RetentionPolicy, id_floor
from hookline.http._serve import serve
from hookline.store._ops import AcceptDelivery, RecordDelivery
from hookline.store._store import MemoryStore
from tests.http.conftest import running_server, workflows
from tests.store.conftest import delivery, execution

SIGNED = """
key: signed
trigger:
  type: webhook
  path: signed
  verify: [{github: {secret: the-secret}}]
nodes:
  - {key: keep, type: set, values: {ok: true}}
"""
MB = 1_000_000


def store_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("hookline.db*"))


async def test_50_refused_1mb_requests_grow_the_store_by_under_5_percent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hookline.db"
    async with running_server([SIGNED], store=url) as server:
        await server.engine.store.flush()
        before = store_bytes(tmp_path)
        body = bytes(range(256)) * (MB // 256)
        statuses = []
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for i in range(50):
                headers = {"x-hub-signature-256": "sha256=" + "0" * 64}
                if i % 2:
                    headers = {}  # no signature at all: 401
                response = await client.post("/api/webhooks/signed", content=body, headers=headers)
                statuses.append(response.status_code)
        assert sorted(set(statuses)) == [401, 403]
        await server.engine.store.flush()
        grown = store_bytes(tmp_path) - before
        assert grown < 0.05 * 50 * len(body), grown
        refused = (await server.engine.store.list_deliveries(verdict="rejected", limit=100)).items
        assert refused
        for record in refused:
            assert len(record.body) == 4096
            assert record.body == body[:4096]
            assert record.reason is not None
            assert f"body of {len(body)} bytes" in record.reason
            assert hashlib.sha256(body).hexdigest() in record.reason


async def test_a_junk_flood_is_counted_not_stored() -> None:
    async with running_server([SIGNED]) as server:
        for i in range(120):
            path = f"/api/webhooks/nothing-{i}" if i % 2 else "/api/webhooks/signed"
            method = "POST" if i % 2 else "DELETE"  # 404, and 405 on a known path
            response = await server.client.request(method, path, content=b"x" * 2000)
            assert response.status_code in (404, 405)
        await server.engine.store.flush()
        recorded = (await server.engine.store.list_deliveries(limit=500)).items
        # One client: its bucket holds 30 refusals (60 a minute, half a minute's worth),
        # and refills by one a second while the flood runs.
        assert 30 <= len(recorded) < 45
        metrics = (await server.client.get("/metrics")).text
        found = re.search(r"^hookline_refusals_unrecorded_total ([0-9.]+)$", metrics, re.M)
        assert found is not None, metrics
        assert float(found[1]) == 120 - len(recorded)
        assert f"hookline_refusals_recorded_total {len(recorded)}.0" in metrics


async def test_the_policy_comes_from_server_refused(tmp_path: Path) -> None:
    config_file = tmp_path / "hookline.yaml"
    config_file.write_text(
        "server: {refused: {keep_body: 1KiB, per_client: 6, per_path: 600, total: 6000}}\n"
        "retention: {refused_deliveries: 2h}\n"
    )
    config = load_config(config_file, env={})
    policy = config.server.refused
    assert policy.keep_body == 1024
    assert policy.per_client == BucketRate(per_second=0.1, burst=3.0)
    assert config.retention.refused_deliveries == 7200.0
    async with open_engine(workflows(SIGNED)) as engine, trio.open_nursery() as nursery:
        serving = functools.partial(serve, engine, bind="127.0.0.1:0", refusals=policy)
        [base] = await nursery.start(serving)
        async with httpx.AsyncClient(base_url=base) as client:
            statuses = [
                (await client.post("/api/webhooks/signed", content=b"y" * 5000)).status_code
                for _ in range(5)
            ]
        assert statuses == [401] * 5
        await engine.store.flush()
        recorded = (await engine.store.list_deliveries(limit=50)).items
        assert len(recorded) == 3
        assert all(len(record.body) == 1024 for record in recorded)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("age", [3_600.0, 3 * 86_400.0])
async def test_refused_deliveries_have_their_own_shorter_retention(age: float) -> None:
    store = MemoryStore()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        now = 10 * 86_400.0
        old = id_floor(now - age)[:16] + "0000000001"
        refused = delivery(id=old, verdict="rejected", received_at=now - age)
        accepted = delivery(id=old[:-1] + "2", received_at=now - age)
        await store.write(RecordDelivery(refused))
        await store.write(AcceptDelivery(accepted, execution(delivery_id=accepted.id)))
        policy = RetentionPolicy(
            deliveries=7 * 86_400.0, refused_deliveries=86_400.0, clock=lambda: now
        )
        await Retention(store, policy).sweep()
        assert (await store.get_delivery(refused.id) is None) is (age > 86_400.0)
        assert await store.get_delivery(accepted.id) is not None
        nursery.cancel_scope.cancel()


def test_the_default_policy() -> None:
    policy = RefusalPolicy()
    assert policy.keep_body == 4096
    assert policy.per_client == BucketRate(per_second=1.0, burst=30.0)
