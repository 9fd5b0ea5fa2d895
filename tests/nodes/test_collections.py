"""The collection nodes: create, update, delete, query, upsert, on SQLite, in memory and on
PostgreSQL."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hookline.definition import Fields
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeResult, NodeServices, NodeSpec
from hookline.nodes._collections import QueryNode
from hookline.nodes._registry import parse_node
from hookline.store._collection_service import CollectionService
from hookline.testing import FakeJob
from tests.conftest import StoreFactory


@attrs.define
class ServedJob(FakeJob):
    """A fake job that also lends services."""

    services: NodeServices = attrs.Factory(NodeServices)


def parse(data: dict[str, Any]) -> NodeSpec:
    return parse_node(Fields({"key": "n", **data}, source="w.yaml", path="nodes[0]"))


@pytest.fixture
async def services(make_any_store: StoreFactory, nursery: trio.Nursery) -> NodeServices:
    store = make_any_store()
    await nursery.start(store.run)
    return NodeServices(collections=CollectionService(store))


class Runner:
    """Runs node definitions as jobs of one execution, numbering their attempts."""

    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.attempts = 0

    async def __call__(self, definition: dict[str, Any], **data: Any) -> Any:
        result = await self.result(definition, **data)
        return result.output

    async def result(self, definition: dict[str, Any], **data: Any) -> NodeResult:
        spec = parse(definition)
        self.attempts += 1
        job = ServedJob(
            variables={"context": {"data": data}},
            spec=spec,
            attempt=self.attempts,
            services=self.services,
        )
        return await spec.config.run(job)


@pytest.fixture
def run(services: NodeServices) -> Runner:
    return Runner(services)


CREATE = {"type": "create", "collection": "customers"}


async def test_create_then_query(run: Runner) -> None:
    ann = await run(
        {**CREATE, "values": {"name": "{{$context.data.name}}", "n": "{{$context.data.n}}"}},
        name="Ann",
        n=3,
    )
    assert (ann["name"], ann["n"]) == ("Ann", 3)
    await run({**CREATE, "values": "{{$context.data}}"}, name="Bob", n=1, tags=["x"])

    everyone = await run({"type": "query", "collection": "customers", "order_by": "-n"})
    assert [r["name"] for r in everyone] == ["Ann", "Bob"]
    assert everyone[1]["tags"] == ["x"]
    found = await run(
        {
            "type": "query",
            "collection": "customers",
            "where": {"name": "{{$context.data.who}}"},
            "single": True,
        },
        who="Bob",
    )
    assert found["n"] == 1
    nobody = {"type": "query", "collection": "customers", "where": {"n": {"gt": 9}}}
    assert await run({**nobody, "single": True}) is None
    assert await run(nobody) == []
    assert await run({"type": "query", "collection": "customers", "limit": 1}) == [ann]


async def test_update_delete_and_counts(run: Runner) -> None:
    for n in range(4):
        await run({**CREATE, "values": {"n": n, "owner": None}})
    update = {
        "type": "update",
        "collection": "customers",
        "where": {"n": {"gte": "{{$context.data.low}}"}},
        "values": {"owner": "{{$context.data.owner}}"},
    }
    assert await run(update, low=2, owner="cy") == 2
    first = await run(
        {**update, "single": True, "where": {"owner": {"exists": False}}}, owner="dee"
    )
    assert (first["n"], first["owner"]) == (0, "dee")
    owners = await run({"type": "query", "collection": "customers", "order_by": ["n"]})
    assert [r.get("owner") for r in owners] == ["dee", None, "cy", "cy"]

    delete = {"type": "delete", "collection": "customers", "where": {"owner": "cy"}}
    assert await run(delete) == 2
    assert await run(delete) == 0
    # A collection nobody wrote to yet: nothing to update, not an error.
    assert await run({**update, "collection": "nothing_yet"}, low=0, owner="x") == 0
    assert await run({**update, "collection": "nothing_yet", "single": True}, low=0) is None


async def test_upsert_by_key(run: Runner) -> None:
    upsert = {
        "type": "upsert",
        "collection": "crm",
        "key_fields": ["source", "ext"],
        "values": {"source": "sf", "ext": "{{$context.data.id}}", "name": "{{$context.data.name}}"},
    }
    created = await run(upsert, id=7, name="Ann")
    changed = await run(upsert, id=7, name="Ann B")
    await run(upsert, id=8, name="Bob")
    assert (changed["id"], changed["name"]) == (created["id"], "Ann B")
    assert len(await run({"type": "query", "collection": "crm"})) == 2
    with pytest.raises(NodeError, match="key field"):
        await run(upsert, name="no id")


@pytest.mark.parametrize(
    ("definition", "data", "message"),
    [
        ({**CREATE, "values": "{{$context.data.items}}"}, {"items": [1]}, "object of field"),
        ({**CREATE, "values": "{{$context.data}}"}, {"bad key": 1}, "field name"),
        ({**CREATE, "values": "{{$context.data}}"}, {"id": "x"}, "other than"),
        (
            {"type": "query", "collection": "c", "where": {"a": {"exists": "{{$context.data.f}}"}}},
            {"f": "yes"},
            "true or false",
        ),
    ],
)
async def test_bad_data_fails_the_job(
    run: Runner, definition: dict[str, Any], data: dict[str, Any], message: str
) -> None:
    with pytest.raises(NodeError, match=message):
        await run(definition, **data)


async def test_without_a_store_the_job_fails_clearly() -> None:
    spec = parse({**CREATE, "values": {"a": 1}})
    with pytest.raises(NodeError, match="collections are not available"):
        await spec.config.run(ServedJob(spec=spec))


async def test_a_write_is_recorded_with_its_job(services: NodeServices) -> None:
    spec = parse({**CREATE, "values": {"a": 1}})
    job = ServedJob(spec=spec, execution_id="ex-9", services=services)
    result = await spec.config.run(job)
    again = await spec.config.run(job)  # the same job run again (a resumed execution)
    assert again.output == result.output
    store = services.collections.store
    (saved,) = await store.list_jobs("ex-9")
    assert (saved.node, saved.type, saved.status) == ("n", "create", "succeeded")
    assert saved.output == result.output
    assert len(await store.query_records("customers")) == 1


async def test_a_job_cancelled_while_its_write_commits_still_learns_the_result(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    services = NodeServices(collections=CollectionService(store))
    spec = parse({**CREATE, "values": {"a": 1}})
    outcome: list[NodeResult] = []

    async def run_job(scope: trio.CancelScope) -> None:
        with scope:
            outcome.append(await spec.config.run(ServedJob(spec=spec, services=services)))

    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()
        nursery.start_soon(run_job, scope)
        await trio.testing.wait_all_tasks_blocked()  # the write waits in the mailbox
        scope.cancel()
        await nursery.start(store.run)  # only now does it commit
        await store.flush()  # committed (in a worker thread, on a threaded backend)
        await trio.testing.wait_all_tasks_blocked()
        (result,) = outcome
        assert result.output["a"] == 1
        assert len(await store.query_records("customers")) == 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"type": "create", "values": {"a": 1}}, "nodes[0].collection"),
        ({"type": "create", "collection": "Customers", "values": {"a": 1}}, "nodes[0].collection"),
        ({"type": "create", "collection": "c", "values": {"a b": 1}}, "nodes[0].values.a b"),
        ({"type": "create", "collection": "c", "values": {"id": 1}}, "nodes[0].values.id"),
        ({"type": "create", "collection": "c", "values": 5}, "nodes[0].values"),
        ({"type": "create", "collection": "c"}, "nodes[0].values"),
        ({"type": "update", "collection": "c", "values": {"a": 1}}, "nodes[0].where"),
        ({"type": "delete", "collection": "c"}, "nodes[0].where"),
        (
            {"type": "delete", "collection": "c", "where": {"a": {"bigger": 1}}},
            "nodes[0].where.a.bigger",
        ),
        ({"type": "delete", "collection": "c", "where": {"a": {}}}, "nodes[0].where.a"),
        ({"type": "delete", "collection": "c", "where": {"a-b": 1}}, "nodes[0].where.a-b"),
        (
            {"type": "query", "collection": "c", "where": {"a": {"exists": "yes"}}},
            "nodes[0].where.a.exists",
        ),
        (
            {"type": "query", "collection": "c", "where": {"a": {"matches": "("}}},
            "nodes[0].where.a.matches",
        ),
        (
            # Issue 13, finding 5: the sender would choose the pattern.
            {"type": "query", "collection": "c", "where": {"a": {"matches": "{{$context.p}}"}}},
            "nodes[0].where.a.matches",
        ),
        (
            {"type": "query", "collection": "c", "where": {"a": {"matches": "(?<=x)y"}}},
            "nodes[0].where.a.matches",
        ),
        ({"type": "query", "collection": "c", "where": {"a": "{{oops"}}, "nodes[0].where.a"),
        ({"type": "query", "collection": "c", "order_by": ["a", "-b c"]}, "nodes[0].order_by[1]"),
        ({"type": "query", "collection": "c", "order_by": 5}, "nodes[0].order_by"),
        ({"type": "query", "collection": "c", "limit": 0}, "nodes[0].limit"),
        ({"type": "query", "collection": "c", "sort": "a"}, "nodes[0].sort"),
        ({"type": "upsert", "collection": "c", "values": {"a": 1}}, "nodes[0].key_fields"),
        (
            {"type": "upsert", "collection": "c", "key_fields": "b", "values": {"a": 1}},
            "nodes[0].key_fields",
        ),
        (
            {"type": "upsert", "collection": "c", "key_fields": [], "values": {"a": 1}},
            "nodes[0].key_fields",
        ),
        (
            {"type": "upsert", "collection": "c", "key_fields": ["a", 5], "values": {"a": 1}},
            "nodes[0].key_fields[1]",
        ),
    ],
)
def test_bad_definitions_are_refused_at_load(definition: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(definition)
    assert caught.value.path == path


def test_where_accepts_every_operator() -> None:
    where = {
        "a": {"equal": 1, "not_equal": 2, "gt": 0, "gte": 1, "lt": 5, "lte": 4},
        "b": {"includes": "x", "not_includes": "y", "starts_with": "x", "ends_with": "x"},
        "c": {"matches": "^x", "exists": True, "empty": False, "in": [1, 2]},
        "d": "{{$context.data.d}}",
    }
    config = parse({"type": "query", "collection": "c", "where": where}).config
    assert isinstance(config, QueryNode)
    assert [(c.field, c.operator) for c in config.where][-1] == ("d", "equal")
    assert len(config.where) == 15
