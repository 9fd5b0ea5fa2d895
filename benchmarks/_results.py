"""What a run measured: load results, micro-benchmark results and each step's outcome.

Every figure the report prints, charts or writes to JSON is a field of one of these
frozen records; nothing downstream recomputes a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "Latency",
    "LoadResult",
    "Measured",
    "MicroResult",
    "Outcome",
    "Round",
    "ServerFigures",
    "percentiles",
]

Mode = Literal["closed", "open"]


@attrs.frozen
class Latency:
    """Latency percentiles in milliseconds (zeros when nothing was answered)."""

    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0


def percentiles(seconds: Sequence[float]) -> Latency:
    """The nearest-rank percentiles of ``seconds`` (unsorted), in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return Latency()

    def rank(q: float) -> float:
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return ordered[index] * 1000

    return Latency(rank(0.50), rank(0.90), rank(0.99), rank(0.999), ordered[-1] * 1000)


@attrs.frozen
class LoadResult:
    """One HTTP load measurement.

    ``closed``: ``connections`` each send a request as soon as the previous answer
    arrived, for maximum throughput; latency is per request (it hides queueing).
    ``open``: requests are scheduled at ``offered_rps`` regardless of answers, and
    latency runs from each request's *scheduled* send time, so a stalled server shows
    in the tail (coordinated omission corrected); ``achieved_rps`` counts answers that
    arrived within the window. ``unfinished`` counts scheduled
    requests with no answer when the run (plus its drain period) ended; ``send_lag``
    is how late the generator itself put requests on the wire (its own health).
    ``non_2xx`` counts answers outside 2xx (wrk: only >= 400). ``sent`` counts the
    requests put on the wire, answered or not (None: the generator cannot tell).
    """

    mode: Mode
    generator: str
    duration_s: float
    connections: int
    completed: int
    latency: Latency
    non_2xx: int = 0
    errors: int = 0
    offered_rps: float | None = None
    achieved_rps: float | None = None
    scheduled: int | None = None
    unfinished: int = 0
    send_lag: Latency | None = None
    statuses: tuple[tuple[int, int], ...] = ()
    command: str = ""
    sent: int | None = None

    @property
    def rps(self) -> float:
        """Answered requests per second over the measured window (open loop: answers
        that arrived within it; the drain period is not counted)."""
        if self.achieved_rps is not None:
            return self.achieved_rps
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0


@attrs.frozen
class Measured:
    """One side of an in-process benchmark: ``ops`` done in ``wall_s`` seconds, during
    which the process spent ``cpu_s`` seconds of CPU (``time.process_time``: every
    thread, SQLite's writer included). CPU per op is the cost that other work on the
    machine does not inflate; the rate is what a caller sees."""

    label: str
    ops: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per op (0 when nothing was done)."""
        return self.cpu_s / self.ops * 1e6 if self.ops else 0.0


@attrs.frozen
class MicroResult:
    """An in-process benchmark: ``subject`` against ``baseline`` in the same run.

    Rates are operations per second; ``ratio`` is subject over baseline throughput
    (so ``1 / ratio`` is the subject's cost in units of the baseline's). ``extra`` holds
    further labelled rates measured alongside, ``facts`` what the figures depend on,
    ``sides`` every side measured with its CPU time (when the benchmark records it).
    """

    unit: str
    subject: str
    subject_ops: int
    subject_s: float
    baseline: str
    baseline_ops: int
    baseline_s: float
    extra: tuple[tuple[str, float], ...] = ()
    facts: tuple[tuple[str, Any], ...] = ()
    sides: tuple[Measured, ...] = ()

    def side(self, label: str) -> Measured | None:
        """The side measured as ``label`` (None: not measured in this run)."""
        return next((side for side in self.sides if side.label == label), None)

    @property
    def subject_rate(self) -> float:
        return self.subject_ops / self.subject_s if self.subject_s > 0 else 0.0

    @property
    def baseline_rate(self) -> float:
        return self.baseline_ops / self.baseline_s if self.baseline_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.subject_rate / self.baseline_rate if self.baseline_rate > 0 else 0.0


@attrs.frozen
class ServerFigures:
    """What a deployed hookline recorded for one phase, from its ``/metrics``
    (:mod:`benchmarks._server_figures`), and the ledger against the client's count:
    ``sent = accepted + refused + lost`` with ``lost`` 0 when nothing went missing."""

    workflow: str
    deliveries: dict[str, int]
    executions_finished: dict[str, int]
    commits: int
    commit_mean_ms: float | None
    commit_p99_ms_at_most: float | None
    queue_depth_peak: int
    restarts: int
    unfinished_executions: int
    sent: int | None = None
    client_2xx: int | None = None
    accepted: int | None = None
    refused: int | None = None
    lost: int | None = None

    @property
    def balanced(self) -> bool:
        return self.lost == 0

    def ledger_line(self) -> str:
        """The ledger in one line, with any difference between client and server."""
        if self.lost is None:
            return "ledger: no client count"
        line = (
            f"ledger: sent {self.sent:,} = accepted {self.accepted:,} + refused "
            f"{self.refused:,} + lost {self.lost:,}"
        )
        line += " (balanced)" if self.lost == 0 else " (NOT BALANCED)"
        if self.client_2xx != self.accepted:
            line += (
                f"; the client counted {self.client_2xx:,} 2xx answers, the server "
                f"recorded {self.accepted:,} accepted"
            )
        return line


@attrs.frozen
class Round:
    """One repetition of a measured phase (``--rounds``): the spread of these is the
    noise ``python -m benchmarks compare`` weighs a change against."""

    rps: float
    p99_ms: float


@attrs.frozen
class Outcome:
    """One step of a run: a scenario measured one way, or why it was not.

    ``system`` names what was measured (``hookline``, ``quart-trio``, ``node-red``...);
    ``phase`` how (``max`` for closed-loop, ``open@800`` for an open-loop rate, ``micro``).
    Exactly one of ``result``, ``micro``, ``skipped`` and ``error`` is set. ``rss``
    holds (seconds, bytes) samples of the server's memory (the soak); ``server_cpu_s``
    the CPU seconds the server spent over a closed-loop window (None: not sampled), a
    cost that other work on the machine does not inflate the way it lowers req/s.
    ``server`` the deployed server's own figures (``--target``), ``rounds`` each
    repetition's figures when the phase was measured more than once (``--rounds``).
    """

    scenario: str
    system: str
    phase: str
    description: str
    result: LoadResult | None = None
    micro: MicroResult | None = None
    skipped: str | None = None
    error: str | None = None
    server_command: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reproduce: str = ""
    rss: tuple[tuple[float, int], ...] = ()
    server_cpu_s: float | None = None
    server: ServerFigures | None = None
    rounds: tuple[Round, ...] = ()

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def cpu_us_per_request(self) -> float | None:
        """The server's CPU microseconds per answered request over the window."""
        if self.server_cpu_s is None or self.result is None or not self.result.completed:
            return None
        return self.server_cpu_s / self.result.completed * 1e6
