"""The engine's workflows: their definitions, the route to each, and the supervisor
running each enabled one (plus the retiring ones still finishing what they hold).

:meth:`WorkflowSet.apply` turns a set of definitions into running supervisors; the
rest answers questions across them (which execution is live where, how many, how
fast they drain) and carries out start-up resume and shutdown for them all.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

from ..definition import Router
from ..errors import Unavailable, WorkflowNotFound
from ..nodes._base import NodeServices
from ..store._ops import SaveWorkflow
from ..store._records import ExecutionRecord, WorkflowRecord
from ..store._store import Store
from ._answers import ExecutionOutcome
from ._definition import Workflow
from ._drain import drain_seconds
from ._handle import ExecutionHandle
from ._on_failure import FailureRelay
from ._recovery import plan_resume, recovered_delivery
from ._supervisor import ChildSpec, Restart, RestartPolicy, Supervisor
from ._workflow_runner import abandon
from ._workflow_supervisor import WorkflowSupervisor

if TYPE_CHECKING:
    from ._cluster import Cluster

log = logging.getLogger("hookline.engine")


class WorkflowSet:
    """The workflows an engine runs, each enabled one under a WorkflowSupervisor that
    is a child of ``root``.

    ``definitions`` holds every workflow by key, disabled ones included; ``supervisors``
    the enabled ones' supervisors, which take new work.
    """

    def __init__(
        self,
        store: Store,
        root: Supervisor,
        *,
        restart: RestartPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        #: The wall clock of the times recorded with definitions.
        self.clock = clock
        self.root = root
        #: How many crashes each workflow's supervisor absorbs.
        self.restart = restart
        #: Set when the store is shared by several processes: the supervisors' limits
        #: then hold across them all.
        self.cluster: Cluster | None = None
        self.definitions: dict[str, Workflow] = {}
        self.supervisors: dict[str, WorkflowSupervisor] = {}
        # Replaced or disabled workflows still finishing what they hold.
        self._retiring: list[WorkflowSupervisor] = []
        self._router: Router[str] = Router(())
        self._generation = 0
        # The admin API and a reload another process asked for may apply at once.
        self._applying = trio.Lock()
        #: Starts the ``on_failure`` workflow of failed executions.
        self.failures = FailureRelay()
        #: Told of every execution that ended, with its workflow (on_failure, alerts).
        self.observers: list[Callable[[Workflow, ExecutionOutcome], None]] = [self.failures.notice]
        self._relaying = False

    async def apply(self, workflows: Iterable[Workflow], services: NodeServices) -> None:
        """Make these the workflows: start new and changed ones, retire the ones that
        changed, were disabled or are gone (they finish what they hold)."""
        async with self._applying:
            await self._apply({workflow.key: workflow for workflow in workflows}, services)

    async def _apply(self, wanted: dict[str, Workflow], services: NodeServices) -> None:
        # Started with the first workflow that has an ``on_failure``.
        needed = any(w.on_failure is not None for w in wanted.values())
        if needed and not self._relaying and services.workflows is not None:
            self._relaying = True
            relay = functools.partial(self.failures.run, services.workflows)
            await self.root.start_child(ChildSpec("on_failure", relay))
        for key in list(self.supervisors):
            new = wanted.get(key)
            if new is None or not new.enabled:
                self._retire(key)
        for key, workflow in wanted.items():
            version = None
            if self.definitions.get(key) is not workflow:
                # Saved before its supervisor starts: its executions record the version.
                record = _workflow_record(workflow, self.clock())
                version = await self.store.write(SaveWorkflow(record))
            current = self.supervisors.get(key)
            if workflow.enabled and (current is None or current.workflow is not workflow):
                supervisor = WorkflowSupervisor(
                    workflow,
                    self.store,
                    services=services,
                    version=version,
                    cluster=self.cluster,
                    restart=self.restart,
                )
                supervisor.runner.on_ended = functools.partial(self._ended, workflow)
                self._generation += 1
                name = f"workflow:{key}#{self._generation}"
                await self.root.start_child(ChildSpec(name, supervisor.run, Restart.TRANSIENT))
                # A changed workflow's old supervisor takes deliveries until the new one
                # runs, then finishes what it holds: a reload never answers 503.
                if current is not None:
                    self._retire(key)
                self.supervisors[key] = supervisor
        self.definitions = wanted
        self._router = Router((w.trigger.path, w.trigger.methods, w.key) for w in wanted.values())

    def _retire(self, key: str) -> None:
        supervisor = self.supervisors.pop(key)
        supervisor.retire()
        self._retiring.append(supervisor)

    def _ended(self, workflow: Workflow, outcome: ExecutionOutcome) -> None:
        for observer in self.observers:
            observer(workflow, outcome)

    def route(self, path: str, method: str) -> tuple[Workflow, dict[str, str]]:
        """The workflow listening on a webhook path. Raises WorkflowNotFound (404) or
        MethodNotAllowed (405)."""
        key, params = self._router.match(path, method)
        return self.definitions[key], params

    def live(self) -> list[WorkflowSupervisor]:
        """Every supervisor that may still hold executions, retiring ones included."""
        self._retiring = [s for s in self._retiring if not s.retired]
        return [*self.supervisors.values(), *self._retiring]

    def pending(self) -> int:
        """Live executions (queued, parked, resuming or running) across workflows."""
        # Asked at every delivery: no list is built (a retired supervisor holds none).
        total = 0
        for supervisor in self.supervisors.values():
            total += len(supervisor.runner.handles)
        for supervisor in self._retiring:
            total += len(supervisor.runner.handles)
        return total

    def intake(self, key: str, pending_limit: int) -> WorkflowSupervisor:
        """The supervisor that takes new work for workflow ``key``. Raises Unavailable
        (disabled, or ``pending_limit`` executions live) or WorkflowNotFound."""
        supervisor = self.supervisors.get(key)
        if supervisor is None:
            if key in self.definitions:
                raise Unavailable(f"workflow '{key}' is disabled", retry_after=60.0)
            raise WorkflowNotFound(f"there is no workflow '{key}'")
        pending = self.pending()
        if pending >= pending_limit:
            rate = sum(s.runner.drain.rate for s in self.live())
            raise Unavailable("the engine is overloaded", retry_after=drain_seconds(pending, rate))
        return supervisor

    def handle(self, execution_id: str) -> ExecutionHandle | None:
        """The live handle of a queued or running execution, if any."""
        for supervisor in self.live():
            found = supervisor.runner.handles.get(execution_id)
            if found is not None:
                return found
        return None

    def waiting_for(self, execution_id: str) -> str | None:
        """What flow control holds a queued execution back for, if anything."""
        for supervisor in self.live():
            found = supervisor.runner.waiting_for(execution_id)
            if found is not None:
                return found
        return None

    async def correlated(self, event: str, value: str) -> list[str]:
        """A delivery of workflow ``event`` correlating on ``value`` arrived: cancel
        the live executions whose ``cancel_on`` matches it; their ids."""
        cancelled = []
        for supervisor in self.live():
            for execution_id in supervisor.cancel_matching(event, value):
                handle = supervisor.runner.handles.get(execution_id)
                if handle is not None and handle.cancel_reason is None:
                    handle.cancel_reason = f"cancelled by an event of {event} ({value})"
                if await supervisor.runner.cancel(execution_id):
                    cancelled.append(execution_id)
        if cancelled:
            log.info("event %s (%s) cancelled %s", event, value, ", ".join(cancelled))
        return cancelled

    def cancels_on(self, event: str) -> bool:
        """Whether any enabled workflow lists ``event`` in its ``cancel_on``."""
        return any(rule.event == event for s in self.live() for rule in s.workflow.cancel_on)

    async def cancel(self, execution_id: str) -> bool:
        """Cancel a live execution; False if none of the workflows holds it."""
        for supervisor in self.live():
            if await supervisor.runner.cancel(execution_id):
                return True
        return False

    async def resume(self) -> int:
        """Queue again, oldest first, the executions a previous run left queued or
        running, for workflows that exist and are enabled; log the others. Returns how
        many were resumed. (With a cluster, :meth:`Cluster.adopt` resumes instead.)"""
        records = await self.store.unfinished_executions()
        plan = plan_resume(records, lambda key: key in self.supervisors)
        for record in plan.resume:
            delivery = await recovered_delivery(self.store, record)
            await self.supervisors[record.workflow].resume(record, delivery)
        if plan.resume:
            log.info("resuming %d unfinished executions", len(plan.resume))
        self.log_left(plan.left)
        return len(plan.resume)

    async def unpark(
        self, execution_id: str, handle: ExecutionHandle | None, cancel_reason: str | None = None
    ) -> bool:
        """A wait of a parked execution ended (its store row claimed, the execution
        queued again there): resume it here, cancelled with ``cancel_reason`` if given.
        False if its workflow is not enabled here (it stays queued, for a start that
        enables it)."""
        record = await self.store.get_execution(execution_id)
        if record is None:
            return False
        supervisor = self.supervisors.get(record.workflow)
        if supervisor is None:
            self.log_left([record])
            return False
        delivery = handle.delivery if handle is not None else None
        if delivery is None or handle is None or handle.workflow is not supervisor.workflow:
            delivery, handle = await recovered_delivery(self.store, record), None
        resumed = await supervisor.resume(record, delivery, handle)
        if cancel_reason is not None:
            resumed.cancel_reason = cancel_reason
            resumed.cancel()
        return True

    async def log_unrunnable(self) -> None:
        """Log the unfinished executions stored for workflows not enabled here."""
        records = await self.store.unfinished_executions()
        self.log_left(plan_resume(records, lambda key: key in self.supervisors).left)

    def log_left(self, records: Iterable[ExecutionRecord]) -> None:
        """Warn that ``records`` stay as they are: their workflow is not enabled here."""
        for record in records:
            state = "disabled" if record.workflow in self.definitions else "gone"
            log.warning(
                "execution %s stays %s: its workflow '%s' is %s",
                record.id,
                record.status,
                record.workflow,
                state,
            )

    async def drain(self, scope: trio.CancelScope, timeout: float) -> None:
        """Start nothing more; wait up to ``timeout`` (or until ``scope`` is cancelled)
        for the running executions to finish."""
        for supervisor in self.live():
            supervisor.runner.stop_intake()
        with scope, trio.move_on_after(timeout):
            # Intake is stopped, so once one is idle it stays idle: wait for each in turn.
            for supervisor in self.live():
                await supervisor.runner.wait_idle()

    def abandon_queued(self) -> None:
        """End the handles of what never ran before the engine stopped (the records stay
        ``queued``, to resume on next start)."""
        for supervisor in self.live():
            for handle in list(supervisor.runner.handles.values()):
                abandon(handle)


def _workflow_record(workflow: Workflow, now: float) -> WorkflowRecord:
    return WorkflowRecord(
        key=workflow.key,
        title=workflow.title,
        enabled=workflow.enabled,
        source=workflow.text,
        digest=hashlib.sha256(workflow.text.encode()).hexdigest(),
        updated_at=now,
    )
