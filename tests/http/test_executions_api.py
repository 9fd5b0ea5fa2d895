"""Admin API additions: replay and retry, time filters, one delivery, collection pages."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import attrs
import pytest

from hookline.definition import Fields
from hookline.errors import NodeError
from hookline.nodes._base import Job, NodeResult, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from tests.conftest import StoreFactory
from tests.http.conftest import Server, assert_problem, running_server, wait_until

FLAKY_TYPE = "http_test_flaky"
_BROKEN: set[str] = set()


@attrs.frozen
class FlakyNode:
    """Fails while its name is in the broken set: an outage that a retry outlives."""

    name: str

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        if self.name in _BROKEN:
            raise NodeError(f"{self.name} is down")
        return NodeResult(output={"reached": self.name})


@register(FLAKY_TYPE)
def _parse_flaky(fields: Fields, nodes: NodeListParser) -> FlakyNode:
    return FlakyNode(name=fields.string("name"))


DEPLOY = f"""
key: deploy
trigger: {{type: webhook, path: deploy}}
nodes:
  - {{key: build, type: set, values: {{n: "{{{{$context.data.n}}}}"}}}}
  - {{key: ship, type: {FLAKY_TYPE}, name: ship}}
"""
SAVE = """
key: save
trigger: {type: webhook, path: save}
nodes:
  - {key: add, type: create, collection: people, values: {name: "{{$context.data.name}}"}}
"""


@pytest.fixture(autouse=True)
def _repaired() -> Iterable[None]:
    yield
    _BROKEN.clear()


async def finished(server: Server, execution_id: str) -> dict[str, object]:
    await wait_until(lambda: server.engine.handle(execution_id) is None)
    record: dict[str, object] = (await server.client.get(f"/api/executions/{execution_id}")).json()
    return record


async def test_retry_continues_from_the_failed_node(make_store: StoreFactory) -> None:
    async with running_server([DEPLOY], store=make_store()) as server:
        _BROKEN.add("ship")
        first = (await server.client.post("/api/webhooks/deploy", json={"n": 1})).json()
        failed = await finished(server, first["execution_id"])
        assert failed["status"] == "failed"
        assert failed["error"]
        assert "ship is down" in str(failed["error"])

        _BROKEN.clear()
        retried = await server.client.post(f"/api/executions/{first['execution_id']}/retry")

        assert retried.status_code == 202, retried.text
        assert retried.json()["execution_id"] == first["execution_id"]
        assert retried.headers["location"] == f"/api/executions/{first['execution_id']}"
        record = await finished(server, first["execution_id"])
        assert record["status"] == "succeeded"
        jobs = record["jobs"]
        assert isinstance(jobs, list)
        # The build step ran once; ship ran twice (failed, then succeeded).
        assert [(j["node"], j["status"]) for j in jobs if j["node"] == "build"] == [
            ("build", "succeeded")
        ]
        assert [j["status"] for j in jobs if j["node"] == "ship"][-1] == "succeeded"
        again = await server.client.post(f"/api/executions/{first['execution_id']}/retry")
        assert_problem(again, 409)


async def test_replay_runs_the_same_delivery_as_a_new_execution(server: Server) -> None:
    first = (await server.client.post("/api/webhooks/steps", json={"n": 30})).json()

    replayed = await server.client.post(f"/api/executions/{first['execution_id']}/replay")

    assert replayed.status_code == 202, replayed.text
    new_id = replayed.json()["execution_id"]
    assert new_id != first["execution_id"]
    record = await finished(server, new_id)
    assert record["status"] == "succeeded"
    assert record["output"] == {"size": "large"}


@pytest.mark.parametrize("action", ["replay", "retry", "cancel"])
async def test_actions_on_an_unknown_execution_are_404(server: Server, action: str) -> None:
    assert_problem(await server.client.post(f"/api/executions/01NOPE/{action}"), 404)


async def test_replay_of_a_disabled_workflow_is_refused_with_503(server: Server) -> None:
    first = (await server.client.post("/api/webhooks/steps", json={"n": 1})).json()
    await server.client.patch("/api/workflows/steps", json={"enabled": False})

    refused = await server.client.post(f"/api/executions/{first['execution_id']}/replay")

    assert_problem(refused, 503)
    assert "retry-after" in refused.headers


async def test_time_filters_bound_the_list(server: Server) -> None:
    before = (await server.client.post("/api/webhooks/steps", json={"n": 1})).json()
    middle = time.time()
    await server.client.post("/api/webhooks/steps", json={"n": 2})
    after = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()

    since = (await server.client.get("/api/executions", params={"since": middle})).json()
    until = (await server.client.get("/api/executions", params={"until": middle})).json()
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle - 60)) + "Z"
    recent = (await server.client.get("/api/executions", params={"since": iso})).json()

    assert len(since["executions"]) == 2
    assert after["execution_id"] in [e["id"] for e in since["executions"]]
    assert [e["id"] for e in until["executions"]] == [before["execution_id"]]
    assert len(recent["executions"]) == 3
    for bad in ({"since": "yesterday"}, {"cursor": "not-a-cursor"}, {"verdict": "maybe"}):
        path = "/api/deliveries" if "verdict" in bad else "/api/executions"
        assert_problem(await server.client.get(path, params=bad), 400)


async def test_one_delivery_shows_the_request_with_secrets_redacted(server: Server) -> None:
    await server.client.post(
        "/api/webhooks/orders/7?page=2&token=t0k3n",
        content=b'{"n": 7}',
        headers={"content-type": "application/json", "x-hub-signature-256": "sha256=ff"},
    )
    await server.engine.store.flush()
    (listed,) = (await server.client.get("/api/deliveries")).json()["deliveries"]

    response = await server.client.get(f"/api/deliveries/{listed['id']}")

    delivery = response.json()
    assert delivery["body"] == '{"n": 7}'
    assert delivery["query"] == {"page": "2", "token": "[redacted]"}
    assert delivery["headers"]["x-hub-signature-256"] == "[redacted]"
    assert "t0k3n" not in response.text
    assert_problem(await server.client.get("/api/deliveries/01NOPE"), 404)


async def test_collection_records_come_in_pages(make_store: StoreFactory) -> None:
    async with running_server([SAVE], store=make_store()) as server:
        for name in ("ann", "bob", "cy"):
            # One at a time: executions may run side by side, and pages are by age.
            await server.client.post("/api/webhooks/save", json={"name": name})
            await wait_until(lambda: server.engine.pending() == 0)

        first = (await server.client.get("/api/collections/people/records?limit=2")).json()
        second = (
            await server.client.get(
                "/api/collections/people/records", params={"limit": 2, "cursor": first["cursor"]}
            )
        ).json()
        names = (await server.client.get("/api/collections")).json()
        empty = (await server.client.get("/api/collections/nobody/records")).json()
        bad = await server.client.get("/api/collections/Bad-Name/records")

    assert [r["name"] for r in first["records"]] == ["cy", "bob"]
    assert [r["name"] for r in second["records"]] == ["ann"]
    assert second["cursor"] is None
    assert names == {"collections": ["people"]}
    assert empty == {"records": [], "cursor": None}
    assert_problem(bad, 400)
