"""Running scenarios: start the server (or use ``--target``), load it, keep the outcome.

:class:`Runner` runs one step at a time and never lets one scenario's failure stop
the others: a :class:`~benchmarks._spec.Skip` becomes a skipped outcome, a server
that does not come up or a generator that fails becomes an error outcome.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from ._load import run_builtin, run_wrk
from ._openloop import DRAIN_SECONDS, run_open
from ._prepare import Prepared
from ._progress import RunProgress
from ._results import LoadResult, Outcome, Round, ServerFigures
from ._server_figures import MetricsError, ledger, watch_server
from ._servers import CpuSample, ServerError, running_server, signature_checked
from ._spec import HttpScenario, MicroScenario, MicroSettings, RequestSpec, Skip

__all__ = ["RunSettings", "Runner", "Served"]


@attrs.frozen
class RunSettings:
    """How each step measures (see ``python -m benchmarks --help``)."""

    duration: float
    warmup: float
    connections: int
    open_connections: int
    rate: float | None
    quick: bool
    wrk: str | None
    threads: int
    target: str | None
    micro_duration: float
    #: The admin key for the target's ``/metrics`` (None: unauthenticated).
    admin_key: str | None = None
    #: What ``prepare`` deployed on the target (None: nothing from here).
    prepared: Prepared | None = None
    #: Times each measured phase is repeated (the noise estimate of ``compare``).
    rounds: int = 1


@attrs.frozen
class Served:
    """Where a step's load goes: a server this run started (``pid``) or the target."""

    base_url: str
    command: tuple[str, ...] = ()
    pid: int = 0
    notes: tuple[str, ...] = ()
    #: The request as this server takes it (a target's: its path and secret).
    request: RequestSpec | None = None
    #: The workflow key whose server-side figures are scraped (targets only).
    workflow: str | None = None


class Runner:
    """Runs steps in order, collecting :attr:`outcomes`."""

    def __init__(self, settings: RunSettings, workdir: Path, progress: RunProgress) -> None:
        self.settings = settings
        self.workdir = workdir
        self.progress = progress
        self.outcomes: list[Outcome] = []

    # -- bookkeeping -------------------------------------------------------------------

    def add(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        self.progress.console.print(_summary(outcome), highlight=False, markup=False)
        return outcome

    def find(self, scenario: str, phase: str = "max") -> Outcome | None:
        """The latest outcome of ``scenario`` in ``phase`` that has a load result."""
        for outcome in reversed(self.outcomes):
            if outcome.scenario == scenario and outcome.phase == phase and outcome.result:
                return outcome
        return None

    def reproduce(self, name: str, *extra: str) -> str:
        s = self.settings
        argv = ["python", "-m", "benchmarks", name, "--duration", f"{s.duration:g}"]
        argv += ["--warmup", f"{s.warmup:g}", *extra]
        if s.rounds > 1:
            argv += ["--rounds", str(s.rounds)]
        if s.quick:
            argv.append("--quick")
        if s.target:
            argv += ["--target", s.target]
        return shlex.join(argv)

    # -- servers -----------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self, scenario: HttpScenario) -> Iterator[Served]:
        """The scenario's server for the block; raises Skip or ServerError."""
        if self.settings.target is not None:
            if scenario.system != "hookline":
                raise Skip("--target measures a deployed hookline; baselines run locally")
            from ._servers import probe

            request, workflow = self._target_request(scenario)
            probe(scenario.name, request, self.settings.target)
            notes = self._signature_note(scenario, None, request)
            yield Served(self.settings.target, notes=notes, request=request, workflow=workflow)
            return
        with running_server(scenario, self.workdir, quick=self.settings.quick) as server:
            notes = self._signature_note(scenario, server.base_url)
            yield Served(server.base_url, server.command, server.pid, notes)

    def _target_request(self, scenario: HttpScenario) -> tuple[RequestSpec, str | None]:
        """The scenario's request as the target takes it, and the workflow serving it;
        raises Skip when ``prepare`` did not deploy it there."""
        prepared = self.settings.prepared
        target = self.settings.target
        if prepared is None:
            # Deployed by hand (BENCH_SECRET in the server's environment): as it is.
            return scenario.request, None
        request = prepared.request(scenario.request)
        if request is None:
            raise Skip(
                f"its workflow is not deployed on {target}: `python -m benchmarks prepare "
                f"--target {target}` deploys the ones the server takes"
            )
        return request, prepared.workflow_key(scenario.request)

    def _signature_note(
        self, scenario: HttpScenario, base_url: str | None, request: RequestSpec | None = None
    ) -> tuple[str, ...]:
        if not scenario.unsigned_probe:
            return ()
        url = base_url or self.settings.target or ""
        if signature_checked(request or scenario.request, url):
            return ("signature verified: an unsigned request was refused",)
        return (
            (
                "NOT VERIFIED: the server accepted an unsigned request, so this run measured "
                "ingest without the signature check (requests were signed anyway)"
            ),
        )

    def guarded(
        self, scenario: str, system: str, phase: str, description: str, body: Callable[[], Outcome]
    ) -> Outcome:
        """Run ``body`` and turn what it raised into a skipped or failed outcome."""
        try:
            return body()
        except Skip as exc:
            return self.add(Outcome(scenario, system, phase, description, skipped=str(exc)))
        except (ServerError, RuntimeError, OSError, ValueError) as exc:
            return self.add(Outcome(scenario, system, phase, description, error=str(exc)))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            return self.add(Outcome(scenario, system, phase, description, error=error))

    # -- load --------------------------------------------------------------------------

    def closed(
        self, served: Served, scenario: HttpScenario, seconds: float, tag: str
    ) -> LoadResult:
        s = self.settings
        run_id = f"{scenario.name}-{tag}-{time.time_ns()}"
        with self.progress.timed(f"{scenario.name} {tag}", seconds):
            if s.wrk is not None:
                return run_wrk(
                    s.wrk,
                    served.base_url,
                    served.request or scenario.request,
                    seconds,
                    s.connections,
                    run_id,
                    s.threads,
                    count_sent=served.workflow is not None,
                )
            spec = served.request or scenario.request
            return run_builtin(served.base_url, spec, seconds, s.connections, run_id)

    def open(
        self, served: Served, scenario: HttpScenario, rate: float, seconds: float, tag: str
    ) -> LoadResult:
        run_id = f"{scenario.name}-{tag}-{time.time_ns()}"
        label = f"{scenario.name} {tag} {rate:,.0f}/s"
        with self.progress.timed(label, seconds + 0.5):
            return run_open(
                served.base_url,
                served.request or scenario.request,
                rate,
                seconds,
                self.settings.open_connections,
                run_id,
                drain=min(DRAIN_SECONDS, max(1.0, seconds / 2)),
            )

    def measured(
        self, served: Served, measure: Callable[[], LoadResult]
    ) -> tuple[LoadResult, tuple[Round, ...], ServerFigures | None, tuple[str, ...]]:
        """``measure`` run ``rounds`` times: the median round's result, every round's
        figures, and the server's own figures over all rounds (a target with a
        deployed workflow) with the ledger against the client's count."""
        watching = (
            watch_server(served.base_url, self.settings.admin_key, served.workflow)
            if served.workflow
            else contextlib.nullcontext()
        )
        notes: tuple[str, ...] = ()
        server: ServerFigures | None = None
        results: list[LoadResult] = []
        count = max(1, self.settings.rounds)
        try:
            with watching as watch:
                while len(results) < count:
                    results.append(measure())
                if watch is not None:
                    server = watch.finish()
        except MetricsError as exc:
            notes = (f"server-side figures unavailable: {exc}",)
            while len(results) < count:
                results.append(measure())
        ordered = sorted(results, key=lambda r: r.rps)
        result = ordered[len(ordered) // 2]
        rounds = tuple(Round(r.rps, r.latency.p99_ms) for r in results) if len(results) > 1 else ()
        if server is not None:
            server = ledger(server, _summed(results))
            notes = (server.ledger_line(),)
        return result, rounds, server, notes

    # -- steps -------------------------------------------------------------------------

    def http_max(self, scenario: HttpScenario) -> Outcome:
        """Closed-loop maximum throughput, after an unmeasured warm-up."""
        s = self.settings

        def body() -> Outcome:
            with self.serve(scenario) as served:
                if s.warmup > 0:
                    self.closed(served, scenario, s.warmup, "warm-up")
                before = CpuSample.now(served.pid) if served.pid else None
                result, rounds, server, notes = self.measured(
                    served, lambda: self.closed(served, scenario, s.duration, "max")
                )
                cpu = CpuSample.now(served.pid).server - before.server if before else None
                if rounds:
                    cpu = cpu / len(rounds) if cpu is not None else None
            extra = ["--connections", str(s.connections)]
            extra += ["--generator", "wrk" if s.wrk else "builtin"]
            return self.add(
                Outcome(
                    scenario.name,
                    scenario.system,
                    "max",
                    scenario.description,
                    result=result,
                    server_command=served.command,
                    notes=served.notes + notes,
                    reproduce=self.reproduce(scenario.name, *extra),
                    server_cpu_s=cpu,
                    server=server,
                    rounds=rounds,
                )
            )

        return self.guarded(scenario.name, scenario.system, "max", scenario.description, body)

    def http_rates(self, scenario: HttpScenario, rates: list[float]) -> list[Outcome]:
        """Open-loop runs at each rate on one server, after a warm-up at the first."""
        s = self.settings
        done: list[Outcome] = []

        def body() -> Outcome:
            with self.serve(scenario) as served:
                if s.warmup > 0:
                    self.open(served, scenario, rates[0], s.warmup, "warm-up")
                for rate in rates:
                    result, rounds, server, notes = self.measured(
                        served,
                        functools.partial(self.open, served, scenario, rate, s.duration, "open"),
                    )
                    extra = ["--rate", f"{rate:g}", "--open-connections", str(s.open_connections)]
                    done.append(
                        self.add(
                            Outcome(
                                scenario.name,
                                scenario.system,
                                f"open@{rate:g}",
                                scenario.description,
                                result=result,
                                server_command=served.command,
                                notes=served.notes + notes,
                                reproduce=self.reproduce(scenario.name, *extra),
                                server=server,
                                rounds=rounds,
                            )
                        )
                    )
            return done[-1]

        phase = f"open@{rates[0]:g}"
        outcome = self.guarded(scenario.name, scenario.system, phase, scenario.description, body)
        return done if outcome in done else [outcome]

    def micro(self, scenario: MicroScenario, concurrency: int) -> Outcome:
        settings = MicroSettings(self.settings.micro_duration, concurrency, self.workdir)

        reproduce = self.reproduce(scenario.name)

        def body() -> Outcome:
            with self.progress.timed(scenario.name, 3 * settings.duration + 1):
                result = scenario.run(settings)
            return self.add(
                Outcome(
                    scenario.name,
                    scenario.system,
                    "micro",
                    scenario.description,
                    micro=result,
                    reproduce=reproduce,
                )
            )

        return self.guarded(scenario.name, scenario.system, "micro", scenario.description, body)


def _summed(results: list[LoadResult]) -> LoadResult:
    """The client's counts over every round (for the ledger)."""
    sent = [r.sent for r in results]
    return attrs.evolve(
        results[0],
        completed=sum(r.completed for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        errors=sum(r.errors for r in results),
        sent=None if None in sent else sum(s for s in sent if s is not None),
    )


def _summary(outcome: Outcome) -> str:
    head = f"  {outcome.scenario} [{outcome.system}, {outcome.phase}]"
    if outcome.skipped:
        return f"{head}: skipped: {outcome.skipped}"
    if outcome.error:
        return f"{head}: FAILED (details below the table)"
    if outcome.result is not None:
        r = outcome.result
        offered = f" of {r.offered_rps:,.0f} offered" if r.offered_rps else ""
        return f"{head}: {r.rps:,.0f} req/s{offered}, p99 {r.latency.p99_ms:.1f} ms"
    if outcome.micro is not None:
        m = outcome.micro
        return f"{head}: {m.subject_rate:,.0f} {m.unit}/s ({m.ratio:.3g}x {m.baseline})"
    return head
