"""Timeouts and cancellation for the node types that finish without waiting on anything
but the store (set, json_query, condition, switch, response, end and the collection
nodes). The types that wait on the outside world (http, email, code, delay, loop,
parallel, workflow) have their own timeout and cancellation tests beside their modules.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
import yaml

from hookline import load_workflow_text, open_engine
from hookline.store._ops import CollectionWrite
from hookline.store._store import Store
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()

# One minimal, valid definition per node type under test.
NODES: dict[str, dict[str, Any]] = {
    "set": {"values": {"x": 1}},
    "json_query": {"query": "a"},
    "condition": {"if": {"equal": [1, 1]}},
    "switch": {"cases": [{"if": {"equal": [1, 1]}, "nodes": []}]},
    "response": {"status": 200, "body": {"ok": True}},
    "end": {"status": "succeeded"},
    "create": {"collection": "things", "values": {"n": 1}},
    "update": {"collection": "things", "where": {"n": 1}, "values": {"n": 2}},
    "delete": {"collection": "things", "where": {"n": 1}},
    "query": {"collection": "things"},
    "upsert": {"collection": "things", "key_fields": "n", "values": {"n": 1}},
}
COLLECTION_TYPES = ("create", "update", "delete", "upsert")


def workflow(node_type: str, *, before: dict[str, Any] | None = None, timeout: str = "5m") -> Any:
    nodes = [] if before is None else [before]
    nodes.append({"key": "subject", "type": node_type, **NODES[node_type]})
    definition = {
        "key": "subject",
        "trigger": {"type": "webhook", "mode": "sync"},
        "timeout": timeout,
        "nodes": nodes,
    }
    return load_workflow_text(yaml.safe_dump(definition), source="subject.yaml")


@pytest.mark.parametrize("node_type", sorted(NODES))
async def test_a_cancelled_execution_never_runs_the_node(
    autojump_clock: trio.testing.MockClock,
    node_type: str,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    nap = {"key": "nap", "type": "sleep", "duration": "10s"}
    async with open_engine([workflow(node_type, before=nap)], store=store) as engine:
        admission = await engine.submit("subject", data={"a": 1})
        assert admission.handle is not None
        await trio.sleep(1)
        assert await engine.cancel(admission.execution_id)
        outcome = await admission.handle.wait_finished()
        jobs = await store.list_jobs(admission.execution_id)
    assert outcome.status == "cancelled"
    assert [(job.node, job.status) for job in jobs] == [("nap", "cancelled")]


@pytest.mark.parametrize("node_type", sorted(NODES))
async def test_the_workflow_timeout_stops_before_the_node(
    autojump_clock: trio.testing.MockClock,
    node_type: str,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    nap = {"key": "nap", "type": "sleep", "duration": "10s"}
    async with open_engine([workflow(node_type, before=nap, timeout="2s")], store=store) as engine:
        outcome = await engine.run("subject", data={"a": 1})
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "timed_out"
    assert [job.node for job in jobs] == ["nap"]


@pytest.mark.parametrize("node_type", sorted(NODES))
async def test_the_node_runs_when_nothing_stops_it(
    autojump_clock: trio.testing.MockClock,
    node_type: str,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    async with open_engine([workflow(node_type)], store=store) as engine:
        outcome = await engine.run("subject", data={"a": 1})
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.status == "succeeded"
    assert [(job.node, job.status) for job in jobs] == [("subject", "succeeded")]


class StalledStore(Store):
    """A store so far behind that a collection write never finds room in its mailbox.

    (Once a write is queued, the node waits for its commit even past its timeout, so
    that a job is never recorded failed after its write committed.)
    """

    async def write_shielded(self, op: CollectionWrite) -> Any:
        await trio.sleep_forever()
        return await super().write_shielded(op)


@pytest.mark.parametrize("node_type", COLLECTION_TYPES)
async def test_a_collection_write_that_cannot_be_queued_times_out_and_writes_nothing(
    autojump_clock: trio.testing.MockClock,
    node_type: str,
    make_store: StoreFactory,
) -> None:
    store = StalledStore(make_store.backend())
    definition = workflow(node_type)
    async with open_engine([definition], store=store) as engine:
        outcome = await engine.run("subject", data={"a": 1})
        jobs = await store.list_jobs(outcome.execution_id)
        records = await store.list_records("things")
    assert outcome.status == "failed"
    assert [(job.node, job.status) for job in jobs] == [("subject", "timed_out")]
    assert "timed out after 30s" in (jobs[0].error or "")
    assert records.items == ()
