"""The server's own view of a phase, from ``GET /metrics`` scraped before and after it.

A phase against a deployed hookline is scraped (with the admin key) just before the
load starts, every half second while it runs (for the queue depth's peak) and, after
the load ends, until the workflow's queue and running executions are empty and the
delivery counters stop moving (at most :data:`SETTLE_SECONDS`). The difference is what
the server recorded for the phase: deliveries by verdict, executions finished by
status, store commit latency, the queue depth's peak, actor restarts.

The ledger (as Hookdeck Outpost's load tests keep it): ``sent = accepted + refused +
lost``, where ``sent`` is what the client put on the wire, ``accepted`` what the server
recorded as accepted or duplicate deliveries of the workflow, ``refused`` the answers
the client got outside 2xx. ``lost`` must be 0; a difference between the client's 2xx
count and the server's accepted count is reported beside it, never hidden.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import attrs
import httpx
from prometheus_client.parser import text_string_to_metric_families

from ._results import LoadResult, ServerFigures

__all__ = ["MetricsError", "Scrape", "ServerWatch", "ledger", "scrape", "watch_server"]

SETTLE_SECONDS = 15.0
SAMPLE_SECONDS = 0.5
#: Counters unchanged this long (and nothing queued or running): the phase is over.
STILL_SECONDS = 0.5

Labels = tuple[tuple[str, str], ...]


class MetricsError(Exception):
    """``/metrics`` could not be read (unreachable, key refused)."""


@attrs.frozen
class Scrape:
    """One scrape: every sample as ``(name, labels) -> value``."""

    samples: Mapping[tuple[str, Labels], float]

    def total(self, name: str, **match: str) -> float:
        """The sum of ``name``'s samples whose labels include ``match``."""
        found = 0.0
        for (sample, labels), value in self.samples.items():
            if sample == name and all((k, v) in labels for k, v in match.items()):
                found += value
        return found

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        """``name``'s samples matching ``match``, summed by the value of ``label``."""
        found: dict[str, float] = defaultdict(float)
        for (sample, labels), value in self.samples.items():
            if sample == name and all((k, v) in labels for k, v in match.items()):
                found[dict(labels).get(label, "")] += value
        return dict(found)


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Scrape(samples)


def scrape(client: httpx.Client) -> Scrape:
    try:
        answer = client.get("/metrics")
    except httpx.HTTPError as exc:
        raise MetricsError(f"/metrics cannot be read: {exc!r}") from exc
    if answer.status_code in (401, 403):
        raise MetricsError(
            f"/metrics answered {answer.status_code}: pass an admin key with --key "
            "(or HOOKLINE_ADMIN_KEY) to see the server's figures"
        )
    if answer.status_code != 200:
        raise MetricsError(f"/metrics answered {answer.status_code}")
    return parse(answer.text)


def _deliveries(s: Scrape, workflow: str) -> dict[str, float]:
    return s.by("hookline_deliveries_total", "verdict", workflow=workflow)


def _busy(s: Scrape, workflow: str) -> float:
    return s.total("hookline_workflow_queue_depth", workflow=workflow) + s.total(
        "hookline_executions_running", workflow=workflow
    )


def _histogram_quantile(before: Scrape, after: Scrape, name: str, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of what was observed
    between the scrapes (None: nothing observed)."""
    bounds: list[tuple[float, float]] = []
    for (sample, labels), value in after.samples.items():
        if sample != f"{name}_bucket":
            continue
        bound = float(dict(labels)["le"])
        bounds.append((bound, value - before.samples.get((sample, labels), 0.0)))
    bounds.sort()
    if not bounds or bounds[-1][1] <= 0:
        return None
    wanted = q * bounds[-1][1]
    return next(bound for bound, count in bounds if count >= wanted)


def figures(before: Scrape, after: Scrape, workflow: str, queue_peak: float) -> ServerFigures:
    """What the server recorded between two scrapes for ``workflow``."""
    old, new = _deliveries(before, workflow), _deliveries(after, workflow)
    verdicts = {v: int(new[v] - old.get(v, 0.0)) for v in sorted(new)}
    name = "hookline_executions_finished_total"
    done_old = before.by(name, "status", workflow=workflow)
    done_new = after.by(name, "status", workflow=workflow)
    finished = {s: int(done_new[s] - done_old.get(s, 0.0)) for s in sorted(done_new)}
    commits = after.total("hookline_store_commit_seconds_count") - before.total(
        "hookline_store_commit_seconds_count"
    )
    commit_sum = after.total("hookline_store_commit_seconds_sum") - before.total(
        "hookline_store_commit_seconds_sum"
    )
    commit = "hookline_store_commit_seconds"
    p99 = _histogram_quantile(before, after, commit, 0.99)
    restarts = after.total("hookline_actor_restarts_total") - before.total(
        "hookline_actor_restarts_total"
    )
    return ServerFigures(
        workflow=workflow,
        deliveries={k: v for k, v in verdicts.items() if v},
        executions_finished={k: v for k, v in finished.items() if v},
        commits=int(commits),
        commit_mean_ms=commit_sum / commits * 1000 if commits > 0 else None,
        commit_p99_ms_at_most=None if p99 is None else p99 * 1000,
        queue_depth_peak=int(queue_peak),
        restarts=int(restarts),
        unfinished_executions=int(_busy(after, workflow)),
    )


def ledger(server: ServerFigures, result: LoadResult) -> ServerFigures:
    """``server`` with the ledger filled in from the client's ``result``."""
    sent = result.sent if result.sent is not None else result.completed + result.errors
    client_2xx = result.completed - result.non_2xx
    accepted = server.deliveries.get("accepted", 0) + server.deliveries.get("duplicate", 0)
    refused = result.non_2xx
    return attrs.evolve(
        server,
        sent=sent,
        client_2xx=client_2xx,
        accepted=accepted,
        refused=refused,
        lost=sent - accepted - refused,
    )


class ServerWatch:
    """The scrapes of one phase (see :func:`watch_server`)."""

    def __init__(self, client: httpx.Client, workflow: str) -> None:
        self.client = client
        self.workflow = workflow
        # What an earlier phase left in flight (a warm-up's last requests) must be
        # counted before this one starts, not in it.
        self.before = self._settled(SETTLE_SECONDS)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                found = scrape(self.client)
            except MetricsError:
                continue
            depth = found.total("hookline_workflow_queue_depth", workflow=self.workflow)
            self.peak = max(self.peak, depth)

    def _settled(self, settle: float) -> Scrape:
        """A scrape once the workflow is idle and its delivery counters have not moved
        for :data:`STILL_SECONDS` (or after ``settle`` seconds, whatever the state)."""
        deadline = time.monotonic() + settle
        last = scrape(self.client)
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = scrape(self.client)
            depth = now.total("hookline_workflow_queue_depth", workflow=self.workflow)
            self.peak = max(getattr(self, "peak", 0.0), depth)
            moved = _deliveries(now, self.workflow) != _deliveries(last, self.workflow)
            if moved or _busy(now, self.workflow) > 0:
                still_since = time.monotonic()
            last = now
            if time.monotonic() - still_since >= STILL_SECONDS:
                break
        return last

    def finish(self, settle: float = SETTLE_SECONDS) -> ServerFigures:
        """Wait until the workflow is idle and its counters still, then the figures."""
        self._stop.set()
        self._thread.join()
        after = self._settled(settle)
        return figures(self.before, after, self.workflow, self.peak)


@contextmanager
def watch_server(target: str, key: str | None, workflow: str) -> Iterator[ServerWatch]:
    """Scrape ``target`` before the block and sample it during; call ``finish()``
    after the load for the phase's figures. Raises MetricsError."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=target, headers=headers, timeout=10) as client:
        watch = ServerWatch(client, workflow)
        try:
            yield watch
        finally:
            watch._stop.set()
