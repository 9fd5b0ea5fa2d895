"""on_failure: a failed execution starts the workflow its definition names, with the
failed execution's id, error and context; that one failing never loops."""

from __future__ import annotations

import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._answers import ExecutionOutcome
from hookline.engine._definition import Workflow
from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import load_workflow_text
from hookline.engine._on_failure import FAILED_HEADER, failure_start
from hookline.errors import DefinitionError
from hookline.store._records import ExecutionRecord
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def workflow(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), source="test.yaml")


FLAKY = workflow(
    """
    key: flaky
    on_failure: errors
    nodes:
      - key: check
        type: condition
        if: {gt: ["{{$context.data.n}}", 0]}
        else:
          - {key: boom, type: fail, message: "n must be positive"}
    """
)
ERRORS = workflow(
    """
    key: errors
    on_failure: errors
    nodes:
      - key: again
        type: condition
        if: {equal: ["{{$context.data.context.data.n}}", -2]}
        then:
          - {key: boom, type: fail, message: "the error workflow fails too"}
      - key: note
        type: set
        values:
          failed: "{{$context.data.execution_id}}"
          error: "{{$context.data.error}}"
          n: "{{$context.data.context.data.n}}"
    """
)


async def executions_of(engine: Engine, key: str, count: int) -> list[ExecutionRecord]:
    with trio.fail_after(30):
        while True:
            page = await engine.store.list_executions(workflow=key, limit=10)
            finished = [r for r in page.items if r.status not in ("queued", "running")]
            if len(finished) >= count:
                return finished
            await trio.sleep(0.1)


async def test_a_failed_execution_starts_its_on_failure_workflow_with_its_details(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([FLAKY, ERRORS], store=make_store()) as engine:
        fine = await engine.run("flaky", data={"n": 1})
        failed = await engine.run("flaky", data={"n": -1})
        (relayed,) = await executions_of(engine, "errors", 1)
        await trio.sleep(5)  # nothing more comes: the success started nothing
        assert len((await engine.store.list_executions(workflow="errors", limit=10)).items) == 1
    assert fine.status == "succeeded"
    assert failed.status == "failed"
    assert relayed.status == "succeeded"
    assert relayed.output == {"failed": failed.execution_id, "error": failed.error, "n": -1}
    assert relayed.context["headers"][FAILED_HEADER] == failed.execution_id


async def test_an_error_workflow_that_fails_starts_nothing_more(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine([FLAKY, ERRORS], store=make_store()) as engine:
        await engine.run("flaky", data={"n": -2})
        (relayed,) = await executions_of(engine, "errors", 1)
        await trio.sleep(5)
        page = await engine.store.list_executions(workflow="errors", limit=10)
    assert relayed.status == "failed"
    assert len(page.items) == 1


def test_the_decision_skips_what_on_failure_started() -> None:
    outcome = ExecutionOutcome("ex-2", "errors", "failed", None, "boom")
    started = ExecutionRecord.__new__(ExecutionRecord)
    object.__setattr__(started, "context", {"headers": {FAILED_HEADER: "ex-1"}})
    assert failure_start("errors", outcome, started) is None
    plain = failure_start("errors", outcome, None)
    assert plain is not None
    assert plain.data["execution_id"] == "ex-2"
    assert plain.headers == {FAILED_HEADER: "ex-2"}


def test_on_failure_must_name_a_workflow_key() -> None:
    with pytest.raises(DefinitionError, match="on_failure"):
        workflow("key: a\non_failure: Not A Key\nnodes: [{key: s, type: set, values: {}}]\n")
