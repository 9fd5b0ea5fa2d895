"""Collection records written through the admin API: create, update, delete, import
and export as JSON lines and CSV, each write saved with a job record naming who."""

from __future__ import annotations

import json

from tests.conftest import StoreFactory
from tests.http.conftest import ORDERS, assert_problem, running_server


async def test_create_update_delete_a_record_each_recorded_with_who_and_when(
    make_store: StoreFactory,
) -> None:
    async with running_server([ORDERS], store=make_store(), admin_keys=["k1"]) as server:
        client = server.client
        client.headers["authorization"] = "Bearer k1"
        created = await client.post(
            "/api/collections/customers/records", json={"name": "Ada", "id": "ignored"}
        )
        assert created.status_code == 201
        record = created.json()["record"]
        assert record["name"] == "Ada"
        assert record["id"] != "ignored"
        assert created.headers["location"] == f"/api/collections/customers/records/{record['id']}"
        written = created.json()["written"]
        assert written["by"].startswith("admin key sha256:")
        (job,) = await server.engine.store.list_jobs(written["execution_id"])
        assert (job.node, job.type, job.status) == ("admin", "collection.create", "succeeded")
        assert job.log == (f"by {written['by']}",)

        path = f"/api/collections/customers/records/{record['id']}"
        updated = await client.patch(path, json={"name": "Ada L.", "vip": True})
        assert updated.status_code == 200
        assert updated.json()["record"] | {"updated_at": 0} == record | {
            "name": "Ada L.",
            "vip": True,
            "updated_at": 0,
        }
        listed = (await client.get("/api/collections/customers/records")).json()["records"]
        assert [r["name"] for r in listed] == ["Ada L."]

        assert (await client.delete(path)).status_code == 204
        assert_problem(await client.delete(path), 404)
        assert_problem(await client.patch(path, json={"x": 1}), 404)
        assert (await client.get("/api/collections/customers/records")).json()["records"] == []


async def test_bad_writes_are_refused_with_400(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], store=make_store()) as server:
        client = server.client
        assert_problem(await client.post("/api/collections/customers/records", json=[1]), 400)
        assert_problem(await client.post("/api/collections/Bad Name/records", json={}), 400)
        bad_field = await client.post("/api/collections/c/records", json={"no spaces": 1})
        assert_problem(bad_field, 400)


async def test_import_and_export_json_lines_and_csv(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], store=make_store()) as server:
        client = server.client
        lines = '{"sku": "a-1", "qty": 2}\n\n{"sku": "b-2", "qty": 5, "tags": ["x"]}\n'
        imported = await client.post(
            "/api/collections/stock/import?format=jsonl", content=lines.encode()
        )
        assert imported.json()["imported"] == 2
        table = 'sku,qty,note\nc-3,7,\nd-4,0042,"hello, world"\n'
        imported = await client.post("/api/collections/stock/import?format=csv", content=table)
        assert imported.status_code == 200, imported.text
        exported = await client.get("/api/collections/stock/export")
        assert exported.headers["content-type"].startswith("application/jsonl")
        records = [json.loads(line) for line in exported.text.splitlines()]
        by_sku = {r["sku"]: r for r in records}
        assert by_sku["b-2"]["tags"] == ["x"]
        assert by_sku["c-3"]["qty"] == 7
        assert "note" not in by_sku["c-3"]
        assert (by_sku["d-4"]["qty"], by_sku["d-4"]["note"]) == ("0042", "hello, world")
        csv_text = (await client.get("/api/collections/stock/export?format=csv")).text
        header, *rows = csv_text.splitlines()
        assert header.split(",")[:3] == ["id", "created_at", "updated_at"]
        assert len(rows) == 4
        assert '"[""x""]"' in csv_text

        broken = await client.post(
            "/api/collections/stock/import", content=b'{"sku": "e"}\n{"bad": \n'
        )
        assert_problem(broken, 400)
        half = await client.post(
            "/api/collections/stock/import", content=b'{"sku": "e"}\n{"no spaces": 1}\n'
        )
        problem = assert_problem(half, 400)
        assert (problem["line"], problem["imported"]) == (2, 1)
        assert_problem(await client.get("/api/collections/stock/export?format=xml"), 400)
