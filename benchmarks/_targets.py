"""The performance targets of issue 7, checked against one run's outcomes.

Every target is a ratio measured in the same run on the same machine. A target whose
figures the run did not produce is reported as not measured, never as met.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._embedded import ENGINE_MEMORY, TRIO_TASK
from ._results import Outcome
from ._scenarios import ASYNC_INGEST, BASELINE, CEILING, EMBEDDED, NODE_RED, SYNC

__all__ = ["Target", "evaluate"]


@attrs.frozen
class Target:
    """One target: ``measured`` (None: not measured) against ``goal``.

    ``at_most`` goals are costs (lower is better); the others are ratios of
    throughput (higher is better). A goal of None is reported for information only.
    """

    name: str
    measured: float | None
    goal: float | None
    at_most: bool = False
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None or self.goal is None:
            return None
        return self.measured <= self.goal if self.at_most else self.measured >= self.goal


def _rps(outcomes: Sequence[Outcome], scenario: str) -> float | None:
    for outcome in reversed(outcomes):
        if outcome.scenario == scenario and outcome.phase == "max" and outcome.result:
            return outcome.result.rps
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _p99_at(outcomes: Sequence[Outcome], scenario: str, rate: float) -> float | None:
    for outcome in reversed(outcomes):
        r = outcome.result
        if outcome.scenario == scenario and r and r.mode == "open" and r.offered_rps == rate:
            return r.latency.p99_ms
    return None


def _half_rate_p99(outcomes: Sequence[Outcome]) -> Target:
    name = "open loop at 1/2 of hookline's max: p99 over quart-trio's p99"
    top = _rps(outcomes, ASYNC_INGEST)
    rates = sorted(
        {
            o.result.offered_rps
            for o in outcomes
            if o.scenario == ASYNC_INGEST and o.result and o.result.offered_rps
        }
    )
    if top is None or not rates:
        return Target(name, None, 1.5, at_most=True)
    rate = min(rates, key=lambda r: abs(r - top / 2))
    mine, theirs = _p99_at(outcomes, ASYNC_INGEST, rate), _p99_at(outcomes, BASELINE, rate)
    detail = f"at {rate:,.0f}/s: {mine or 0:.1f} ms vs {theirs or 0:.1f} ms"
    return Target(name, _ratio(mine, theirs), 1.5, at_most=True, detail=detail)


def _micro(outcomes: Sequence[Outcome], scenario: str) -> Outcome | None:
    return next((o for o in reversed(outcomes) if o.scenario == scenario and o.micro), None)


def evaluate(outcomes: Sequence[Outcome]) -> list[Target]:
    """Each target with what this run measured."""
    ingest = _rps(outcomes, ASYNC_INGEST)
    quart, asgi, red = _rps(outcomes, BASELINE), _rps(outcomes, CEILING), _rps(outcomes, NODE_RED)
    sync = _rps(outcomes, SYNC)
    targets = [
        Target("async ingest / quart-trio route (req/s)", _ratio(ingest, quart), 1.0),
        Target("async ingest / bare ASGI (req/s)", _ratio(ingest, asgi), 0.7),
        Target("async ingest / Node-RED (req/s)", _ratio(ingest, red), None),
        Target("quart-trio route / bare ASGI (req/s)", _ratio(quart, asgi), None),
        Target("sync 3-node / quart-trio route (req/s)", _ratio(sync, quart), 0.8),
        _half_rate_p99(outcomes),
    ]
    embedded = _micro(outcomes, EMBEDDED)
    cost = None
    if embedded and embedded.micro:
        engine = embedded.micro.side(ENGINE_MEMORY)
        task = embedded.micro.side(TRIO_TASK)
        cost = _ratio(engine.cpu_us, task.cpu_us) if engine and task else None
    targets.append(Target("embedded 5-node: CPU over a plain trio task", cost, 3.0, at_most=True))
    store = _micro(outcomes, "store-actor")
    targets.append(
        Target(
            "store actor / raw executemany (acks/s)",
            store.micro.ratio if store and store.micro else None,
            0.5,
        )
    )
    soak = next((o for o in outcomes if o.scenario == "soak" and len(o.rss) >= 2), None)
    growth = None
    if soak is not None:
        first, last = soak.rss[0][1], soak.rss[-1][1]
        growth = (last - first) / first if first else None
    targets.append(Target("soak at 70% of max: RSS growth", growth, 0.10, at_most=True))
    check = next((o for o in outcomes if o.scenario == "generator-check" and o.result), None)
    if check is not None and check.result is not None and check.result.offered_rps:
        held = check.result.rps / check.result.offered_rps
        targets.append(Target("generator: achieved / offered at 3x the top rate", held, 0.97))
    return targets
