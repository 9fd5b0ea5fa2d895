"""Per-node retry: attempts recorded one by one, exponential backoff with jitter,
retry_on, the parse of the common `retry` field, and node types that own `retry`."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from typing import ClassVar

import attrs
import pytest
import trio
import trio.testing

from hookline.definition import Fields
from hookline.engine._definition import Workflow
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import Job, NodeResult, NodeSpec, RetryPolicy
from hookline.nodes._registry import NodeListParser, register
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


@attrs.frozen
class FlakyNode:
    """Fails its first ``failures`` attempts, then succeeds with the attempt number."""

    failures: int

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        await trio.lowlevel.checkpoint()
        if job.attempt <= self.failures:
            raise NodeError(f"attempt {job.attempt} broke")
        return NodeResult(output={"attempt": job.attempt})


@attrs.frozen
class OwnRetryNode:
    """A node type that reads `retry` itself (as the http node does)."""

    retries: int
    handles_retry: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        return NodeResult(output=self.retries)


@register("flaky")
def _parse_flaky(fields: Fields, nodes: NodeListParser) -> FlakyNode:
    return FlakyNode(failures=fields.integer("failures", 0, low=0))


@register("own_retry")
def _parse_own_retry(fields: Fields, nodes: NodeListParser) -> OwnRetryNode:
    return OwnRetryNode(retries=fields.integer("retry", 0))


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


def flaky(failures: int, retry: str) -> Workflow:
    return workflow(
        f"""
        key: flaky
        nodes:
          - {{key: call, type: flaky, failures: {failures}, retry: {retry}}}
        """
    )


async def run(
    wf: Workflow, make_store: StoreFactory
) -> tuple[str, object, str | None, float, list[tuple[int, str]]]:
    store = make_store()
    async with open_engine([wf], store=store) as engine:
        started = trio.current_time()
        outcome = await engine.run(wf.key)
        elapsed = trio.current_time() - started
        jobs = await store.list_jobs(outcome.execution_id)
    attempts: list[tuple[int, str]] = [(j.attempt, j.status) for j in jobs]
    return outcome.status, outcome.output, outcome.error, elapsed, attempts


async def test_a_failed_job_is_retried_with_backoff_and_each_attempt_is_recorded(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, output, _, elapsed, attempts = await run(
        flaky(2, "{attempts: 3, backoff: 1s, jitter: false}"), make_store
    )
    assert (status, output) == ("succeeded", {"attempt": 3})
    assert attempts == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    # Waited 1 s after attempt 1, then 2 s after attempt 2.
    assert elapsed == pytest.approx(3.0)


async def test_when_every_attempt_fails_the_execution_fails_with_the_last_error(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, _, error, _, attempts = await run(flaky(5, "{attempts: 3, backoff: 10ms}"), make_store)
    assert status == "failed"
    assert error == "node 'call' failed: attempt 3 broke"
    assert attempts == [(1, "failed"), (2, "failed"), (3, "failed")]


async def test_the_wait_doubles_up_to_max_backoff(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    _, _, _, elapsed, attempts = await run(
        flaky(3, "{attempts: 4, backoff: 10s, max_backoff: 15s, jitter: false}"), make_store
    )
    assert attempts[-1] == (4, "succeeded")
    assert elapsed == pytest.approx(10 + 15 + 15)


async def test_a_bare_number_is_the_attempts(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    status, _, _, elapsed, attempts = await run(flaky(1, "2"), make_store)
    assert (status, attempts) == ("succeeded", [(1, "failed"), (2, "succeeded")])
    assert elapsed <= 1.0  # full jitter: somewhere within the first backoff


async def test_only_the_statuses_in_retry_on_are_retried(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    status, _, _, _, attempts = await run(
        flaky(1, "{attempts: 3, retry_on: [timed_out]}"), make_store
    )
    assert (status, attempts) == ("failed", [(1, "failed")])
    slow = workflow(
        """
        key: slow
        nodes:
          - {key: nap, type: sleep, duration: 10s, timeout: 1s, retry: {attempts: 2, backoff: 0s}}
        """
    )
    status, _, error, elapsed, attempts = await run(slow, make_store)
    assert attempts == [(1, "timed_out"), (2, "timed_out")]
    assert error == "node 'nap' timed_out: timed out after 1s"
    assert elapsed == pytest.approx(2.0)


async def test_retries_in_a_loop_are_counted_per_iteration(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    looped = workflow(
        """
        key: looped
        nodes:
          - key: each
            type: loop
            items: 2
            body:
              - {key: call, type: flaky, failures: 1, retry: {attempts: 2, backoff: 0s}}
        """
    )
    store = make_store()
    async with open_engine([looped], store=store) as engine:
        outcome = await engine.run("looped")
        jobs = await store.list_jobs(outcome.execution_id)
    assert outcome.output == [{"attempt": 2}, {"attempt": 2}]
    assert [(j.scope, j.attempt, j.status) for j in jobs if j.node == "call"] == [
        ("each[0]", 1, "failed"),
        ("each[0]", 2, "succeeded"),
        ("each[1]", 1, "failed"),
        ("each[1]", 2, "succeeded"),
    ]


async def test_cancelling_during_the_backoff_ends_the_execution_at_once(
    autojump_clock: trio.testing.MockClock,
    make_store: StoreFactory,
) -> None:
    store = make_store()
    # No jitter: a random part of the minute could end before the cancel comes.
    retry = "{attempts: 5, backoff: 1m, jitter: false}"
    async with open_engine([flaky(5, retry)], store=store) as engine:
        admission = await engine.submit("flaky")
        assert admission.handle is not None
        await trio.sleep(1)
        await engine.cancel(admission.execution_id)
        cancelled_at = trio.current_time()
        outcome = await admission.handle.wait_finished()
        waited = trio.current_time() - cancelled_at
        jobs = await store.list_jobs(admission.execution_id)
    assert outcome.status == "cancelled"
    assert waited < 0.1
    assert [(j.attempt, j.status) for j in jobs] == [(1, "failed")]


def test_full_jitter_waits_a_random_part_of_the_backoff() -> None:
    policy = RetryPolicy(attempts=5, backoff=1.0, max_backoff=8.0)
    rng = random.Random(7)
    waits = [policy.delay(attempt, rng) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]
    ceilings = [min(8.0, 2.0 ** (attempt - 1)) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert len(set(waits)) == len(waits)
    steady = attrs.evolve(policy, jitter=False)
    assert [steady.delay(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_the_retry_field_is_parsed_into_the_node_spec() -> None:
    wf = flaky(
        0, "{attempts: 4, backoff: 250ms, max_backoff: 2s, jitter: false, retry_on: [failed]}"
    )
    assert wf.nodes[0].retry == RetryPolicy(
        attempts=4, backoff=0.25, max_backoff=2.0, jitter=False, retry_on=frozenset({"failed"})
    )
    assert flaky(0, "null").nodes[0].retry is None


@pytest.mark.parametrize(
    ("retry", "where"),
    [
        ("{retry_on: [cancelled]}", "nodes[0].retry.retry_on[0]"),
        ("{attempts: 0}", "nodes[0].retry.attempts"),
        ("{backoff: soon}", "nodes[0].retry.backoff"),
        ("{tries: 3}", "nodes[0].retry.tries"),
        ("[3]", "nodes[0].retry"),
    ],
)
def test_a_bad_retry_is_refused_at_load(retry: str, where: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        flaky(0, retry)
    assert caught.value.path == where


def test_a_node_type_that_handles_retry_keeps_the_field_for_itself() -> None:
    wf = workflow("key: own\nnodes: [{key: n, type: own_retry, retry: 7}]\n")
    node = wf.nodes[0]
    assert node.retry is None
    assert node.config == OwnRetryNode(retries=7)
