"""The ``scale`` step: hookline's throughput as 1, 2 and 4 processes sharing one
PostgreSQL, beside one process on SQLite, on the same workloads and load.

For each workload (async ingest: signed GitHub push, idempotency key, 202 after
commit; sync: the three-node workflow answered with its output) and each process
count N, ``hookline serve --workers N`` serves the workload's workflow from a fresh
PostgreSQL schema and is loaded closed loop with the run's generator settings (the
same connections and duration for every N). The reference is one process on a fresh
SQLite file (``synchronous=FULL``) under the same load. Every server, PostgreSQL and
the load generator share this machine's cores: past the core count, more processes
only compete for them, and the report says how many cores there were.

Each outcome notes how the connections were spread over the processes (the kernel
hands each new connection to whichever process accepts first) and, for async ingest,
how many accepted executions had not run yet when the window closed (ingest can
outrun execution). ``--quick`` measures async ingest only, at N = 1 and 2, and never
installs PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path

import attrs

from ._hookline import SERVER_ENV, workflow_folder
from ._postgres import PostgresServer, fresh_schema, postgres_server, unfinished_executions
from ._results import LoadResult, Outcome
from ._runner import Runner, Served
from ._scenarios import ASYNC_INGEST, SCENARIOS
from ._servers import CpuSample, connections_per_process
from ._spec import HttpScenario, RequestSpec, Skip

__all__ = [
    "PROCESSES",
    "QUICK_PROCESSES",
    "SCALE",
    "SETUPS",
    "WORKLOADS",
    "Setup",
    "Workload",
    "scale",
]

SCALE = "scale"
PROCESSES = (1, 2, 4)
QUICK_PROCESSES = (1, 2)
DESCRIPTION = "hookline as 1, 2 and 4 processes on one PostgreSQL, and 1 on SQLite"
READY_TIMEOUT = 30.0

_CONFIG = """\
# Written by the benchmarks' scale step; --bind and --workers are on the command line.
server: {{bind: "127.0.0.1:{port}", shutdown_timeout: 2s}}
store: {{url: "{url}"}}
workflows: {workflows}
"""


@attrs.frozen
class Workload:
    """One workflow measured at every process count; ``scenario`` names its outcomes."""

    scenario: str
    label: str
    workflow: str
    source: str  # the scenario whose request it sends

    @property
    def request(self) -> RequestSpec:
        scenario = SCENARIOS[self.source]
        assert isinstance(scenario, HttpScenario)
        return scenario.request

    @property
    def signed(self) -> bool:
        return self.request.github_secret is not None


@attrs.frozen
class Setup:
    """A store and how many processes serve it; ``system`` labels its outcomes."""

    store: str  # "postgres" or "sqlite"
    processes: int

    @property
    def system(self) -> str:
        return f"{self.store} x{self.processes}"


WORKLOADS = (
    Workload("scale-async", "async ingest", "async-ingest", ASYNC_INGEST),
    Workload("scale-sync", "sync 3-node", "sync-3", "hookline-sync"),
)
#: Every setup the step may measure, by the ``system`` label of its outcomes.
SETUPS = {
    setup.system: setup
    for setup in (Setup("sqlite", 1), *(Setup("postgres", n) for n in PROCESSES))
}


def _command(
    workload: Workload, url: str, processes: int
) -> Callable[[int, Path, bool], list[str]]:
    def command(port: int, folder: Path, quick: bool) -> list[str]:
        workflows = workflow_folder(folder, workload.workflow)
        config = folder / "hookline.yaml"
        config.write_text(_CONFIG.format(port=port, url=url, workflows=workflows))
        serve = ["serve", "--config", str(config), "--bind", f"127.0.0.1:{port}"]
        return [sys.executable, "-m", "hookline", *serve, "--workers", str(processes)]

    return command


def _wait_workers(log: Path, processes: int) -> None:
    """With ``--workers``, /readyz may be answered by the first worker up: wait until
    the parent says all of them serve."""
    if processes == 1:
        return
    deadline = time.monotonic() + READY_TIMEOUT
    while f"with {processes} workers" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {processes} workers were serving after 30 s")
        time.sleep(0.1)


def _sqlite_unfinished(path: Path) -> tuple[int, int] | None:
    query = "SELECT sum(status IN ('queued', 'throttled', 'running')), count(*) FROM executions"
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            row = conn.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return (int(row[0] or 0), int(row[1])) if row else None


class _Spread:
    """Samples the connections per serving process once, midway through a phase."""

    def __init__(self, served: Served, delay: float) -> None:
        port = int(served.base_url.rsplit(":", 1)[1])
        self.counts: tuple[int, ...] = ()
        self._timer = threading.Timer(delay, self._sample, (served.pid, port))

    def _sample(self, pid: int, port: int) -> None:
        self.counts = connections_per_process(pid, port)

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self._timer.start()
        try:
            yield
        finally:
            self._timer.cancel()


def _notes(
    setup: Setup, spread: tuple[int, ...], unfinished: tuple[int, int] | None, signed: bool
) -> tuple[str, ...]:
    notes = []
    if spread:
        notes.append(
            f"{setup.system}: connections per process {'/'.join(map(str, spread))}"
            + ("" if len(spread) == setup.processes else f" ({len(spread)} processes found)")
        )
    if unfinished is not None and signed:
        left, total = unfinished
        notes.append(
            f"{setup.system}: {left:,} of {total:,} accepted executions not run yet at the end"
        )
    return tuple(notes)


def _other_work(setup: Setup) -> str:
    """How busy the cores were for a second before the setup's server started: other
    work on the machine skews every figure, so the report says how much there was."""
    before = CpuSample.now(os.getpid())
    time.sleep(1.0)
    after = CpuSample.now(os.getpid())
    busy = (after.busy - before.busy) / (after.at - before.at)
    return f"{setup.system}: {busy:.2f} of {os.cpu_count()} cores busy just before it (other work)"


def _measure(
    runner: Runner, workload: Workload, setup: Setup, server: PostgresServer | None
) -> Outcome:
    s = runner.settings

    def body() -> Outcome:
        load = _other_work(setup)
        folder = runner.workdir / workload.scenario
        folder.mkdir(parents=True, exist_ok=True)
        database = folder / "bench.db"
        for leftover in folder.glob("bench.db*"):
            leftover.unlink()
        label = f"{workload.workflow.replace('-', '_')}_{setup.processes}"
        schema = fresh_schema(server, label) if server else nullcontext(f"sqlite:///{database}")
        with schema as url:
            scenario = HttpScenario(
                name=workload.scenario,
                description=f"{workload.label}, {setup.system}",
                system=setup.system,
                request=workload.request,
                command=_command(workload, url, setup.processes),
                env=SERVER_ENV,
                ready_path="/readyz",
                hint="hookline runs as `python -m hookline serve --workers N`",
                unsigned_probe=workload.signed,
            )
            with runner.serve(scenario) as served:
                _wait_workers(folder / "server.log", setup.processes)
                if s.warmup > 0:
                    runner.closed(served, scenario, s.warmup, f"{setup.system} warm-up")
                spread = _Spread(served, min(1.0, s.duration / 2))
                before = CpuSample.now(served.pid)
                with spread.sampling():
                    result: LoadResult = runner.closed(served, scenario, s.duration, setup.system)
                cpu = CpuSample.now(served.pid).since(before)
                left = unfinished_executions(url) if server else _sqlite_unfinished(database)
        extra = ["--connections", str(s.connections), "--generator", "wrk" if s.wrk else "builtin"]
        return runner.add(
            Outcome(
                workload.scenario,
                setup.system,
                "max",
                scenario.description,
                result=result,
                server_command=served.command,
                notes=(
                    *served.notes,
                    *_notes(setup, spread.counts, left, workload.signed),
                    f"{setup.system}: {cpu}",
                    load,
                    *((server.describe(),) if server else ()),
                ),
                reproduce=runner.reproduce(SCALE, *extra),
            )
        )

    description = f"{workload.label}, {setup.system}"
    return runner.guarded(workload.scenario, setup.system, "max", description, body)


def scale(runner: Runner) -> list[Outcome]:
    """Measure every workload on SQLite (1 process) and on PostgreSQL (1, 2, 4; quick:
    async ingest on PostgreSQL at 1 and 2). Skipped as a whole against ``--target``
    or with ``--rate``; the PostgreSQL part is skipped when no server can be had."""
    s = runner.settings
    why = None
    if s.target is not None:
        why = "scale starts its own servers on this machine; --target is one deployment"
    elif s.rate is not None:
        why = "scale measures closed-loop maximum throughput; run it without --rate"
    if why is not None:
        return [runner.add(Outcome(SCALE, "hookline", "max", DESCRIPTION, skipped=why))]
    workloads = WORKLOADS[:1] if s.quick else WORKLOADS
    counts = QUICK_PROCESSES if s.quick else PROCESSES
    outcomes = []
    if not s.quick:
        outcomes += [_measure(runner, w, Setup("sqlite", 1), None) for w in workloads]
    try:
        with postgres_server(install=not s.quick) as server:
            runner.progress.console.print(f"  {SCALE}: {server.describe()}", highlight=False)
            for workload in workloads:
                for n in counts:
                    outcomes.append(_measure(runner, workload, Setup("postgres", n), server))
    except Skip as exc:
        outcomes.append(
            runner.add(Outcome(SCALE, "postgres", "max", DESCRIPTION, skipped=str(exc)))
        )
    return outcomes
