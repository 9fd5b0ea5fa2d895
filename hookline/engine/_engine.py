"""The Engine: the root actor. Owns the store actor and one WorkflowSupervisor per
enabled workflow (:mod:`._workflow_set`); admits deliveries, replays and retries
(:mod:`._intake`); resumes what a previous run left unfinished; prunes old records;
shuts down within a deadline."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from ..errors import DefinitionError, Rejected, WorkflowNotFound
from ..nodes._base import NodeServices
from ..nodes._call import NodeFunction, custom_node_types
from ..nodes._http import SharedHttpClient
from ..nodes._script_pool import ScriptPool, ScriptPoolConfig, ScriptPoolStatistics
from ..store._collection_service import CollectionService
from ..store._records import LIVE_STATUSES
from ..store._store import Store, StoreStatistics, open_store
from ._admission import Admission
from ._answers import ExecutionOutcome
from ._cluster import Cluster, ClusterStatistics
from ._definition import Workflow
from ._delivery import Delivery, embedded_delivery
from ._event_board import EventBoard
from ._groups import lone_error
from ._handle import ExecutionHandle
from ._intake import Intake
from ._loader import LoadResult, load_workflows
from ._reload import plan_reload
from ._retention import Retention, RetentionPolicy, RetentionStatistics
from ._supervisor import RestartPolicy, Supervisor, SupervisorStatistics
from ._workflow_set import WorkflowSet
from ._workflow_supervisor import WorkflowStatistics

log = logging.getLogger("hookline.engine")


@attrs.frozen
class EngineStatistics:
    """A snapshot of the engine. ``pending`` counts live executions against
    ``pending_limit``; ``resumed`` the executions resumed at start-up; ``retention``
    is None when the engine prunes nothing, ``cluster`` when no other process shares
    the store."""

    accepting: bool
    pending: int
    pending_limit: int
    store: StoreStatistics
    supervisor: SupervisorStatistics
    workflows: tuple[WorkflowStatistics, ...]
    resumed: int = 0
    retention: RetentionStatistics | None = None
    cluster: ClusterStatistics | None = None
    scripts: ScriptPoolStatistics | None = None


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
        nodes: Mapping[str, NodeFunction] | None = None,
        restart: RestartPolicy | None = None,
        clock: Callable[[], float] | None = None,
        scripts: ScriptPoolConfig | None = None,
    ) -> None:
        custom_node_types(nodes)  # a bad entry raises here, not at the first load
        self.nodes: Mapping[str, NodeFunction] = dict(nodes or {})
        """The engine's own node types, by name (what ``open_engine(nodes=...)`` took)."""
        self.store = store
        self.env: Mapping[str, str] = dict(env or {})
        # One outbound client for every http node (connection limits hold across all
        # executions; every connection goes to an address the SSRF guard checked), built
        # when the first one runs: an engine without http nodes never loads TLS
        # certificates. A bad allow_hosts entry raises ValueError here.
        self._http = SharedHttpClient(http_allow_hosts)
        # The code node's worker processes: started and stopped with the engine.
        self.scripts = ScriptPool(scripts)
        self.services = NodeServices(
            http=self._http,
            http_allow_hosts=self._http.allow_hosts,
            smtp=smtp,
            collections=CollectionService(store),
            workflows=self,
            scripts=self.scripts,
            env=self.env,
        )
        if clock is not None:
            self.services = attrs.evolve(self.services, clock=clock)
        self.clock: Callable[[], float] = self.services.clock
        """The wall clock (unix seconds) of ``$system.now``, delay due times and the
        times in records: ``time.time`` unless ``open_engine(clock=...)`` gave one."""
        self.shutdown_timeout = shutdown_timeout
        self.folder = folder
        self.load_errors: tuple[DefinitionError, ...] = ()
        self._initial = tuple(workflows)
        self.restart = restart if restart is not None else RestartPolicy()
        """How many crashes each supervisor absorbs (the engine's root, each workflow's)."""
        self._root = Supervisor("engine", policy=self.restart)
        self._workflows = WorkflowSet(store, self._root, restart=self.restart, clock=self.clock)
        coordinator = store.backend.coordinator
        # Where executions parked on ``wait`` nodes wait for events, offered by intake
        # as they are stored.
        self.events = EventBoard(
            store,
            self.clock,
            self.env,
            shared=coordinator is not None,
        )
        self.events.unpark = self._workflows.unpark
        self.services = attrs.evolve(self.services, events=self.events)
        self.cluster: Cluster | None = None
        if coordinator is not None:
            self.cluster = self._workflows.cluster = Cluster(
                coordinator,
                self._workflows,
                heartbeat=coordinator.heartbeat_interval,
                lease=coordinator.lease,
                threaded=store.backend.threaded,
            )
            self.cluster.on_definitions_changed = self.reload
        self._intake = Intake(
            store, self._workflows, pending_limit, clock=self.clock, events=self.events
        )
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._drain_scope = trio.CancelScope()
        self._resumed = 0
        self.retention = Retention(store, retention) if retention is not None else None

    # -- lifecycle -------------------------------------------------------------------

    async def main(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The engine's root task: run until :meth:`aclose`, then shut down in order.

        Cancelled from outside, it shuts down as after :meth:`hurry` (running executions
        are cancelled and stay resumable, the store commits what it holds, within
        ``shutdown_timeout``), then lets the cancellation through.
        """
        async with trio.open_nursery() as watch:
            # The shutdown runs in order even when the caller's scope is cancelled:
            # cancelling everything at once would stop the store under executions
            # still recording how they ended.
            with trio.CancelScope(shield=True) as shutdown:
                watch.start_soon(self._stop_when_cancelled, shutdown)
                await self._main(task_status)
            watch.cancel_scope.cancel()

    async def _stop_when_cancelled(self, shutdown: trio.CancelScope) -> None:
        try:
            await trio.sleep_forever()
        finally:
            # Also reached once the engine stopped by itself: then this changes nothing.
            shutdown.deadline = min(shutdown.deadline, trio.current_time() + self.shutdown_timeout)
            self.hurry()
            self.stop_intake()
            self._stop.set()

    async def _main(self, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with trio.open_nursery() as outer:
                await outer.start(self.store.run)
                await outer.start(self.scripts.run)
                async with trio.open_nursery() as inner:
                    await inner.start(self._root.run)
                    await self.apply(self._initial)
                    if self.cluster is None:
                        self._resumed = await self._workflows.resume()
                    else:
                        self._resumed = await self.cluster.adopt()
                        await self._workflows.log_unrunnable()
                        await inner.start(self.cluster.run)
                    await inner.start(self.events.run)
                    if self.retention is not None:
                        await inner.start(self.retention.run)
                    self._intake.accepting = not self._stop.is_set()
                    task_status.started()
                    await self._stop.wait()
                    self._intake.stop()
                    await self._workflows.drain(self._drain_scope, self.shutdown_timeout)
                    inner.cancel_scope.cancel()
                self._workflows.abandon_queued()
                outer.cancel_scope.cancel()
        finally:
            self._intake.stop()
            with trio.CancelScope(shield=True):
                await self._http.aclose()
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
        goes on (deliveries waiting for room get Unavailable). The first step of
        :meth:`aclose`."""
        self._intake.stop()

    @property
    def pending_limit(self) -> int:
        """Live executions across workflows past which deliveries get 503."""
        return self._intake.pending_limit

    def hurry(self) -> None:
        """Stop waiting for running executions to finish (a second Ctrl-C): a shutdown
        under way cancels them now; they resume on next start."""
        self._drain_scope.cancel()

    @property
    def workflows(self) -> dict[str, Workflow]:
        """Every workflow by key, disabled ones included."""
        return self._workflows.definitions

    # -- definitions -----------------------------------------------------------------

    async def apply(self, workflows: Iterable[Workflow]) -> None:
        """Make these the engine's workflows: start new and changed ones, retire the
        ones that changed, were disabled or are gone (they finish what they hold)."""
        await self._workflows.apply(workflows, self.services)

    async def definitions_changed(self) -> None:
        """Tell the other processes sharing the store that this one's workflow
        definitions changed (through the admin API): they load their folders again,
        which ``hookline serve --workers`` shares. Nothing to do for a store of one."""
        if self.cluster is not None:
            await self.cluster.announce_definitions()

    async def reload(self) -> tuple[DefinitionError, ...]:
        """Load the workflows folder again and apply it. Returns the files' errors."""
        if self.folder is None:
            return ()
        result = self._load(self.folder)
        # A file that no longer validates keeps its previous version serving.
        await self.apply(plan_reload(self.workflows, result).workflows)
        return result.errors

    def _load(self, folder: Path) -> LoadResult:
        result = load_workflows(folder, env=os.environ, nodes=self.nodes)
        for error in result.errors:
            log.error("%s", error)
        self.load_errors = result.errors
        return result

    # -- intake ----------------------------------------------------------------------

    def route(self, path: str, method: str) -> tuple[Workflow, dict[str, str]]:
        """The workflow listening on a webhook path. Raises WorkflowNotFound (404) or
        MethodNotAllowed (405)."""
        return self._workflows.route(path, method)

    def pending(self) -> int:
        """Live executions (queued, parked, resuming or running) across workflows."""
        return self._workflows.pending()

    async def accept(self, delivery: Delivery, *, wait: bool = False) -> Admission:
        """Admit a delivery: store it with its execution (committed) and queue it.

        Raises Unavailable (503) when stopping, overloaded or the workflow is disabled,
        QueueFull (429) when its queue is full, and the idempotency rejections. With
        ``wait``, a full queue is waited on in turn instead of refused; the wait ends
        with Unavailable if the engine stops or the workflow is disabled or replaced.
        """
        return await self._intake.accept(delivery, wait=wait)

    async def replay(self, execution_id: str) -> Admission:
        """Start a new execution of the same workflow from the delivery execution
        ``execution_id`` started from (recorded as a new delivery whose reason names
        the original execution; no idempotency key is claimed).

        Raises NotFound for an unknown execution, WorkflowNotFound if its workflow is
        gone, Unavailable (disabled, overloaded, stopping) and QueueFull like a
        delivery would.
        """
        return await self._intake.replay(execution_id)

    async def retry(self, execution_id: str) -> Admission:
        """Run an execution that failed, timed out or was cancelled again, from its
        first job that did not succeed (the jobs that succeeded keep their outputs).
        Its record goes back to ``queued`` under the same id.

        Raises NotFound for an unknown execution, ExecutionConflict (409) for one that
        is queued, running or succeeded, and like :meth:`replay` otherwise.
        """
        return await self._intake.retry(execution_id)

    async def record_rejection(self, delivery: Delivery, rejection: Rejected) -> None:
        """Record a refused delivery with its reason (unless the store already has it).

        Never raises for a store that has stopped: the rejection is what the sender
        must hear, and after shutdown there is nowhere to record it.
        """
        await self._intake.record_rejection(delivery, rejection)

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
        return embedded_delivery(
            key,
            workflow.trigger.path,
            data=data,
            headers=headers,
            query=query,
            body=body,
            method=method,
            received_at=self.clock(),
        )

    async def submit(
        self,
        key: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        method: str = "POST",
        wait: bool = False,
    ) -> Admission:
        """Start an execution of workflow ``key`` without HTTP; returns once it is
        durably queued (or the earlier answer, for a repeated idempotency key).

        Raises QueueFull when the workflow's queue is full, unless ``wait``: then it
        waits for room, first come first served. Raises Unavailable when the engine is
        stopping (a wait under way ends then too), overloaded, or the workflow is
        disabled; WorkflowNotFound for an unknown ``key``.
        """
        delivery = self.delivery(
            key, data=data, headers=headers, query=query, body=body, method=method
        )
        try:
            return await self.accept(delivery, wait=wait)
        except Rejected as rejection:
            await self.record_rejection(delivery, rejection)
            raise

    async def run(
        self,
        key: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        method: str = "POST",
        wait: bool = False,
    ) -> ExecutionOutcome:
        """Run workflow ``key`` without HTTP and wait for it to end (``wait``: for room
        in its queue first, as :meth:`submit` does)."""
        admission = await self.submit(
            key, data=data, headers=headers, query=query, body=body, method=method, wait=wait
        )
        if admission.handle is None:
            record = await self._intake.stored(admission.execution_id)
            return ExecutionOutcome(
                record.id, record.workflow, record.status, record.output, record.error
            )
        return await admission.handle.wait_finished()

    def handle(self, execution_id: str) -> ExecutionHandle | None:
        """The live handle of a queued or running execution, if any."""
        return self._workflows.handle(execution_id)

    def waiting_for(self, execution_id: str) -> str | None:
        """What holds a queued execution of this process back from starting, in
        words (``throttle: starts in 4.0 s``, ``debounce: ...``, ``event approvals
        (T-1) ...``); None if nothing."""
        return self._workflows.waiting_for(execution_id) or self.events.waiting_for(execution_id)

    async def cancel(self, execution_id: str) -> bool:
        """Cancel a queued or running execution. False if it is not live here."""
        if await self._workflows.cancel(execution_id) or await self.events.cancel(execution_id):
            return True
        record = await self._intake.stored(execution_id)  # NotFound for an unknown one
        if self.cluster is not None and record.status in LIVE_STATUSES:
            # Another process runs it: ask that one.
            await self.cluster.request_cancel(execution_id)
            return True
        return False

    def workflow_statistics(self, key: str) -> WorkflowStatistics | None:
        """The statistics of workflow ``key`` alone (cheap: no other workflow is
        looked at); None while it is disabled. Raises WorkflowNotFound for an unknown
        ``key``."""
        supervisor = self._workflows.supervisors.get(key)
        if supervisor is not None:
            return supervisor.statistics()
        if key in self.workflows:
            return None
        raise WorkflowNotFound(f"there is no workflow '{key}'")

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            accepting=self._intake.accepting,
            pending=self.pending(),
            pending_limit=self.pending_limit,
            store=self.store.statistics(),
            supervisor=self._root.statistics(),
            workflows=tuple(s.statistics() for s in self._workflows.supervisors.values()),
            resumed=self._resumed,
            retention=self.retention.statistics() if self.retention is not None else None,
            cluster=self.cluster.statistics() if self.cluster is not None else None,
            scripts=self.scripts.statistics(),
        )


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
    nodes: Mapping[str, NodeFunction] | None = None,
    restart: RestartPolicy | None = None,
    clock: Callable[[], float] | None = None,
    scripts: ScriptPoolConfig | None = None,
) -> AsyncIterator[Engine]:
    """Run an engine inside the caller's trio program.

    ``workflows`` is a folder of definitions or validated :class:`Workflow` objects;
    ``store`` a :class:`Store` or a store URL (``sqlite:///var/hookline.db``,
    ``memory://``). ``env`` holds the values ``{{$env.NAME}}`` may read,
    ``http_allow_hosts`` the private hosts http nodes may call, ``smtp`` the
    :class:`~hookline._config.SmtpConfig` email nodes send through, ``retention``
    how long finished executions and deliveries are kept (None: no pruning at all).
    ``clock`` is the wall clock (unix seconds; default :func:`time.time`) of
    ``{{$system.now}}``, delay due times and the times in records:
    :func:`hookline.testing.trio_wall_clock` makes them follow trio's ``MockClock``.
    Timeouts and other deadlines always run on trio's clock. ``scripts`` sizes the
    worker processes of code nodes and their default limits (a
    :class:`~hookline.nodes._script_pool.ScriptPoolConfig`, the server's ``code:``).
    ``nodes`` adds node types for this engine alone (``{"double": double}``, each an
    async function of a :class:`~hookline.NodeCall`; see ``docs/custom-nodes.md``): the
    folder's definitions, and :meth:`Engine.reload`, may use them. A name that is a
    built-in type raises :class:`ValueError`. Workflows passed as objects run the
    functions they were loaded with (``load_workflow_text(..., nodes=...)``).
    Executions a previous run left queued or running are resumed before the block is
    entered. Leaving the block shuts the engine down gracefully.

    A bug that keeps crashing a workflow's actors escalates: past its restart
    intensity (``restart``, a :class:`~hookline.RestartPolicy`; by default more than 3
    restarts in 5 s) the workflow's supervisor is restarted by the engine's root
    supervisor; past the root's own intensity (the same policy) the engine stops. Then
    the block is cancelled and ``open_engine`` raises
    :class:`~hookline.errors.RestartIntensityExceeded`; the store is flushed first, and
    the executions of other workflows keep their stored status to resume on next start.
    ``statistics().supervisor`` and each workflow's ``supervisor`` show the policy and
    the restarts so far.

    An exception raised in the block comes out as itself (not in an ExceptionGroup);
    only several errors at once (the block's and the engine's) come out as a group.
    Cancelling the scope around the block shuts the engine down at once: running
    executions are cancelled, stay resumable and resume on the next start.
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
        nodes=nodes,
        restart=restart,
        clock=clock,
        scripts=scripts,
    )
    if folder is not None:
        engine._initial = engine._load(folder).workflows
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.main)
            try:
                yield engine
            finally:
                with trio.CancelScope(shield=True):
                    await engine.aclose()
    except BaseExceptionGroup as group:
        error = lone_error(group)
        if error is group:
            raise
    else:
        return
    # Raised outside the except clause, so that it keeps its own context (not the group).
    raise error
