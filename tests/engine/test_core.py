"""The execution core as plain code: no clock, no store, no trio.

Each test feeds :class:`ExecutionCore` events by hand and checks the commands it
returns: what runs next, what is recorded, retries and their deadlines, loops and
parallel modes, ``end``, cancel, timeouts and resume.
"""

from __future__ import annotations

import random
import textwrap
from typing import Any

import pytest

from hookline import load_workflow_text
from hookline.engine._core import (
    INTERRUPTED,
    CancelJob,
    Command,
    ExecutionCore,
    Finish,
    RunJob,
    SaveRecord,
    SendAnswer,
)
from hookline.nodes._base import NodeResult
from hookline.store._records import JobRecord
from hookline.testing import register_test_nodes

register_test_nodes()


def core(text: str, *, rng: random.Random | None = None) -> ExecutionCore:
    wf = load_workflow_text(textwrap.dedent(text), source="test.yaml")
    roots: dict[str, Any] = {"context": {"data": {"n": 3}}, "env": {}}
    return ExecutionCore("ex-1", wf.nodes, roots, timeout=wf.timeout, rng=rng)


def runs(commands: list[Command]) -> list[str]:
    return [c.job.node.key for c in commands if isinstance(c, RunJob)]


def job(commands: list[Command], key: str) -> Any:
    return next(c.job for c in commands if isinstance(c, RunJob) and c.job.node.key == key)


def records(commands: list[Command]) -> list[tuple[str, str, str, int]]:
    return [
        (c.record.node, c.record.scope, c.record.status, c.record.attempt)
        for c in commands
        if isinstance(c, SaveRecord)
    ]


def finish(commands: list[Command]) -> Finish | None:
    return next((c for c in commands if isinstance(c, Finish)), None)


def run_inline(c: ExecutionCore, commands: list[Command], now: float = 0.0) -> list[Command]:
    """Run every inline job handed out (as the driver would), returning all commands
    that followed, the inline jobs' own included."""
    out = list(commands)
    index = 0
    while index < len(out):
        command = out[index]
        index += 1
        if isinstance(command, RunJob) and getattr(command.job.node.config, "inline", False):
            coroutine = command.job.node.config.run(command.job)
            try:
                coroutine.send(None)
            except StopIteration as stop:
                out += c.job_finished(command.job, "succeeded", stop.value, now=now, wall=now)
    return out


def test_nodes_run_in_order_and_each_is_recorded() -> None:
    c = core(
        """
        key: w
        nodes:
          - {key: a, type: set, values: {x: "{{$context.data.n}}"}}
          - {key: b, type: sleep, duration: 1s}
          - {key: c, type: set, values: {y: "{{$nodes.a.x}}"}}
        """
    )
    first = run_inline(c, c.start(now=0, wall=100))
    assert runs(first) == ["a", "b"]
    assert records(first) == [("a", "", "succeeded", 1)]
    assert c.running == 1  # b waits on the outside
    after = run_inline(
        c, c.job_finished(job(first, "b"), "succeeded", NodeResult(1), now=1, wall=101)
    )
    assert runs(after) == ["c"]
    assert records(after) == [("b", "", "succeeded", 1), ("c", "", "succeeded", 1)]
    end = finish(after)
    assert end is not None
    assert (end.status, end.output) == ("succeeded", {"y": 3})
    assert c.outputs == {"a": {"x": 3}, "b": 1, "c": {"y": 3}}


def test_a_condition_runs_its_branch_in_place_then_the_rest() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: check
            type: condition
            if: {gt: ["{{$context.data.n}}", 2]}
            then: [{key: big, type: set, values: {v: big}}]
            else: [{key: small, type: set, values: {v: small}}]
          - {key: after, type: set, values: {seen: "{{$nodes.big.v}}"}}
        """
    )
    out = run_inline(c, c.start(now=0, wall=0))
    assert runs(out) == ["check", "big", "after"]
    end = finish(out)
    assert end is not None
    assert end.output == {"seen": "big"}


def test_a_failed_attempt_is_retried_after_its_backoff_then_fails_the_execution() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: flaky
            type: sleep
            duration: 1s
            retry: {attempts: 2, backoff: 5s, jitter: false}
        """
    )
    first = c.start(now=0, wall=0)
    out = c.job_finished(job(first, "flaky"), "failed", error="boom", now=1, wall=1)
    assert records(out) == [("flaky", "", "failed", 1)]
    assert runs(out) == []
    assert c.next_deadline() == 6.0  # the backoff, before the workflow's timeout
    assert c.tick(now=5.9, wall=5.9) == []
    second = c.tick(now=6, wall=6)
    assert runs(second) == ["flaky"]
    assert job(second, "flaky").attempt == 2
    out = c.job_finished(job(second, "flaky"), "timed_out", error="slow", now=7, wall=7)
    end = finish(out)
    assert end is not None
    assert (end.status, end.error) == ("failed", "node 'flaky' timed_out: slow")


def test_a_jittered_backoff_follows_the_seeded_random() -> None:
    text = """
        key: w
        nodes:
          - {key: flaky, type: sleep, duration: 1s, retry: {attempts: 3, backoff: 10s}}
        """
    deadlines = []
    for _ in range(2):
        c = core(text, rng=random.Random(7))
        first = c.start(now=0, wall=0)
        c.job_finished(job(first, "flaky"), "failed", error="x", now=0, wall=0)
        deadlines.append(c.next_deadline())
    assert deadlines[0] == deadlines[1]
    assert 0 <= deadlines[0] <= 10


def test_the_workflow_timeout_cancels_what_runs() -> None:
    c = core(
        """
        key: w
        timeout: 10s
        nodes:
          - {key: slow, type: sleep, duration: 1m}
        """
    )
    first = c.start(now=100, wall=0)
    assert c.next_deadline() == 110
    out = c.tick(now=110, wall=10)
    assert [type(x).__name__ for x in out] == ["SaveRecord", "CancelJob", "Finish"]
    assert records(out) == [("slow", "", "cancelled", 1)]
    end = finish(out)
    assert end is not None
    assert end.status == "timed_out"
    # The cancelled job's late report changes nothing.
    assert c.job_finished(job(first, "slow"), "succeeded", NodeResult(1), now=111, wall=11) == []


def test_a_cancel_stops_running_jobs_and_pending_retries() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: both
            type: parallel
            branches:
              - [{key: one, type: sleep, duration: 1s}]
              - [{key: two, type: sleep, duration: 1s, retry: {attempts: 3, backoff: 1s}}]
        """
    )
    first = c.start(now=0, wall=0)
    assert runs(first) == ["one", "two"]
    c.job_finished(job(first, "two"), "failed", error="x", now=0, wall=0)
    out = c.cancel(wall=1)
    assert [j.job.node.key for j in out if isinstance(j, CancelJob)] == ["one"]
    assert records(out) == [("one", "", "cancelled", 1), ("both", "", "cancelled", 1)]
    end = finish(out)
    assert end is not None
    assert (end.status, end.error) == ("cancelled", "cancelled on request")
    assert c.next_deadline() == c.deadline  # no retry left


def test_loop_iterations_run_with_their_scope_and_collect_results() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: each
            type: loop
            items: [10, 20]
            body: [{key: double, type: set, values: {v: "{{$scopes.each.item}}"}}]
        """
    )
    out = run_inline(c, c.start(now=0, wall=0))
    assert records(out) == [
        ("double", "each[0]", "succeeded", 1),
        ("double", "each[1]", "succeeded", 1),
        ("each", "", "succeeded", 1),
    ]
    end = finish(out)
    assert end is not None
    assert end.output == [{"v": 10}, {"v": 20}]


def test_a_failing_iteration_cancels_the_others_and_fails_the_loop() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: each
            type: loop
            items: 3
            concurrency: 3
            body: [{key: work, type: sleep, duration: 1s}]
        """
    )
    first = c.start(now=0, wall=0)
    jobs = [cmd.job for cmd in first if isinstance(cmd, RunJob)]
    assert [j.scope for j in jobs] == ["each[0]", "each[1]", "each[2]"]
    out = c.job_finished(jobs[1], "failed", error="boom", now=1, wall=1)
    assert records(out) == [
        ("work", "each[1]", "failed", 1),
        ("work", "each[0]", "cancelled", 1),
        ("work", "each[2]", "cancelled", 1),
        ("each", "", "failed", 1),
    ]
    end = finish(out)
    assert end is not None
    assert end.error == "node 'each' failed: node 'work' failed: boom"


@pytest.mark.parametrize(
    ("mode", "winner", "status"),
    [("any", "b", "succeeded"), ("race", "a", "failed"), ("all", "a", "failed")],
)
def test_parallel_modes_decide_on_the_first_reports(mode: str, winner: str, status: str) -> None:
    c = core(
        f"""
        key: w
        nodes:
          - key: p
            type: parallel
            mode: {mode}
            branches:
              - [{{key: a, type: sleep, duration: 1s}}]
              - [{{key: b, type: sleep, duration: 1s}}]
              - [{{key: c, type: sleep, duration: 1s}}]
        """
    )
    first = c.start(now=0, wall=0)
    out = c.job_finished(job(first, "a"), "failed", error="no", now=1, wall=1)
    out += c.job_finished(job(first, "b"), "succeeded", NodeResult("B"), now=2, wall=2)
    end = finish(out)
    assert end is not None
    assert end.status == status
    if status == "succeeded":
        assert end.output == "B"
        assert ("c", "", "cancelled", 1) in records(out)
    assert winner in (end.error or "") or end.output == "B"


def test_an_end_inside_a_loop_ends_the_execution_and_cancels_the_rest() -> None:
    c = core(
        """
        key: w
        nodes:
          - key: each
            type: loop
            items: 2
            concurrency: 2
            body:
              - key: pick
                type: condition
                if: {equal: ["{{$scopes.each.index}}", 1]}
                then: [{key: stop, type: end, output: done}]
                else: [{key: wait, type: sleep, duration: 1m}]
        """
    )
    out = run_inline(c, c.start(now=0, wall=0))
    end = finish(out)
    assert end is not None
    assert (end.status, end.output) == ("succeeded", "done")
    assert ("wait", "each[0]", "cancelled", 1) in records(out)
    assert ("each", "", "cancelled", 1) in records(out)


def test_a_response_answers_once_and_the_workflow_goes_on() -> None:
    c = core(
        """
        key: w
        nodes:
          - {key: r1, type: response, status: 201, body: first}
          - {key: r2, type: response, status: 202, body: second}
        """
    )
    out = run_inline(c, c.start(now=0, wall=0))
    answers = [cmd.answer for cmd in out if isinstance(cmd, SendAnswer)]
    assert [a.status for a in answers] == [201]
    assert finish(out) is not None


def test_a_resumed_execution_reuses_succeeded_jobs_and_closes_interrupted_ones() -> None:
    c = core(
        """
        key: w
        nodes:
          - {key: a, type: sleep, duration: 1s}
          - {key: b, type: delay, duration: 1m}
        """
    )
    stored = [
        JobRecord("ex-1", "a", "sleep", "succeeded", 1, 0.0, 1.0, output="A"),
        JobRecord("ex-1", "b", "delay", "running", 1, 1.0, output={"until": 3601.0}),
    ]
    out = c.start(stored, now=0, wall=50)
    assert runs(out) == ["b"]
    assert c.outputs["a"] == "A"
    (closed,) = [cmd.record for cmd in out if isinstance(cmd, SaveRecord)]
    assert (closed.status, closed.error, closed.finished_at) == ("cancelled", INTERRUPTED, 50)
    resumed = job(out, "b")
    assert (resumed.attempt, resumed.checkpointed) == (2, {"until": 3601.0})


def test_a_report_that_is_not_a_node_result_fails_the_job() -> None:
    c = core(
        """
        key: w
        nodes:
          - {key: odd, type: sleep, duration: 1s}
        """
    )
    first = c.start(now=0, wall=0)
    out = c.job_finished(job(first, "odd"), "succeeded", {"a": 1}, now=0, wall=0)  # type: ignore[arg-type]
    end = finish(out)
    assert end is not None
    assert end.error == "node 'odd' failed: the node returned dict, not a NodeResult"
