"""``GET /metrics``: the engine in Prometheus text format, through prometheus_client.

Two sources. Counters and histograms of what happened (deliveries by workflow and
verdict, executions ended by status, job and execution durations, store batch sizes and
commit latency) are kept by :class:`Metrics`, fed by the store tap
(:mod:`hookline._tap`) with every committed batch, so they count what is durably
recorded, not what was attempted. Gauges of the present (queue depths, executions in
flight, pending deliveries) and actor restarts are read from ``engine.statistics()`` at
each scrape by :class:`EngineCollector`.

Counting starts when :func:`engine_metrics` first sees an engine (when its app is
created): a delivery submitted in-process before that is not counted.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from quart import Blueprint, Response, current_app

from .._tap import BatchCommitted, DeliveryRecorded, ExecutionEnded, JobEnded, StoreEvent, tap_store
from ..engine._alert_monitor import alert_monitor
from ..engine._engine import Engine

__all__ = ["EngineCollector", "Metrics", "engine_metrics", "metrics"]

metrics = Blueprint("metrics", __name__)

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    """The counters of one engine, in their own registry (several engines in one
    process, as in tests, never share a series)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.deliveries = Counter(
            "hookline_deliveries",
            "Requests recorded as deliveries, by workflow ('' when none matched) and verdict.",
            ["workflow", "verdict"],
            registry=registry,
        )
        self.executions = Counter(
            "hookline_executions_finished",
            "Executions that reached a finished status.",
            ["workflow", "status"],
            registry=registry,
        )
        self.execution_seconds = Histogram(
            "hookline_execution_duration_seconds",
            "Time from an execution's start to its end (executions that ran).",
            ["workflow", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.job_seconds = Histogram(
            "hookline_job_duration_seconds",
            "Time each job attempt ran, by workflow, node type and status.",
            ["workflow", "type", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "hookline_store_batch_size",
            "Write operations committed per store transaction.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "hookline_store_commit_seconds",
            "Time to apply and commit one store transaction.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        registry.register(EngineCollector(engine))
        # Labelled series by (metric, labels): prometheus_client's labels() takes a lock
        # and validates its arguments on every call, a sizeable part of a quick request.
        self._series: dict[tuple[object, ...], Any] = {}

    def _labelled(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = metric.labels(*labels)
        return series

    def observe(self, event: StoreEvent) -> None:
        """Count one committed event (called from the store's writer thread)."""
        if isinstance(event, DeliveryRecorded):
            self._labelled(self.deliveries, event.delivery.workflow or "", event.verdict).inc()
        elif isinstance(event, ExecutionEnded):
            self._labelled(self.executions, event.workflow, event.status).inc()
            if event.started_at is not None and event.finished_at is not None:
                elapsed = max(0.0, event.finished_at - event.started_at)
                series = self._labelled(self.execution_seconds, event.workflow, event.status)
                series.observe(elapsed)
        elif isinstance(event, JobEnded):
            job = event.job
            if job.finished_at is not None:
                elapsed = max(0.0, job.finished_at - job.started_at)
                series = self._labelled(self.job_seconds, event.workflow, job.type, job.status)
                series.observe(elapsed)
        elif isinstance(event, BatchCommitted):
            self.batch_size.observe(event.size)
            self.commit_seconds.observe(event.seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


class EngineCollector(Collector):
    """Reads ``engine.statistics()`` at scrape time: the gauges of the present and the
    restart counts the supervisors keep."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        stats = self._engine.statistics()
        yield _gauge("hookline_accepting", "1 while the engine takes deliveries.", stats.accepting)
        yield _gauge(
            "hookline_pending", "Executions queued or running, all workflows.", stats.pending
        )
        yield _gauge(
            "hookline_pending_limit", "Pending executions before 503.", stats.pending_limit
        )
        yield _gauge("hookline_workflows", "Workflows loaded.", len(self._engine.workflows))
        yield _gauge(
            "hookline_workflow_load_errors",
            "Workflow files that did not load.",
            len(self._engine.load_errors),
        )
        queue = GaugeMetricFamily(
            "hookline_workflow_queue_depth", "Executions waiting to start.", labels=["workflow"]
        )
        capacity = GaugeMetricFamily(
            "hookline_workflow_queue_capacity", "Queue size before 429.", labels=["workflow"]
        )
        running = GaugeMetricFamily(
            "hookline_executions_running", "Executions in flight.", labels=["workflow"]
        )
        throttled = GaugeMetricFamily(
            "hookline_executions_throttled",
            "Executions waiting for the start their workflow's throttle booked.",
            labels=["workflow"],
        )
        debouncing = GaugeMetricFamily(
            "hookline_executions_debouncing",
            "Executions waiting for their debounce key to be quiet.",
            labels=["workflow"],
        )
        batching = GaugeMetricFamily(
            "hookline_executions_batching",
            "Executions (one per delivery) waiting in an open batch.",
            labels=["workflow"],
        )
        node_queue = GaugeMetricFamily(
            "hookline_node_queue_depth",
            "Jobs waiting for a node actor.",
            labels=["workflow", "node"],
        )
        node_busy = GaugeMetricFamily(
            "hookline_node_in_flight", "Jobs a node actor is running.", labels=["workflow", "node"]
        )
        restarts = CounterMetricFamily(
            "hookline_actor_restarts",
            "Times a supervisor restarted a child actor after it crashed.",
            labels=["supervisor", "actor"],
        )
        for child in stats.supervisor.children:
            restarts.add_metric([stats.supervisor.name, child.name], child.restarts)
        for workflow in stats.workflows:
            key = workflow.workflow
            queue.add_metric([key], workflow.queue.depth)
            capacity.add_metric([key], workflow.queue.capacity)
            running.add_metric([key], workflow.running)
            throttled.add_metric([key], workflow.throttled)
            debouncing.add_metric([key], workflow.debouncing)
            batching.add_metric([key], workflow.batching)
            for node in workflow.nodes:
                # A node actor is named "<workflow>/<node>".
                name = node.name.rsplit("/", 1)[-1]
                node_queue.add_metric([key, name], node.mailbox.depth)
                node_busy.add_metric([key, name], node.in_flight)
            for child in workflow.supervisor.children:
                restarts.add_metric([workflow.supervisor.name, child.name], child.restarts)
        yield from (queue, capacity, running, throttled, debouncing, batching)
        yield from (node_queue, node_busy, restarts)
        store = stats.store
        yield _gauge("hookline_store_queue_depth", "Writes waiting for a batch.", store.queue_depth)
        events = self._engine.events.statistics()
        yield _gauge(
            "hookline_events_waiting",
            "Executions waiting for an event (wait nodes).",
            events.waiting,
        )
        yield _counter(
            "hookline_events_offered", "Events (correlated deliveries) offered.", events.offered
        )
        yield _counter(
            "hookline_events_unmatched", "Events no wait or cancel_on took.", events.unmatched
        )
        yield _counter("hookline_store_ops", "Write operations applied.", store.ops)
        yield _counter(
            "hookline_store_failed_batches", "Batches that failed.", store.failed_batches
        )
        yield _counter("hookline_store_failed_ops", "Posted writes that failed.", store.failed_ops)
        cluster = stats.cluster
        if cluster is not None:
            yield _gauge(
                "hookline_cluster_waiting",
                "Executions waiting for a start permit from the shared store.",
                cluster.waiting,
            )
            yield _counter(
                "hookline_cluster_adopted",
                "Executions taken over from stopped or dead processes.",
                cluster.adopted,
            )
            yield _counter(
                "hookline_cluster_heartbeats",
                "Heartbeats sent to the shared store.",
                cluster.heartbeats,
            )
        yield from _alerts(self._engine)


def _alerts(engine: Engine) -> Iterator[Metric]:
    monitor = alert_monitor(engine)
    if monitor is None:
        return
    labels = ["alert", "workflow", "metric"]
    firing = GaugeMetricFamily(
        "hookline_alert_firing", "1 while an alert rule's condition holds.", labels=labels
    )
    value = GaugeMetricFamily(
        "hookline_alert_value", "The measure an alert rule last saw.", labels=labels
    )
    for state in monitor.states():
        names = [state.rule, state.workflow, state.metric]
        firing.add_metric(names, 1.0 if state.firing else 0.0)
        value.add_metric(names, state.value)
    yield from (firing, value)
    yield _counter("hookline_alerts_sent", "Alert notices sent.", monitor.sent)
    yield _counter(
        "hookline_alert_send_failures",
        "Alert notices that could not be sent.",
        monitor.send_failures,
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=float(value))


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Metrics] = weakref.WeakKeyDictionary()


def engine_metrics(engine: Engine) -> Metrics:
    """The :class:`Metrics` of ``engine``, made and subscribed to its store's tap on
    first call; later calls (another app over the same engine) return the same one."""
    found = _BY_ENGINE.get(engine)
    if found is None:
        found = _BY_ENGINE[engine] = Metrics(engine)
        tap_store(engine.store).subscribe(found.observe)
    return found


@metrics.get("/metrics")
async def scrape() -> Response:
    engine: Engine = current_app.config["HOOKLINE_ENGINE"]
    return Response(engine_metrics(engine).render(), content_type=CONTENT_TYPE_LATEST)
