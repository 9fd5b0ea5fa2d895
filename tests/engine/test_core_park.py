"""Parking in the execution core, as plain code: a ``wait`` suspends its job, and the
core parks once nothing else runs or is due; a resumed core replays the branch the
claimed wait recorded."""

from __future__ import annotations

import textwrap
from typing import Any

from hookline import load_workflow_text
from hookline.engine._core import Command, ExecutionCore, Park, RunJob, SaveRecord
from hookline.nodes._base import NodeResult, NodeServices
from hookline.store._records import JobRecord, JobStatus

WALL = 1_000.0

APPROVAL = """
key: approval
timeout: 2h
nodes:
  - {key: ask, type: set, values: {ticket: "{{$context.data.ticket}}"}}
  - key: both
    type: parallel
    mode: all
    branches:
      - - key: answer
          type: wait
          event: reactions
          match: "{{$nodes.ask.ticket}}"
          timeout: 1h
          then: [{key: approved, type: set, values: {by: "{{$nodes.answer.data.user}}"}}]
          timed_out: [{key: expired, type: set, values: {expired: true}}]
      - - {key: slow, type: http, url: "http://127.0.0.1:9/"}
"""


def core() -> ExecutionCore:
    wf = load_workflow_text(textwrap.dedent(APPROVAL), source="approval.yaml")
    roots: dict[str, Any] = {"context": {"data": {"ticket": "T-1"}}, "env": {}}
    services = NodeServices(clock=lambda: WALL)
    return ExecutionCore("ex-1", wf.nodes, roots, timeout=wf.timeout, services=services)


def drive(c: ExecutionCore, commands: list[Command]) -> list[Command]:
    """Run the inline jobs handed out (as the driver does), keeping every command."""
    out = list(commands)
    index = 0
    while index < len(out):
        command = out[index]
        index += 1
        if isinstance(command, RunJob) and command.job.node.type in ("set", "wait"):
            coroutine = command.job.node.config.run(command.job)
            try:
                coroutine.send(None)
            except StopIteration as stop:
                out += c.job_finished(command.job, "succeeded", stop.value, now=0.0, wall=WALL)
    return out


def test_the_core_parks_only_once_nothing_else_runs() -> None:
    c = core()
    commands = drive(c, c.start(now=0.0, wall=WALL))
    # The wait suspended (its job stays running, its checkpoint saved), but the http
    # branch still runs: no park yet.
    saved = [cmd.record for cmd in commands if isinstance(cmd, SaveRecord)]
    wait = next(r for r in saved if r.node == "answer")
    assert (wait.status, wait.finished_at) == ("running", None)
    assert wait.output == {
        "until": WALL + 3600,
        "since": WALL,
        "event": "reactions",
        "match": "T-1",
    }
    assert not any(isinstance(cmd, Park) for cmd in commands)
    assert c.parked is None
    slow = next(
        cmd.job for cmd in commands if isinstance(cmd, RunJob) and cmd.job.node.key == "slow"
    )
    after = c.job_finished(slow, "succeeded", NodeResult(output={"ok": 1}), now=1.0, wall=WALL)
    [park] = [cmd for cmd in after if isinstance(cmd, Park)]
    [(job, suspend)] = park.waits
    assert (job.node.key, suspend.event, suspend.match, suspend.until) == (
        "answer",
        "reactions",
        "T-1",
        WALL + 3600,
    )
    assert c.finished is None


def test_a_cancel_while_parked_records_the_wait_cancelled() -> None:
    c = core()
    commands = drive(c, c.start(now=0.0, wall=WALL))
    slow = next(
        cmd.job for cmd in commands if isinstance(cmd, RunJob) and cmd.job.node.key == "slow"
    )
    c.job_finished(slow, "succeeded", NodeResult(output={}), now=1.0, wall=WALL)
    cancelled = c.cancel(wall=WALL + 5)
    statuses = {
        cmd.record.node: cmd.record.status for cmd in cancelled if isinstance(cmd, SaveRecord)
    }
    assert statuses["answer"] == "cancelled"
    assert c.finished is not None
    assert c.finished.status == "cancelled"


def _record(node: str, status: JobStatus, output: Any, type: str = "set") -> JobRecord:
    return JobRecord(
        "ex-1",
        node,
        type,
        status,
        1,
        WALL,
        WALL + 1,
        output,
    )


def test_a_resumed_core_replays_the_branch_the_claimed_wait_recorded() -> None:
    event = {"data": {"user": "U7"}}
    records = [
        _record("ask", "succeeded", {"ticket": "T-1"}),
        _record("answer", "succeeded", event, type="wait"),
        _record("slow", "succeeded", {}, type="http"),
    ]
    c = core()
    commands = drive(c, c.start(records, now=0.0, wall=WALL + 10))
    assert c.finished is not None
    assert c.finished.output == [{"by": "U7"}, {}]
    assert not any(isinstance(cmd, Park) for cmd in commands)


def test_a_resumed_core_past_the_deadline_takes_timed_out_without_parking() -> None:
    checkpoint = {"until": WALL - 1, "since": WALL - 3601, "event": "reactions", "match": "T-1"}
    records = [
        _record("ask", "succeeded", {"ticket": "T-1"}),
        _record("answer", "running", checkpoint, type="wait"),
        _record("slow", "succeeded", {}, type="http"),
    ]
    c = core()
    commands = drive(c, c.start(records, now=0.0, wall=WALL))
    assert c.finished is not None
    assert c.finished.output == [{"expired": True}, {}]
    assert not any(isinstance(cmd, Park) for cmd in commands)
