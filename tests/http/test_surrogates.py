"""Lone surrogates against a real server: one bad string never poisons a commit batch.

Issue 13, finding 4: ``{"n":"\\ud800"}`` could not be encoded, so its whole commit
batch failed (12 of 200 legitimate concurrent deliveries got 503 with the 50 bad ones),
and a node returning ``"\\ud800"`` left its execution ``running`` forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import attrs
import httpx
import trio

from hookline.definition import Fields
from hookline.nodes._base import Job, NodeResult, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from tests.http.conftest import assert_problem, running_server

INGEST = """
key: ingest
trigger: {type: webhook, path: "ingest/{tag}"}
nodes:
  - {key: keep, type: set, values: {n: "{{$context.data.n}}"}}
"""
SURROGATE = """
key: odd
trigger: {type: webhook, path: odd, mode: sync}
nodes:
  - {key: make, type: surrogate_test}
  - {key: after, type: set, values: {seen: "{{$nodes.make.text}}"}}
"""


@attrs.frozen
class SurrogateNode:
    """Returns a string no store can hold, as a buggy node or an odd API answer might
    (Python's JSON reader makes one of ``"\\ud800"``)."""

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        await trio.lowlevel.checkpoint()
        return NodeResult(output={"text": "\ud800"})


@register("surrogate_test")
def _parse_surrogate(fields: Fields, nodes: NodeListParser) -> SurrogateNode:
    return SurrogateNode()


@attrs.frozen
class InlineSurrogateNode:
    """The same from a node type that runs inline, whose result is not checked before
    the store sees it: the execution's end must still be recorded."""

    inline: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        return NodeResult(output="\udfff")


@register("inline_surrogate_test")
def _parse_inline(fields: Fields, nodes: NodeListParser) -> InlineSurrogateNode:
    return InlineSurrogateNode()


INLINE = """
key: inline
trigger: {type: webhook, path: inline}
nodes:
  - {key: make, type: inline_surrogate_test}
"""


async def test_200_legitimate_deliveries_among_50_bad_ones_are_all_accepted(
    tmp_path: Path,
) -> None:
    async with running_server([INGEST], store=f"sqlite:///{tmp_path}/hookline.db") as server:
        statuses: dict[str, list[int]] = {"good": [], "bad": []}
        details: list[str] = []

        async def send(kind: str, i: int, client: httpx.AsyncClient) -> None:
            body = b'{"n": %d}' % i if kind == "good" else b'{"n": "x\\ud800"}'
            response = await client.post(
                f"/api/webhooks/ingest/t{i}",
                content=body,
                headers={"content-type": "application/json"},
            )
            statuses[kind].append(response.status_code)
            if kind == "bad":
                details.append(assert_problem(response, 400)["detail"])

        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            async with trio.open_nursery() as nursery:
                for i in range(250):
                    nursery.start_soon(send, "bad" if i % 5 == 4 else "good", i, client)

        assert statuses["good"] == [202] * 200
        assert statuses["bad"] == [400] * 50
        assert all("lone surrogate" in detail for detail in details)
        store = server.engine.store
        assert store.statistics().failed_batches == 0
        page = await store.list_executions(workflow="ingest", limit=500)
        assert len(page.items) == 200


async def test_a_node_returning_a_lone_surrogate_fails_its_job_and_execution() -> None:
    async with running_server([SURROGATE]) as server:
        response = await server.client.post("/api/webhooks/odd", json={})
        problem = assert_problem(response, 500)
        execution_id = problem["execution_id"]
        store = server.engine.store
        record = await store.get_execution(execution_id)
        assert record is not None
        assert record.status == "failed"
        [job] = await store.list_jobs(execution_id)
        assert job.status == "failed"
        assert job.error is not None
        assert "cannot be stored" in job.error
        assert "text holds a lone surrogate" in job.error
        # The next node never ran on the bad value.
        assert [j.node for j in await store.list_jobs(execution_id)] == ["make"]


async def test_an_execution_whose_end_cannot_be_stored_is_recorded_failed() -> None:
    async with running_server([INLINE]) as server:
        response = await server.client.post("/api/webhooks/inline", json={})
        assert response.status_code == 202
        store = server.engine.store
        execution_id = response.json()["execution_id"]

        async def ended() -> bool:
            record = await store.get_execution(execution_id)
            return record is not None and record.status not in ("queued", "running")

        with trio.fail_after(5):
            while not await ended():
                await trio.sleep(0.01)
        record = await store.get_execution(execution_id)
        assert record is not None
        assert record.status == "failed"
        assert record.error is not None
        assert "could not be stored" in record.error
        assert "lone surrogate" in record.error
