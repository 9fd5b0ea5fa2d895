"""The composed steps: the latency sweep, the generator check, the soak and the
issue 12 targets.

Each needs a rate, taken from what this run measured (hookline's closed-loop maximum
on async ingest) or from ``--rate``; when neither is there the maximum is measured
first, as its own outcome. The targets step measures only what this run lacks.
"""

from __future__ import annotations

import threading
import time

from ._embedded import CALLERS
from ._ratios import half_rate
from ._results import Outcome
from ._runner import Runner
from ._scenarios import ASYNC_INGEST, BASELINE, EMBEDDED, SCENARIOS, SYNC, TARGETS, TRIVIAL
from ._servers import rss_bytes
from ._spec import HttpScenario, MicroScenario

__all__ = [
    "SWEEP_FRACTIONS",
    "generator_check",
    "hookline_max",
    "latency_sweep",
    "soak",
    "targets",
]

#: The sweep's offered rates as fractions of hookline's maximum (the 50% one is the
#: target's "half of hookline's maximum rate").
SWEEP_FRACTIONS = (0.25, 0.5, 0.75)
#: The generator must hold this multiple of the highest rate tested.
GENERATOR_FACTOR = 3.0
#: Offered rate for the generator check when the run tested no rate (requests/s).
DEFAULT_CHECK_RATE = 1000.0
SOAK_FRACTION = 0.7


def _http(name: str) -> HttpScenario:
    scenario = SCENARIOS[name]
    assert isinstance(scenario, HttpScenario)
    return scenario


def hookline_max(runner: Runner) -> float | None:
    """hookline's async-ingest maximum in req/s: from this run, else measured now."""
    found = runner.find(ASYNC_INGEST)
    if found is None:
        found = runner.http_max(_http(ASYNC_INGEST))
    if found.result is None or found.result.rps <= 0:
        return None
    return found.result.rps


def _micro(name: str) -> MicroScenario:
    scenario = SCENARIOS[name]
    assert isinstance(scenario, MicroScenario)
    return scenario


def _round(rate: float) -> float:
    return float(max(10, round(rate / 10) * 10))


def latency_sweep(runner: Runner) -> list[Outcome]:
    """Open loop at fractions of hookline's maximum, against hookline and each baseline
    marked ``in_sweep`` (against ``--target``: hookline only)."""
    if runner.settings.rate is not None:
        rates = [runner.settings.rate]
    else:
        top = hookline_max(runner)
        if top is None:
            return [
                runner.add(
                    Outcome(
                        "latency-sweep",
                        "-",
                        "open",
                        "open-loop latency sweep",
                        skipped=f"no maximum rate for {ASYNC_INGEST} to sweep against",
                    )
                )
            ]
        fractions = (0.5,) if runner.settings.quick else SWEEP_FRACTIONS
        rates = [_round(top * fraction) for fraction in fractions]
    outcomes: list[Outcome] = []
    for scenario in SCENARIOS.values():
        if isinstance(scenario, HttpScenario) and scenario.in_sweep:
            if runner.settings.target is not None and scenario.system != "hookline":
                continue
            outcomes += runner.http_rates(scenario, rates)
    return outcomes


def generator_check(runner: Runner) -> Outcome:
    """The open-loop generator against a trivial server at 3x the top rate tested."""
    offered = [o.result.offered_rps for o in runner.outcomes if o.result and o.result.offered_rps]
    top = max(offered, default=runner.settings.rate or DEFAULT_CHECK_RATE)
    rate = _round(GENERATOR_FACTOR * top)
    outcome = runner.http_rates(TRIVIAL, [rate])[0]
    if outcome.result is None:
        return outcome
    r = outcome.result
    held = r.rps >= 0.97 * rate and r.errors == 0 and r.unfinished == 0
    verdict = "HOLDS" if held else "DOES NOT HOLD"
    note = (
        f"generator check {verdict}: offered {rate:,.0f}/s = {GENERATOR_FACTOR:g}x the top "
        f"rate tested ({top:,.0f}/s), achieved {r.rps:,.0f}/s, send lag p99 "
        f"{r.send_lag.p99_ms if r.send_lag else 0:.1f} ms"
    )
    runner.progress.console.print("  " + note, highlight=False)
    checked = Outcome(
        "generator-check",
        outcome.system,
        outcome.phase,
        "the open-loop generator against a trivial server",
        result=r,
        server_command=outcome.server_command,
        notes=(note,),
        reproduce=runner.reproduce("generator-check", "--rate", f"{top:g}"),
    )
    runner.outcomes[runner.outcomes.index(outcome)] = checked
    return checked


def soak(runner: Runner) -> Outcome:
    """hookline async ingest under open loop at 70% of its maximum for ``--duration``,
    sampling the server's RSS every few seconds."""
    scenario = _http(ASYNC_INGEST)
    description = "RSS over an open-loop soak of hookline async ingest"
    if runner.settings.target is not None:
        return runner.add(
            Outcome("soak", "hookline", "soak", description, skipped="needs a local server")
        )
    rate = runner.settings.rate
    if rate is None:
        top = hookline_max(runner)
        rate = _round(SOAK_FRACTION * top) if top else None
    if rate is None:
        return runner.add(
            Outcome("soak", "hookline", "soak", description, skipped="no maximum rate measured")
        )
    s = runner.settings
    soak_rate = rate

    def body() -> Outcome:
        samples: list[tuple[float, int]] = []
        with runner.serve(scenario) as served:
            runner.open(served, scenario, soak_rate, max(s.warmup, 5.0), "warm-up")
            stop = threading.Event()
            start = time.monotonic()

            def sample() -> None:
                while True:
                    rss = rss_bytes(served.pid)
                    if rss is not None:
                        samples.append((round(time.monotonic() - start, 1), rss))
                    if stop.wait(5.0):
                        return

            thread = threading.Thread(target=sample, name="bench-rss", daemon=True)
            thread.start()
            try:
                result = runner.open(served, scenario, soak_rate, s.duration, "soak")
            finally:
                stop.set()
                thread.join()
            final = rss_bytes(served.pid)
            if final is not None:
                samples.append((round(time.monotonic() - start, 1), final))
        first, last = samples[0][1], samples[-1][1]
        growth = (last - first) / first if first else 0.0
        note = (
            f"RSS {first / 2**20:.1f} MiB -> {last / 2**20:.1f} MiB ({growth:+.1%}) over "
            f"{s.duration:g} s at {soak_rate:,.0f}/s"
        )
        return runner.add(
            Outcome(
                "soak",
                "hookline",
                f"open@{soak_rate:g}",
                description,
                result=result,
                server_command=served.command,
                notes=(note, *served.notes),
                rss=tuple(samples),
                reproduce=runner.reproduce("soak", "--rate", f"{soak_rate:g}"),
            )
        )

    return runner.guarded("soak", "hookline", "soak", description, body)


def targets(runner: Runner) -> list[Outcome]:
    """What issue 12's five ratios need, each step measured only when this run has not
    already: the closed-loop maximum of the quart-trio route, async ingest and sync
    3-node; open loop at half of async ingest's maximum against it and the route; the
    embedded engine's four sides. ``--rate`` does not apply: the rate is the target's."""
    outcomes: list[Outcome] = []
    for name in (BASELINE, ASYNC_INGEST, SYNC):
        found = runner.find(name)
        outcomes.append(found if found is not None else runner.http_max(_http(name)))
    top = runner.find(ASYNC_INGEST)
    if top is not None and top.result is not None and top.result.rps > 0:
        rate = half_rate(top.result.rps)
        for name in (ASYNC_INGEST, BASELINE):
            found = runner.find(name, f"open@{rate:g}")
            outcomes += [found] if found is not None else runner.http_rates(_http(name), [rate])
    else:
        why = f"no maximum rate for {ASYNC_INGEST}: the open-loop target is not measured"
        outcomes.append(
            runner.add(Outcome(TARGETS, "-", "open", "open loop at half the max", skipped=why))
        )
    embedded = next(
        (o for o in reversed(runner.outcomes) if o.scenario == EMBEDDED and o.micro), None
    )
    outcomes.append(embedded or runner.micro(_micro(EMBEDDED), CALLERS))
    return outcomes
