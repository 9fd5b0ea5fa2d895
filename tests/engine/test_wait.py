"""The ``wait`` node: an execution pauses until a matching event (a delivery of
another workflow that correlates on the same value) arrives, or times out."""

from __future__ import annotations

import textwrap

import pytest
import trio
import trio.testing

from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError
from hookline.store._records import FINISHED_STATUSES
from tests.conftest import StoreFactory

APPROVAL = """
key: approval
timeout: 2d
nodes:
  - key: ask
    type: set
    values: {ticket: "{{$context.data.ticket}}"}
  - key: answer
    type: wait
    event: reactions
    match: "{{$context.data.ticket}}"
    timeout: 1d
    then:
      - {key: approved, type: set, values: {by: "{{$nodes.answer.data.user}}"}}
    timed_out:
      - {key: expired, type: set, values: {expired: true}}
"""

REACTIONS = """
key: reactions
trigger: {path: slack/reactions, correlate: "{{$context.data.ticket}}"}
nodes:
  - {key: seen, type: set, values: {ticket: "{{$context.data.ticket}}"}}
"""


def definitions() -> list:  # type: ignore[type-arg]
    return [
        load_workflow_text(textwrap.dedent(text), source=f"{n}.yaml")
        for n, text in enumerate([APPROVAL, REACTIONS])
    ]


async def test_a_wait_takes_then_with_the_event_that_matches_it(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine(definitions(), store=make_store()) as engine:
        first = await engine.submit("approval", data={"ticket": "T-1"})
        second = await engine.submit("approval", data={"ticket": "T-2"})
        await trio.sleep(3600)  # an hour passes: both wait
        assert engine.events.statistics().waiting == 2
        await engine.submit("reactions", data={"ticket": "T-1", "user": "U7"})
        assert first.handle is not None
        outcome = await first.handle.wait_finished()
        assert outcome.succeeded
        assert outcome.output == {"by": "U7"}
        assert engine.events.statistics().waiting == 1
        # An event nobody waits for is counted as unmatched, and runs its own nodes.
        await engine.submit("reactions", data={"ticket": "T-404", "user": "U7"})
        assert engine.events.statistics().unmatched == 1
        # The other one times out after its day.
        assert second.handle is not None
        timed_out = await second.handle.wait_finished()
        assert timed_out.output == {"expired": True}
        jobs = {job.node: job for job in await engine.store.list_jobs(second.execution_id)}
        assert jobs["answer"].output == {"timed_out": True}


async def test_an_event_accepted_while_the_wait_was_stopped_still_reaches_it(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    approval, reactions = definitions()
    async with open_engine([approval, reactions], store=make_store()) as engine:
        waiting = await engine.submit("approval", data={"ticket": "T-9"})
        await trio.sleep(60)
        assert engine.events.statistics().waiting == 1
    # Stopped while it waited. The event is accepted meanwhile, by an engine that does
    # not run the approval workflow (another process, or this one before it resumed).
    async with open_engine([reactions], store=make_store()) as engine:
        await engine.submit("reactions", data={"ticket": "T-9", "user": "U1"})
        await engine.submit("reactions", data={"ticket": "T-8", "user": "U2"})
    # The event ended the wait (in the store); the execution, queued again, resumes
    # with the next start that runs its workflow.
    async with open_engine([approval, reactions], store=make_store()) as engine:
        record = await engine.store.get_execution(waiting.execution_id)
        while record is not None and record.status not in FINISHED_STATUSES:
            await trio.sleep(1)
            record = await engine.store.get_execution(waiting.execution_id)
        assert record is not None
        assert record.output == {"by": "U1"}


def test_a_wait_longer_than_its_workflow_is_refused() -> None:
    text = APPROVAL.replace("timeout: 2d", "timeout: 1h")
    with pytest.raises(DefinitionError) as error:
        load_workflow_text(textwrap.dedent(text), source="approval.yaml")
    assert error.value.path == "nodes[1].timeout"


async def test_a_parked_execution_holds_no_task_slot_or_handle(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine(definitions(), store=make_store()) as engine:
        admissions = [await engine.submit("approval", data={"ticket": f"T-{n}"}) for n in range(3)]
        await trio.sleep(60)
        stats = engine.workflow_statistics("approval")
        assert stats is not None
        assert (stats.running, stats.completed, stats.queue.depth) == (0, 0, 0)
        supervisor = engine._workflows.supervisors["approval"]
        assert supervisor.runner.handles == {}  # nothing of it is live in the runner
        for admission in admissions:
            record = await engine.store.get_execution(admission.execution_id)
            assert record is not None
            assert record.status == "waiting"
        waiting_for = engine.waiting_for(admissions[0].execution_id)
        assert waiting_for is not None
        assert "reactions (T-0)" in waiting_for
        assert engine.events.statistics().waiting == 3


async def test_a_cancel_reaches_a_parked_execution(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    async with open_engine(definitions(), store=make_store()) as engine:
        admission = await engine.submit("approval", data={"ticket": "T-1"})
        await trio.sleep(60)
        assert await engine.cancel(admission.execution_id)
        assert admission.handle is not None
        outcome = await admission.handle.wait_finished()
        assert outcome.status == "cancelled"
        jobs = {
            job.node: job.status for job in await engine.store.list_jobs(admission.execution_id)
        }
        assert jobs["answer"] == "cancelled"
        assert engine.events.statistics().waiting == 0
        # Its wait is gone: the event reaches nothing now.
        await engine.submit("reactions", data={"ticket": "T-1", "user": "U7"})
        assert engine.events.statistics().unmatched == 1


async def test_cancel_on_reaches_a_parked_execution(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    cancels = APPROVAL.replace(
        "timeout: 2d\n",
        "timeout: 2d\ncancel_on: [{event: withdrawn, match: '{{$context.data.ticket}}'}]\n",
    )
    withdrawn = """
    key: withdrawn
    trigger: {path: withdrawn, correlate: "{{$context.data.ticket}}"}
    nodes: [{key: seen, type: set, values: {ok: true}}]
    """
    workflows = [
        load_workflow_text(textwrap.dedent(text), source=f"{n}.yaml")
        for n, text in enumerate([cancels, REACTIONS, withdrawn])
    ]
    async with open_engine(workflows, store=make_store()) as engine:
        admission = await engine.submit("approval", data={"ticket": "T-5"})
        restarted = await engine.submit("approval", data={"ticket": "T-6"})
        await trio.sleep(60)
        await engine.submit("withdrawn", data={"ticket": "T-5"})
        assert admission.handle is not None
        outcome = await admission.handle.wait_finished()
        assert outcome.status == "cancelled"
        assert outcome.error == "cancelled by an event of withdrawn (T-5)"
    # Parked before a restart: the event still finds it (its cancel keys are stored).
    async with open_engine(workflows, store=make_store()) as engine:
        await engine.submit("withdrawn", data={"ticket": "T-6"})
        record = await engine.store.get_execution(restarted.execution_id)
        while record is not None and record.status not in FINISHED_STATUSES:
            await trio.sleep(1)
            record = await engine.store.get_execution(restarted.execution_id)
        assert record is not None
        assert (record.status, record.error) == (
            "cancelled",
            "cancelled by an event of withdrawn (T-6)",
        )


async def test_a_sync_execution_that_parks_answers_202_with_its_location(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    sync = APPROVAL.replace("timeout: 2d\n", "timeout: 2d\ntrigger: {mode: sync}\n")
    workflows = [load_workflow_text(textwrap.dedent(sync), source="approval.yaml")]
    async with open_engine(workflows, store=make_store()) as engine:
        admission = await engine.submit("approval", data={"ticket": "T-1"})
        assert admission.handle is not None
        answer = await admission.handle.wait_answer()
        assert answer.status == 202
        assert ("location", f"/api/executions/{admission.execution_id}") in answer.headers
        assert b'"waiting"' in answer.body
