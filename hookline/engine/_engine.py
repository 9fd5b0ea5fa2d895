"""The Engine: the root actor. Owns the store actor and one WorkflowSupervisor per
enabled workflow; admits deliveries; resumes what a previous run left unfinished;
replays and retries executions for operators; prunes old records; shuts down within a
deadline."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from .._ids import new_id
from ..errors import (
    DefinitionError,
    ExecutionConflict,
    NotFound,
    Rejected,
    StoreClosed,
    Unavailable,
    WorkflowNotFound,
)
from ..http._router import Router
from ..nodes._base import NodeServices
from ..nodes._ssrf import new_http_client
from ..store._collection_service import CollectionService
from ..store._ops import RecordDelivery, SaveWorkflow
from ..store._records import ExecutionRecord, WorkflowRecord
from ..store._store import Store, StoreStatistics, open_store
from ._answers import ExecutionOutcome
from ._definition import Workflow
from ._delivery import Delivery
from ._execution import ExecutionHandle
from ._loader import load_workflows
from ._recovery import plan_resume, stored_delivery
from ._retention import Retention, RetentionPolicy, RetentionStatistics
from ._supervisor import ChildSpec, Restart, Supervisor, SupervisorStatistics
from ._workflow_supervisor import Admission, WorkflowStatistics, WorkflowSupervisor

log = logging.getLogger("hookline.engine")

# The statuses an operator may retry an execution from.
RETRYABLE = frozenset({"failed", "timed_out", "cancelled"})


@attrs.frozen
class EngineStatistics:
    """A snapshot of the engine. ``pending`` counts live executions against
    ``pending_limit``; ``resumed`` the executions resumed at start-up; ``retention``
    is None when the engine prunes nothing."""

    accepting: bool
    pending: int
    pending_limit: int
    store: StoreStatistics
    supervisor: SupervisorStatistics
    workflows: tuple[WorkflowStatistics, ...]
    resumed: int = 0
    retention: RetentionStatistics | None = None


class Engine:
    """The running engine. Create it with :func:`open_engine`."""

    def __init__(
        self,
        store: Store,
        workflows: Iterable[Workflow] = (),
        *,
        env: Mapping[str, str] | None = None,
        pending_limit: int = 10_000,
        shutdown_timeout: float = 10.0,
        folder: Path | None = None,
        http_allow_hosts: Iterable[str] = (),
        smtp: Any = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self.store = store
        self.env: Mapping[str, str] = dict(env or {})
        self.services = NodeServices(
            http_allow_hosts=tuple(http_allow_hosts),
            smtp=smtp,
            collections=CollectionService(store),
            workflows=self,
            env=self.env,
        )
        self.pending_limit = pending_limit
        self.shutdown_timeout = shutdown_timeout
        self.folder = folder
        self.load_errors: tuple[DefinitionError, ...] = ()
        self.workflows: dict[str, Workflow] = {}
        self._initial = tuple(workflows)
        self._supervisors: dict[str, WorkflowSupervisor] = {}
        # Replaced or disabled workflows still finishing what they hold.
        self._retiring: list[WorkflowSupervisor] = []
        self._router: Router[str] = Router(())
        self._root = Supervisor("engine")
        self._generation = 0
        self._accepting = False
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._drain_scope = trio.CancelScope()
        self._resumed = 0
        self.retention = Retention(store, retention) if retention is not None else None

    # -- lifecycle -------------------------------------------------------------------

    async def main(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The engine's root task: run until :meth:`aclose`, then shut down in order."""
        try:
            async with trio.open_nursery() as outer, _http_client(self.services) as client:
                self.services = attrs.evolve(self.services, http=client)
                await outer.start(self.store.run)
                async with trio.open_nursery() as inner:
                    await inner.start(self._root.run)
                    await self.apply(self._initial)
                    await self._resume()
                    if self.retention is not None:
                        await inner.start(self.retention.run)
                    self._accepting = not self._stop.is_set()
                    task_status.started()
                    await self._stop.wait()
                    self._accepting = False
                    await self._drain()
                    inner.cancel_scope.cancel()
                self._abandon_queued()
                outer.cancel_scope.cancel()
        finally:
            self._accepting = False
            self._stopped.set()

    async def aclose(self) -> None:
        """Graceful shutdown: refuse intake (503), let running executions finish until
        ``shutdown_timeout``, cancel the rest (their records stay resumable), flush the
        store. Returns once the engine has stopped. Calling it again just waits."""
        self.stop_intake()
        self._stop.set()
        await self._stopped.wait()

    def stop_intake(self) -> None:
        """Refuse new deliveries, replays and retries (503) from now on; what is running
        goes on. The first step of :meth:`aclose`."""
        self._accepting = False

    def hurry(self) -> None:
        """Stop waiting for running executions to finish (a second Ctrl-C): a shutdown
        under way cancels them now; they resume on next start."""
        self._drain_scope.cancel()

    async def _drain(self) -> None:
        for supervisor in self._live():
            supervisor.stop_intake()
        with self._drain_scope, trio.move_on_after(self.shutdown_timeout):
            # Intake is stopped, so once one is idle it stays idle: wait for each in turn.
            for supervisor in self._live():
                await supervisor.wait_idle()

    async def _resume(self) -> None:
        """Queue again, oldest first, the executions a previous run left queued or
        running, for workflows that exist and are enabled; log the others."""
        records = await self.store.unfinished_executions()
        plan = plan_resume(records, lambda key: key in self._supervisors)
        for record in plan.resume:
            self._supervisors[record.workflow].resume(record, stored_delivery(record))
        self._resumed += len(plan.resume)
        if plan.resume:
            log.info("resuming %d unfinished executions", len(plan.resume))
        for record in plan.left:
            state = "disabled" if record.workflow in self.workflows else "gone"
            log.warning(
                "execution %s stays %s: its workflow '%s' is %s",
                record.id,
                record.status,
                record.workflow,
                state,
            )

    def _abandon_queued(self) -> None:
        for supervisor in self._live():
            for handle in list(supervisor.handles.values()):
                if not handle.finished:
                    handle.set_outcome(
                        ExecutionOutcome(
                            handle.id, handle.workflow.key, "cancelled", None, "the engine stopped"
                        )
                    )

    def _live(self) -> list[WorkflowSupervisor]:
        """Every supervisor that may still hold executions, retiring ones included."""
        self._retiring = [s for s in self._retiring if not s.retired]
        return [*self._supervisors.values(), *self._retiring]

    # -- definitions -----------------------------------------------------------------

    async def apply(self, workflows: Iterable[Workflow]) -> None:
        """Make these the engine's workflows: start new and changed ones, retire the
        ones that changed, were disabled or are gone (they finish what they hold)."""
        wanted = {workflow.key: workflow for workflow in workflows}
        for key, supervisor in list(self._supervisors.items()):
            new = wanted.get(key)
            if new is None or not new.enabled or new is not supervisor.workflow:
                supervisor.retire()
                self._retiring.append(supervisor)
                del self._supervisors[key]
        for key, workflow in wanted.items():
            version = None
            if self.workflows.get(key) is not workflow:
                # Saved before its supervisor starts: its executions record the version.
                version = await self.store.write(SaveWorkflow(_workflow_record(workflow)))
            if workflow.enabled and key not in self._supervisors:
                supervisor = WorkflowSupervisor(
                    workflow, self.store, services=self.services, version=version
                )
                self._generation += 1
                spec = ChildSpec(
                    f"workflow:{key}#{self._generation}", supervisor.run, Restart.TRANSIENT
                )
                await self._root.start_child(spec)
                self._supervisors[key] = supervisor
        self.workflows = wanted
        self._router = Router((w.trigger.path, w.trigger.methods, w.key) for w in wanted.values())

    async def reload(self) -> tuple[DefinitionError, ...]:
        """Load the workflows folder again and apply it. Returns the files' errors."""
        if self.folder is None:
            return ()
        result = load_workflows(self.folder, env=os.environ)
        for error in result.errors:
            log.error("%s", error)
        self.load_errors = result.errors
        await self.apply(result.workflows)
        return result.errors

    # -- intake ----------------------------------------------------------------------

    def route(self, path: str, method: str) -> tuple[Workflow, dict[str, str]]:
        """The workflow listening on a webhook path. Raises WorkflowNotFound (404) or
        MethodNotAllowed (405)."""
        key, params = self._router.match(path, method)
        return self.workflows[key], params

    def pending(self) -> int:
        """Live executions (queued, parked, resuming or running) across workflows."""
        # Asked at every delivery: no list is built (a retired supervisor holds none).
        total = 0
        for supervisor in self._supervisors.values():
            total += len(supervisor.handles)
        for supervisor in self._retiring:
            total += len(supervisor.handles)
        return total

    def _intake(self, workflow: str) -> WorkflowSupervisor:
        """The supervisor that takes new work for ``workflow``. Raises Unavailable
        (stopping, overloaded, disabled) or WorkflowNotFound."""
        if not self._accepting:
            raise Unavailable("the engine is shutting down", retry_after=10.0)
        supervisor = self._supervisors.get(workflow)
        if supervisor is None:
            if workflow in self.workflows:
                raise Unavailable(f"workflow '{workflow}' is disabled", retry_after=60.0)
            raise WorkflowNotFound(f"there is no workflow '{workflow}'")
        pending = self.pending()
        if pending >= self.pending_limit:
            raise Unavailable("the engine is overloaded", retry_after=self._drain_time(pending))
        return supervisor

    def _drain_time(self, backlog: int) -> float:
        """Seconds until ``backlog`` executions drain at the observed rate (1 to 60; 5
        before anything finished)."""
        rate = sum(s.drain_rate for s in self._live())
        if rate <= 0:
            return 5.0
        return float(min(60, max(1, math.ceil(backlog / rate))))

    async def accept(self, delivery: Delivery) -> Admission:
        """Admit a delivery: store it with its execution (committed) and queue it.

        Raises Unavailable (503) when stopping, overloaded or the workflow is disabled,
        QueueFull (429) when its queue is full, and the idempotency rejections.
        """
        return await self._intake(delivery.workflow).accept(delivery)

    async def _stored(self, execution_id: str) -> ExecutionRecord:
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id}")
        return record

    async def replay(self, execution_id: str) -> Admission:
        """Start a new execution of the same workflow from the delivery execution
        ``execution_id`` started from (recorded as a new delivery whose reason names
        the original execution; no idempotency key is claimed).

        Raises NotFound for an unknown execution, WorkflowNotFound if its workflow is
        gone, Unavailable (disabled, overloaded, stopping) and QueueFull like a
        delivery would.
        """
        record = await self._stored(execution_id)
        supervisor = self._intake(record.workflow)
        body = None
        if record.delivery_id is not None:
            original = await self.store.get_delivery(record.delivery_id)
            body = original.body if original is not None else None
        delivery = attrs.evolve(stored_delivery(record, body), id=new_id(), received_at=time.time())
        return await supervisor.replay(delivery, of=execution_id)

    async def retry(self, execution_id: str) -> Admission:
        """Run an execution that failed, timed out or was cancelled again, from its
        first job that did not succeed (the jobs that succeeded keep their outputs).
        Its record goes back to ``queued`` under the same id.

        Raises NotFound for an unknown execution, ExecutionConflict (409) for one that
        is queued, running or succeeded, and like :meth:`replay` otherwise.
        """
        record = await self._stored(execution_id)
        if record.status not in RETRYABLE or self.handle(execution_id) is not None:
            raise ExecutionConflict(
                f"execution {execution_id} is {record.status}: only failed, timed out and "
                "cancelled executions can be retried"
            )
        supervisor = self._intake(record.workflow)
        return await supervisor.retry(record, stored_delivery(record))

    async def record_rejection(self, delivery: Delivery, rejection: Rejected) -> None:
        """Record a refused delivery with its reason (unless the store already has it).

        Never raises for a store that has stopped: the rejection is what the sender
        must hear, and after shutdown there is nowhere to record it.
        """
        if getattr(rejection, "delivery_recorded", False):
            return
        record = delivery.record("rejected", reason=rejection.detail, status=rejection.status)
        try:
            await self.store.post(RecordDelivery(record))
        except StoreClosed:
            log.info("not recorded (the store has stopped): %s refused: %s", delivery.id, rejection)

    # -- embedding -------------------------------------------------------------------

    def delivery(
        self,
        key: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        method: str = "POST",
    ) -> Delivery:
        """A delivery for workflow ``key`` made in-process (no HTTP)."""
        workflow = self.workflows.get(key)
        if workflow is None:
            raise WorkflowNotFound(f"there is no workflow '{key}'")
        if body is None:
            body = b"" if data is None else json.dumps(data, separators=(",", ":")).encode()
        return Delivery(
            id=new_id(),
            workflow=key,
            received_at=time.time(),
            method=method.upper(),
            path=workflow.trigger.path,
            headers={k.lower(): v for k, v in (headers or {}).items()},
            query=dict(query or {}),
            body=body,
            data=data,
            text=body.decode("utf-8", "replace"),
            remote_addr="embedded",
        )

    async def submit(self, key: str, **request: Any) -> Admission:
        """Start an execution of workflow ``key`` without HTTP; returns once it is
        durably queued (or the earlier answer, for a repeated idempotency key)."""
        delivery = self.delivery(key, **request)
        try:
            return await self.accept(delivery)
        except Rejected as rejection:
            await self.record_rejection(delivery, rejection)
            raise

    async def run(self, key: str, **request: Any) -> ExecutionOutcome:
        """Run workflow ``key`` without HTTP and wait for it to end."""
        admission = await self.submit(key, **request)
        if admission.handle is None:
            record = await self.store.get_execution(admission.execution_id)
            if record is None:
                raise NotFound(f"no execution {admission.execution_id}")
            return ExecutionOutcome(
                record.id, record.workflow, record.status, record.output, record.error
            )
        return await admission.handle.wait_finished()

    def handle(self, execution_id: str) -> ExecutionHandle | None:
        """The live handle of a queued or running execution, if any."""
        for supervisor in self._live():
            found = supervisor.handles.get(execution_id)
            if found is not None:
                return found
        return None

    async def cancel(self, execution_id: str) -> bool:
        """Cancel a queued or running execution. False if it is not live here."""
        for supervisor in self._live():
            if await supervisor.cancel(execution_id):
                return True
        if await self.store.get_execution(execution_id) is None:
            raise NotFound(f"no execution {execution_id}")
        return False

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            accepting=self._accepting,
            pending=self.pending(),
            pending_limit=self.pending_limit,
            store=self.store.statistics(),
            supervisor=self._root.statistics(),
            workflows=tuple(s.statistics() for s in self._supervisors.values()),
            resumed=self._resumed,
            retention=self.retention.statistics() if self.retention is not None else None,
        )


def _workflow_record(workflow: Workflow) -> WorkflowRecord:
    import hashlib

    return WorkflowRecord(
        key=workflow.key,
        title=workflow.title,
        enabled=workflow.enabled,
        source=workflow.text,
        digest=hashlib.sha256(workflow.text.encode()).hexdigest(),
        updated_at=time.time(),
    )


def _http_client(services: NodeServices) -> httpx.AsyncClient:
    """The engine's one outbound client, shared by every http node: connection limits
    hold across all executions, and every connection goes to an address the SSRF guard
    checked (no DNS rebinding between the check and the connect)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return new_http_client(services.http_allow_hosts, limits=limits)


@asynccontextmanager
async def open_engine(
    workflows: str | os.PathLike[str] | Iterable[Workflow] = (),
    *,
    store: Store | str = "memory://",
    env: Mapping[str, str] | None = None,
    pending_limit: int = 10_000,
    shutdown_timeout: float = 10.0,
    http_allow_hosts: Iterable[str] = (),
    smtp: Any = None,
    retention: RetentionPolicy | None = None,
) -> AsyncIterator[Engine]:
    """Run an engine inside the caller's trio program.

    ``workflows`` is a folder of definitions or validated :class:`Workflow` objects;
    ``store`` a :class:`Store` or a store URL (``sqlite:///var/hookline.db``,
    ``memory://``). ``env`` holds the values ``{{$env.NAME}}`` may read,
    ``http_allow_hosts`` the private hosts http nodes may call, ``smtp`` the
    :class:`~hookline._config.SmtpConfig` email nodes send through, ``retention``
    how long finished executions and deliveries are kept (None: no pruning at all).
    Executions a previous run left queued or running are resumed before the block is
    entered. Leaving the block shuts the engine down gracefully.

    A bug that keeps crashing a workflow's actors escalates: past its restart
    intensity (3 restarts in 5 s) the workflow's supervisor is restarted by the
    engine's root supervisor; past the root's own intensity the engine stops. Then the
    block is cancelled and ``open_engine`` raises an ExceptionGroup holding
    :class:`~hookline.errors.RestartIntensityExceeded`; the store is flushed first, and
    the executions of other workflows keep their stored status to resume on next start.
    """
    if isinstance(store, str):
        store = open_store(store)
    folder: Path | None = None
    if isinstance(workflows, (str, os.PathLike)):
        folder = Path(workflows)
        workflows = ()
    engine = Engine(
        store,
        workflows,
        env=env,
        pending_limit=pending_limit,
        shutdown_timeout=shutdown_timeout,
        folder=folder,
        http_allow_hosts=http_allow_hosts,
        smtp=smtp,
        retention=retention,
    )
    if folder is not None:
        result = load_workflows(folder, env=os.environ)
        for error in result.errors:
            log.error("%s", error)
        engine.load_errors = result.errors
        engine._initial = result.workflows
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.main)
        try:
            yield engine
        finally:
            with trio.CancelScope(shield=True):
                await engine.aclose()
