"""Alert decisions: when a rule starts firing and when it recovers, without I/O or clock.

A rule (``alerts.rules`` in the server config) watches one measure of a workflow, or
of each workflow on its own:

- ``failure_rate``: of the executions that ended within ``window`` seconds, the share
  that ended ``failed`` or ``timed_out``, once at least ``min_executions`` ended;
- ``queue_depth``: executions waiting to start, above the threshold for ``window``;
- ``oldest_queued``: the age in seconds of the oldest one waiting, above the threshold
  for ``window``.

:class:`AlertBook` is told what happened (:meth:`~AlertBook.record`) and what the
queues look like (:meth:`~AlertBook.evaluate`), with the time passed in, and returns
the notices to send: one when a condition starts to hold, none while it keeps holding,
one when it stops (the recovery).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

__all__ = ["METRICS", "AlertBook", "AlertNotice", "AlertRule", "AlertState", "Gauges"]

Metric = Literal["failure_rate", "queue_depth", "oldest_queued"]
METRICS: tuple[Metric, ...] = ("failure_rate", "queue_depth", "oldest_queued")


@attrs.frozen
class AlertRule:
    """One rule: ``metric`` above ``threshold`` over ``window`` seconds, for workflow
    ``workflow`` (None: each workflow on its own)."""

    name: str
    metric: Metric
    threshold: float
    window: float = 300.0
    workflow: str | None = None
    min_executions: int = 5


@attrs.frozen
class Gauges:
    """A workflow's queue now: how many wait, and how long the oldest has (seconds)."""

    queue_depth: int = 0
    oldest_queued: float = 0.0


@attrs.frozen
class AlertNotice:
    """What to send: ``firing`` (the condition started to hold) or ``resolved``."""

    rule: AlertRule
    workflow: str
    state: Literal["firing", "resolved"]
    value: float
    at: float

    def text(self) -> str:
        """One line for a chat message or an email subject."""
        what = _describe(self.rule.metric, self.value)
        limit = _amount(self.rule.metric, self.rule.threshold)
        if self.state == "firing":
            return (
                f"[hookline] FIRING {self.rule.name}: workflow {self.workflow} "
                f"{what} (above {limit})"
            )
        return f"[hookline] RESOLVED {self.rule.name}: workflow {self.workflow} {what}"


@attrs.frozen
class AlertState:
    """A rule's state for one workflow, as the UI and /metrics show it."""

    rule: str
    metric: Metric
    workflow: str
    firing: bool
    since: float | None
    value: float


@attrs.define
class _Watch:
    firing: bool = False
    since: float | None = None
    above_since: float | None = None
    value: float = 0.0


class AlertBook:
    """The rules' states, fed with what happened; returns the notices to send."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = tuple(rules)
        self._ended: dict[str, deque[tuple[float, bool]]] = {}
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._longest = max((r.window for r in self.rules), default=0.0)

    def record(self, workflow: str, at: float, *, failed: bool) -> None:
        """An execution of ``workflow`` ended at ``at``; ``failed`` if it failed or
        timed out (a cancelled one is not recorded)."""
        self._ended.setdefault(workflow, deque()).append((at, failed))

    def evaluate(self, now: float, gauges: Mapping[str, Gauges]) -> list[AlertNotice]:
        """The notices due at ``now``, given each workflow's queue (``gauges``; a
        workflow not there is taken as idle)."""
        self._forget_before(now - self._longest)
        notices: list[AlertNotice] = []
        workflows = sorted(set(gauges) | set(self._ended))
        for rule in self.rules:
            for workflow in [rule.workflow] if rule.workflow is not None else workflows:
                watch = self._watches.setdefault((rule.name, workflow), _Watch())
                holds = self._holds(rule, workflow, now, gauges.get(workflow, Gauges()), watch)
                if holds and not watch.firing:
                    watch.firing, watch.since = True, now
                    notices.append(AlertNotice(rule, workflow, "firing", watch.value, now))
                elif not holds and watch.firing:
                    watch.firing, watch.since = False, None
                    notices.append(AlertNotice(rule, workflow, "resolved", watch.value, now))
        return notices

    def states(self) -> list[AlertState]:
        """Every rule and workflow evaluated so far, firing or not."""
        by_name = {rule.name: rule for rule in self.rules}
        return [
            AlertState(name, by_name[name].metric, workflow, w.firing, w.since, w.value)
            for (name, workflow), w in sorted(self._watches.items())
        ]

    def _holds(
        self, rule: AlertRule, workflow: str, now: float, gauges: Gauges, watch: _Watch
    ) -> bool:
        if rule.metric == "failure_rate":
            ended = [
                failed for at, failed in self._ended.get(workflow, ()) if at > now - rule.window
            ]
            watch.value = sum(ended) / len(ended) if ended else 0.0
            return len(ended) >= rule.min_executions and watch.value > rule.threshold
        watch.value = float(getattr(gauges, rule.metric))
        if watch.value <= rule.threshold:
            watch.above_since = None
            return False
        if watch.above_since is None:
            watch.above_since = now
        return now - watch.above_since >= rule.window

    def _forget_before(self, cutoff: float) -> None:
        for ended in self._ended.values():
            while ended and ended[0][0] <= cutoff:
                ended.popleft()


def _describe(metric: Metric, value: float) -> str:
    return f"{metric.replace('_', ' ')} {_amount(metric, value)}"


def _amount(metric: Metric, value: float) -> str:
    if metric == "failure_rate":
        return f"{value:.0%}"
    if metric == "queue_depth":
        return f"{value:.0f}"
    return f"{value:.0f}s"
