"""Load from many machines with Locust: export a scenario as a locustfile, run it with
a master and workers, merge its statistics back into the suite's report.

Why Locust: it is on PyPI (pip installs it beside the suite, Python 3.11 included),
its master/worker mode spreads one test over any number of machines with no extra
service, and a locustfile is Python, so the scenario's signing, unique idempotency
keys and open-loop schedule carry over exactly. k6 is in neither Debian nor npm (npm's
``k6`` is a placeholder for editor completion) and vegeta is not packaged in Debian or
PyPI: both would mean downloading a binary outside the package managers.

- ``export``: the scenario's request as it goes to the target (``prepare``'s path and
  signature) in a locustfile (:mod:`benchmarks._locust_template`), plus
  ``<file>.bench.json`` describing the export for ``merge``.
- ``run``: export, then one master and ``--workers`` workers on this machine (what the
  tests do, and a dress rehearsal before spreading workers over machines), scraping
  the server's ``/metrics`` around the run when the workflow was prepared.
- ``merge``: Locust's ``--csv`` statistics to the suite's JSON, Markdown and HTML.
"""

from __future__ import annotations

import base64
import csv
import datetime
import importlib.metadata
import json
import math
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from ._machine import machine_facts
from ._prepare import load_prepared
from ._report import markdown, write_json
from ._results import Latency, LoadResult, Outcome, ServerFigures
from ._scenarios import SCENARIOS
from ._server_figures import MetricsError, ledger, watch_server
from ._spec import REPEAT_LAG, HttpScenario

__all__ = ["export", "locust_version", "merge", "run_local"]

#: Connections each user keeps to the target (one user per worker).
CONNECTIONS = 64
#: Seconds the master runs past the sending: the last answers (the locustfile waits up
#: to 10 s for them) and the workers' last reports (every second).
RUN_TIME_MARGIN = 5


def locust_version() -> str | None:
    # Never import locust here: it monkey-patches the whole process with gevent.
    try:
        return importlib.metadata.version("locust")
    except importlib.metadata.PackageNotFoundError:
        return None


def _scenario(name: str) -> HttpScenario:
    scenario = SCENARIOS.get(name)
    if not isinstance(scenario, HttpScenario) or scenario.system != "hookline":
        known = [
            n
            for n, s in SCENARIOS.items()
            if isinstance(s, HttpScenario) and s.system == "hookline"
        ]
        raise ValueError(f"{name!r} is not a hookline HTTP scenario; these are: {', '.join(known)}")
    return scenario


def export(
    name: str, target: str, rate: float, out: Path, results: Path, duration: float = 30.0
) -> Path:
    """Write the locustfile for scenario ``name`` against ``target`` at ``rate`` req/s
    for ``duration`` seconds (and ``<out>.bench.json``); raises ValueError when the
    scenario cannot be."""
    scenario = _scenario(name)
    spec = scenario.request
    prepared = load_prepared(results, target)
    workflow = None
    if prepared is not None:
        found = prepared.request(spec)
        if found is None:
            raise ValueError(f"{name}: its workflow is not deployed on {target} (prepare it)")
        spec, workflow = found, prepared.workflow_key(spec)
    fields = {
        "@SCENARIO_REPR@": repr(name),
        "@SCENARIO@": name,
        "@PATH@": repr(spec.path),
        "@METHOD@": repr(spec.method),
        "@BODY@": repr(base64.b64encode(spec.body()).decode()),
        "@HEADERS@": repr(dict(spec.all_headers())),
        "@UNIQUE@": repr(spec.unique_header),
        "@REPEAT_LAG@": repr(REPEAT_LAG if spec.repeat else 0),
        "@RATE@": repr(float(rate)),
        "@DURATION@": repr(float(duration)),
        "@CONNECTIONS@": repr(CONNECTIONS),
    }
    from ._locust_template import LOCUSTFILE

    text = LOCUSTFILE
    for field, value in fields.items():
        text = text.replace(field, value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    meta = {
        "scenario": name,
        "description": scenario.description,
        "target": target.rstrip("/"),
        "rate": rate,
        "workflow": workflow,
        "locustfile": str(out),
    }
    _meta_path(out).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _meta_path(locustfile: Path) -> Path:
    return locustfile.with_name(locustfile.name + ".bench.json")


def master_command(
    locustfile: Path, target: str, rate: float, workers: int, duration: float, csv_prefix: Path
) -> list[str]:
    return [
        "locust", "-f", str(locustfile), "--master", "--headless",
        "--expect-workers", str(workers), "--users", str(workers),
        "--spawn-rate", str(workers),
        "--run-time", f"{math.ceil(duration) + RUN_TIME_MARGIN}s",
        "--host", target, "--csv", str(csv_prefix), "--bench-rate", f"{rate:g}",
        "--bench-duration", f"{duration:g}",
        "--exit-code-on-error", "0", "--only-summary",
    ]  # fmt: skip


def worker_command(locustfile: Path, master_host: str = "MASTER_HOST") -> list[str]:
    return ["locust", "-f", str(locustfile), "--worker", "--master-host", master_host]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _locust_argv(argv: list[str]) -> list[str]:
    # The locust of this interpreter, whatever PATH holds.
    return [sys.executable, "-m", "locust", *argv[1:]]


@attrs.frozen
class LocustRun:
    csv_prefix: Path
    duration: float
    workers: int
    commands: tuple[str, ...]
    server: ServerFigures | None
    notes: tuple[str, ...]


def run_local(
    locustfile: Path,
    workers: int,
    duration: float,
    csv_prefix: Path,
    *,
    admin_key: str | None = None,
    timeout: float = 120.0,
) -> LocustRun:
    """One master and ``workers`` workers of ``locustfile`` on this machine, the
    server's figures scraped around them. Raises RuntimeError when Locust fails."""
    meta = json.loads(_meta_path(locustfile).read_text())
    port = _free_port()
    master = master_command(locustfile, meta["target"], meta["rate"], workers, duration, csv_prefix)
    master += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    worker = [*worker_command(locustfile, "127.0.0.1"), "--master-port", str(port)]
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    server: ServerFigures | None = None
    with tempfile.TemporaryDirectory(prefix="hookline-locust-") as logs, ExitStack() as stack:
        watch = None
        if meta.get("workflow"):
            try:
                watch = stack.enter_context(
                    watch_server(meta["target"], admin_key, meta["workflow"])
                )
            except MetricsError as exc:
                notes.append(f"server-side figures unavailable: {exc}")
        code = _run_processes(master, worker, workers, Path(logs), timeout)
        if watch is not None:
            try:
                server = watch.finish()
            except MetricsError as exc:
                notes.append(f"server-side figures unavailable: {exc}")
        if code != 0 or not Path(f"{csv_prefix}_stats.csv").exists():
            log = (Path(logs) / "master.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"locust master failed (exit {code}): {log}")
        if read_stats(csv_prefix, duration, workers, meta["rate"]).sent == 0:
            log = (Path(logs) / "worker0.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the locust workers sent nothing: {log}")
    commands = (shlex.join(master), *(shlex.join(worker) for _ in range(workers)))
    return LocustRun(csv_prefix, duration, workers, commands, server, tuple(notes))


def _run_processes(
    master: list[str], worker: list[str], workers: int, logs: Path, timeout: float
) -> int:
    """Start the master and the workers, wait for the master's end; the exit status."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in [("master", master)] + [(f"worker{i}", worker) for i in range(workers)]:
            with (logs / f"{name}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(_locust_argv(argv), stdout=log, stderr=subprocess.STDOUT)
                )
        code = started[0].wait(timeout=timeout)
        for process in started[1:]:
            process.wait(timeout=30)
        return code
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def _number(row: dict[str, str], column: str) -> float:
    value = row.get(column, "") or "0"
    return 0.0 if value == "N/A" else float(value)


def read_stats(csv_prefix: Path, duration: float, workers: int, rate: float) -> LoadResult:
    """Locust's aggregated row as a :class:`LoadResult` (open loop at ``rate``)."""
    with open(f"{csv_prefix}_stats.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    row = next((r for r in rows if r.get("Name") == "Aggregated"), rows[-1] if rows else None)
    if row is None:
        raise ValueError(f"{csv_prefix}_stats.csv has no statistics")
    statuses: dict[int, int] = {}
    errors = 0
    failures = Path(f"{csv_prefix}_failures.csv")
    if failures.exists():
        with failures.open(newline="") as file:
            for failure in csv.DictReader(file):
                count = int(failure.get("Occurrences") or 0)
                error = failure.get("Error", "")
                if "HTTP " in error:
                    status = int(error.rsplit("HTTP ", 1)[1].split()[0].strip("')\""))
                    statuses[status] = statuses.get(status, 0) + count
                else:
                    errors += count
    count = int(_number(row, "Request Count"))
    non_2xx = sum(statuses.values())
    return LoadResult(
        mode="open",
        generator=f"locust {locust_version()} ({workers} workers)",
        duration_s=duration,
        connections=CONNECTIONS * workers,
        completed=count - errors,
        latency=Latency(
            _number(row, "50%"),
            _number(row, "90%"),
            _number(row, "99%"),
            _number(row, "99.9%"),
            _number(row, "Max Response Time"),
        ),
        non_2xx=non_2xx,
        errors=errors,
        offered_rps=rate,
        achieved_rps=(count - errors) / duration if duration > 0 else 0.0,
        statuses=tuple(sorted(statuses.items())),
        sent=count,
    )


def merge(
    meta_file: Path,
    csv_prefix: Path,
    results: Path,
    *,
    duration: float,
    workers: int,
    run: LocustRun | None = None,
    command: str = "",
) -> tuple[Path, dict[str, Any]]:
    """The suite's JSON (and Markdown, HTML) of one Locust run; returns the JSON path
    and the document."""
    from ._html import write_html

    meta = json.loads(meta_file.read_text())
    result = read_stats(csv_prefix, duration, workers, meta["rate"])
    server = run.server if run else None
    notes = list(run.notes) if run else []
    if server is not None:
        server = ledger(server, result)
        notes.append(server.ledger_line())
    started = datetime.datetime.now(datetime.UTC)
    reproduce = "\n".join(run.commands) if run else ""
    outcome = Outcome(
        meta["scenario"],
        "hookline",
        f"open@{meta['rate']:g}",
        meta["description"],
        result=result,
        notes=tuple(notes),
        reproduce=reproduce,
        server=server,
    )
    with tempfile.TemporaryDirectory() as scratch:
        facts = machine_facts(Path(scratch), wrk=None, node=None, node_red=None)
    facts["locust"] = locust_version()
    document_run: dict[str, object] = {
        "timestamp": started.isoformat(timespec="seconds"),
        "command": command,
        "generator": result.generator,
        "settings": {"target": meta["target"], "rate": meta["rate"], "workers": workers},
        "effective": {"duration_s": duration, "workers": workers, "locustfile": meta["locustfile"]},
    }
    stem = f"{started:%Y%m%dT%H%M%SZ}-locust"
    path = write_json(results / f"{stem}.json", [outcome], facts, document_run)
    path.with_suffix(".md").write_text(markdown([outcome], facts, document_run))
    document = json.loads(path.read_text())
    write_html(document, path.with_suffix(".html"))
    return path, document


def main(argv: Sequence[str], results_default: Path) -> int:
    """``python -m benchmarks locust export|run|merge ...``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks locust", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("export", "run"):
        p = sub.add_parser(action)
        p.add_argument("scenario")
        p.add_argument("--target", required=True, help="base URL of the hookline to load")
        p.add_argument("--rate", type=float, default=100.0, help="req/s over all workers (100)")
        p.add_argument("--out", type=Path, help="the locustfile (default: in --results)")
        p.add_argument("--results", type=Path, default=results_default)
        p.add_argument("--duration", type=float, default=10.0, help="seconds of sending (10)")
        if action == "run":
            p.add_argument("--workers", type=int, default=2, help="local workers (2)")
            p.add_argument("--key", default=os.environ.get("HOOKLINE_ADMIN_KEY"))
    m = sub.add_parser("merge")
    m.add_argument("export", type=Path, help="the <locustfile>.bench.json export wrote")
    m.add_argument("csv_prefix", type=Path, help="the master's --csv prefix")
    m.add_argument("--duration", type=float, required=True, help="the --bench-duration")
    m.add_argument("--workers", type=int, required=True)
    m.add_argument("--results", type=Path, default=results_default)
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks", "locust", *argv])
    if args.action == "merge":
        path, _ = merge(
            args.export, args.csv_prefix, args.results,
            duration=args.duration, workers=args.workers, command=command,
        )  # fmt: skip
        print(f"results: {path}, {path.with_suffix('.md')} and {path.with_suffix('.html')}")
        return 0
    if locust_version() is None:
        print("Locust is not installed: pip install -e '.[bench]'")
        return 2
    target = args.target.rstrip("/")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or args.results / "locust" / f"{args.scenario}-{stamp}.py"
    try:
        export(args.scenario, target, args.rate, out, args.results, args.duration)
    except ValueError as exc:
        print(exc)
        return 2
    if args.action == "export":
        prefix = Path("locust-out") / args.scenario
        duration = args.duration
        print(f"locustfile: {out}\nOn the master ({args.rate:g} req/s over 2 workers):")
        print("  " + shlex.join(master_command(out, target, args.rate, 2, duration, prefix)))
        print("On each worker machine (copy the locustfile there):")
        print("  " + shlex.join(worker_command(out)))
        merge_argv = ["python", "-m", "benchmarks", "locust", "merge", str(_meta_path(out))]
        merge_argv += [str(prefix), "--duration", f"{duration:g}", "--workers", "2"]
        print("Then: " + shlex.join(merge_argv))
        return 0
    prefix = args.results / "locust" / f"{args.scenario}-{stamp}"
    try:
        run = run_local(out, args.workers, args.duration, prefix, admin_key=args.key)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"locust failed: {exc}")
        return 1
    path, document = merge(
        _meta_path(out), prefix, args.results,
        duration=args.duration, workers=args.workers, run=run, command=command,
    )  # fmt: skip
    outcome = document["outcomes"][0]
    result = outcome["result"]
    print(
        f"{args.scenario}: {result['requests_per_s']:,.1f} req/s of {args.rate:g} offered, "
        f"p50 {result['latency']['p50_ms']:g} ms, p99 {result['latency']['p99_ms']:g} ms, "
        f"non-2xx {result['non_2xx']}, errors {result['errors']} ({args.workers} workers)"
    )
    for note in outcome["notes"]:
        print(f"  {note}")
    print(f"results: {path}, {path.with_suffix('.md')} and {path.with_suffix('.html')}")
    return 0
