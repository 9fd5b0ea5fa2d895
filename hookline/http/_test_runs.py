"""Test runs: a test delivery sent to a draft or a saved definition, from the UI.

A test run loads the definition with the test-run node types
(:mod:`hookline.engine._test_run`): outside nodes live, or answered from a recorded
execution's job outputs. It runs in an engine of its own, with an in-memory store, so
its execution is a test by construction: it never enters the server's records, metrics
or success rates, and its collection writes go to that store alone. The UI shows its
node tree filling in while it runs; the last :data:`KEEP` runs are kept in memory.

A delivery's ``verify`` checks run unless the run is asked to skip them (a recorded
delivery's secret headers are redacted: it needs ``skip_verify``).
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import trio

from .._ids import new_id
from ..engine._answers import finished_answer
from ..engine._definition import Workflow
from ..engine._delivery import Delivery
from ..engine._engine import Engine, open_engine
from ..engine._test_run import (
    CODE_TYPES,
    COLLECTION_READS,
    COLLECTION_WRITES,
    OUTSIDE_TYPES,
    Recorded,
    Recording,
    load_for_test,
)
from ..errors import HooklineError, NotFound
from ..store._records import Answer, ExecutionRecord, JobRecord
from ..verify import SignedRequest
from ._body import parse_body

__all__ = ["KEEP", "TestDelivery", "TestRun", "TestRuns", "test_runs"]

KEEP = 50
ANSWERABLE = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS | CODE_TYPES


@attrs.frozen
class TestDelivery:
    """What a test run sends: a method, headers (lower-case names) and a raw body."""

    __test__ = False  # not a pytest class

    method: str = "POST"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    query: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define
class TestRun:
    """One test run, while it runs and after. ``answered_from`` is the execution whose
    job outputs answered its outside nodes (None: they ran live)."""

    __test__ = False  # not a pytest class

    id: str
    workflow: Workflow
    started_at: float
    answered_from: str | None
    skip_verify: bool
    status: Literal["running", "succeeded", "failed", "cancelled", "timed_out", "refused"] = (
        "running"
    )
    execution_id: str | None = None
    error: str | None = None
    answer: Answer | None = None
    record: ExecutionRecord | None = None
    jobs: tuple[JobRecord, ...] = ()
    engine: Engine | None = None

    async def snapshot(self) -> tuple[str, ExecutionRecord | None, tuple[JobRecord, ...]]:
        """The run's status, its execution's record and its jobs now (read live while it
        runs). The status is read first: a run that ends meanwhile still reads running,
        so a page never shows it ended with the jobs of a moment before."""
        status = self.status
        engine = self.engine
        if engine is not None and self.execution_id is not None:
            try:
                record = await engine.store.get_execution(self.execution_id)
                jobs = tuple(await engine.store.list_jobs(self.execution_id))
            except HooklineError:
                return status, self.record, self.jobs
            return status, record, jobs
        return status, self.record, self.jobs


def recorded_answers(jobs: list[JobRecord]) -> dict[tuple[str, str], Recorded]:
    """The last attempt of each answerable node of a recorded execution."""
    found: dict[tuple[str, str], Recorded] = {}
    for job in jobs:
        if job.type in ANSWERABLE and job.status != "running":
            found[(job.node, job.scope)] = Recorded(job.status, job.output, job.error)
    return found


class TestRuns:
    """The test runs of one server, newest last, at most :data:`KEEP`."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.runs: collections.OrderedDict[str, TestRun] = collections.OrderedDict()

    def get(self, run_id: str) -> TestRun | None:
        return self.runs.get(run_id)

    async def start(
        self,
        nursery: trio.Nursery,
        engine: Engine,
        text: str,
        delivery: TestDelivery,
        *,
        answered_from: str | None = None,
        skip_verify: bool = False,
    ) -> TestRun:
        """Load ``text`` and start the run in ``nursery``. Raises DefinitionError for a
        draft that does not load, NotFound for an unknown ``answered_from``."""
        jobs: dict[tuple[str, str], Recorded] = {}
        if answered_from is not None:
            jobs = recorded_answers(list(await engine.store.list_jobs(answered_from)))
            if not jobs and await engine.store.get_execution(answered_from) is None:
                raise NotFound(f"there is no execution {answered_from}")
        # Code computes from the execution's variables: it runs, unless nothing is answered.
        live = CODE_TYPES if answered_from is not None else ANSWERABLE
        recording = Recording(jobs, live=live)
        workflow = load_for_test(
            text,
            recording,
            source="test-run",
            env=os.environ,
            answer=ANSWERABLE,
            nodes=dict(engine.nodes),
        )
        run = TestRun(
            id=new_id(),
            workflow=workflow,
            started_at=time.time(),
            answered_from=answered_from,
            skip_verify=skip_verify,
        )
        self.runs[run.id] = run
        while len(self.runs) > KEEP:
            self.runs.popitem(last=False)
        nursery.start_soon(self._run, run, engine, delivery)
        return run

    async def _run(self, run: TestRun, main: Engine, sent: TestDelivery) -> None:
        workflow = run.workflow
        try:
            delivery = _delivery(workflow, sent, skip_verify=run.skip_verify)
        except HooklineError as exc:
            run.status, run.error = "refused", str(exc)
            return
        services = main.services
        async with open_engine(
            [workflow],
            env=main.env,
            nodes=main.nodes,
            http_allow_hosts=services.http_allow_hosts,
            smtp=services.smtp,
        ) as engine:
            run.engine = engine
            try:
                admission = await engine.accept(delivery)
            except HooklineError as exc:
                run.status, run.error, run.engine = "refused", str(exc), None
                return
            run.execution_id = admission.execution_id
            handle = admission.handle
            if handle is not None:
                with trio.move_on_after(workflow.timeout + 10):
                    outcome = await handle.wait_finished()
                    run.answer = admission.answer or handle.answer
                    if run.answer is None and workflow.trigger.mode == "sync":
                        run.answer = finished_answer(outcome)
            _, run.record, run.jobs = await run.snapshot()
            run.status = run.record.status if run.record is not None else "failed"  # type: ignore[assignment]
            run.error = run.record.error if run.record is not None else "the run was lost"
            run.engine = None


def _delivery(workflow: Workflow, sent: TestDelivery, *, skip_verify: bool) -> Delivery:
    """The delivery of a test: verified (unless skipped) and parsed as the webhook
    route would. Raises Rejected (verify) or MalformedBody."""
    headers = {name.lower(): value for name, value in sent.headers.items()}
    content_type = headers.get("content-type")
    claims = None
    verification = workflow.trigger.verification
    if verification.checks and not skip_verify:
        signed = SignedRequest(
            method=sent.method,
            url=f"http://test/api/webhooks/{workflow.trigger.path}",
            headers=headers,
            body=sent.body,
            client_ip="127.0.0.1",
        )
        claims = verification.verify(signed, time.time()).claims
    parsed = parse_body(sent.body, content_type)
    return Delivery(
        id=new_id(),
        workflow=workflow.key,
        received_at=time.time(),
        method=sent.method,
        path=workflow.trigger.path,
        headers=headers,
        query=dict(sent.query),
        body=sent.body,
        data=parsed.data,  # type: ignore[arg-type]
        text=sent.body.decode("utf-8", "replace"),
        files=parsed.files,
        remote_addr="test",
        jwt=claims,
        secret_headers=verification.secret_headers,
    )


def test_runs(config: dict[str, Any]) -> TestRuns:
    """The app's test runs (made on first use)."""
    runs = config.get("HOOKLINE_TEST_RUNS")
    if not isinstance(runs, TestRuns):
        runs = config["HOOKLINE_TEST_RUNS"] = TestRuns()
    return runs
