"""``python -m benchmarks code``: the code node's three targets (issue 14), in one run
against one ``hookline serve`` (its script pool at ``code: {workers: 4}``).

1. **Throughput**: ``hookline-code`` (sync: ``code``, ``condition``, ``set``) over
   ``hookline-sync`` (sync: ``set``, ``condition``, ``set``), closed loop with wrk,
   the same connections and duration, after a warm-up of each; ``--rounds`` pairs of
   phases (5), each pair in the other order than the last, and the median ratio counts
   (one pair swings with whatever else the machine runs). Goal >= 0.7x.
2. **Memory bombs**: three concurrent scripts each allocating ten times their 16MiB
   limit (``new Uint8Array(160 MiB).fill(7)``, issue 13's finding 10 at 10x), then
   ``new Array(1e8).fill(1.5)`` with the default limits: the server process's RSS
   (sampled every 5 ms; the workers are other processes) grows by less than 50 MiB,
   and each sync answer (the job recorded failed) comes within twice the time limit.
3. **Spinning scripts**: the p99 of ``hookline-sync`` (closed loop, 8 connections)
   while four scripts spin to their time limits (``for (;;) {}``, 5s, kept four in
   flight), over its p99 without them. Goal <= 2x.

Prints a table, writes ``results/code-targets.json`` and exits 1 when a target is
missed. ``--quick``: 3 s phases (a smoke run; its figures mean little).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ._hookline import SERVER_ENV, WORKFLOWS
from ._load import run_wrk, wrk_path
from ._scenarios import SCENARIOS, SYNC
from ._servers import _children, free_port, rss_bytes
from ._spec import REPO_ROOT, HttpScenario, RequestSpec

__all__ = ["code_targets"]

MIB = 1024 * 1024
CODE = "hookline-code"
SPINNERS = 4
SPIN_LIMIT = 5.0

_EXTRA = {
    "code-bomb.yaml": """
key: code-bomb
trigger: {type: webhook, path: bench/code-bomb, mode: sync}
nodes:
  - key: bomb
    type: code
    memory: 16MiB
    timeout: 2s
    code: "const big = new Uint8Array(160 * 1024 * 1024).fill(7); return big.length;"
""",
    "code-fill.yaml": """
key: code-fill
trigger: {type: webhook, path: bench/code-fill, mode: sync}
nodes:
  - key: fill
    type: code
    code: "return new Array(1e8).fill(1.5).length;"
""",
    "code-spin.yaml": f"""
key: code-spin
trigger: {{type: webhook, path: bench/code-spin, mode: sync}}
concurrency: {{max: {SPINNERS}}}
nodes:
  - key: spin
    type: code
    timeout: {SPIN_LIMIT:g}s
    code: "for (;;) {{}}"
""",
}
_CONFIG = """\
# Written by `python -m benchmarks code` for one run.
server: {{bind: "127.0.0.1:{port}", access_log: false}}
store: {{url: "sqlite:///{db}"}}
workflows: {workflows}
code: {{workers: {workers}}}
"""


@contextmanager
def _server(folder: Path) -> Iterator[tuple[str, int]]:
    workflows = folder / "workflows"
    workflows.mkdir(parents=True)
    for name in ("sync-3.yaml", "sync-code.yaml"):
        shutil.copy(WORKFLOWS / name, workflows)
    for name, text in _EXTRA.items():
        (workflows / name).write_text(text)
    port = free_port()
    config = folder / "hookline.yaml"
    config.write_text(
        _CONFIG.format(port=port, db=folder / "bench.db", workflows=workflows, workers=SPINNERS)
    )
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hookline", "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **dict(SERVER_ENV)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hookline serve did not start: see {folder / 'server.log'}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wrk(base: str, spec: RequestSpec, duration: float, connections: int) -> Any:
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (benchmarks/install-wrk.sh)")
    return run_wrk(wrk, base, spec, duration, connections, run_id=f"code-{time.time_ns()}")


def _request(name: str) -> RequestSpec:
    scenario = SCENARIOS[name]
    assert isinstance(scenario, HttpScenario)
    return scenario.request


def _workers(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them (trio
    starts the script workers from a worker thread: /proc lists them under it)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return _children(pid)
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu(pids: Sequence[int]) -> float:
    """CPU seconds used so far by ``pids`` (Linux's /proc; gone processes count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _phase(base: str, pid: int, spec: RequestSpec, duration: float, connections: int) -> Any:
    """wrk's result, and the CPU µs per request of the server and of its script workers."""
    workers = _workers(pid)
    server_before, workers_before = _cpu([pid]), _cpu(workers)
    result = _wrk(base, spec, duration, connections)
    done = max(result.completed, 1)
    server = (_cpu([pid]) - server_before) / done * 1e6
    return result, server, (_cpu(workers) - workers_before) / done * 1e6


def _pair(
    base: str, pid: int, duration: float, connections: int, *, code_first: bool
) -> dict[str, Any]:
    sync, code = _request(SYNC), _request(CODE)
    if code_first:
        second, code_cpu, worker_cpu = _phase(base, pid, code, duration, connections)
        first, sync_cpu, _ = _phase(base, pid, sync, duration, connections)
    else:
        first, sync_cpu, _ = _phase(base, pid, sync, duration, connections)
        second, code_cpu, worker_cpu = _phase(base, pid, code, duration, connections)
    return {
        "sync_rps": first.rps,
        "code_rps": second.rps,
        "ratio": second.rps / first.rps if first.rps else 0.0,
        "code_non_2xx": second.non_2xx,
        "sync_server_cpu_us": sync_cpu,
        "code_server_cpu_us": code_cpu,
        "code_worker_cpu_us": worker_cpu,
        "ratio_by_cpu": sync_cpu / (code_cpu + worker_cpu) if code_cpu else 0.0,
    }


def _throughput(
    base: str, pid: int, duration: float, connections: int, rounds: int
) -> dict[str, Any]:
    """The median round (by ratio) of ``rounds`` pairs of phases, and every round. The
    pairs alternate which scenario runs first, so that a machine getting busier or
    quieter during the run favours neither."""
    _wrk(base, _request(SYNC), 2, connections)
    _wrk(base, _request(CODE), 2, connections)
    pairs = [
        _pair(base, pid, duration, connections, code_first=bool(index % 2))
        for index in range(rounds)
    ]
    median = sorted(pairs, key=lambda pair: pair["ratio"])[len(pairs) // 2]
    return {**median, "rounds": pairs, "ratios": [pair["ratio"] for pair in pairs]}


def _bomb(base: str, pid: int, path: str, copies: int, limit: float) -> dict[str, Any]:
    before = rss_bytes(pid) or 0
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(pid) or 0)
            time.sleep(0.005)

    answers: list[tuple[int, float]] = []

    def send() -> None:
        started = time.monotonic()
        answer = httpx.post(base + path, json={}, timeout=60)
        answers.append((answer.status_code, time.monotonic() - started))

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [threading.Thread(target=send) for _ in range(copies)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    time.sleep(0.2)
    stop.set()
    sampler.join()
    slowest = max(seconds for _, seconds in answers)
    return {
        "path": path,
        "copies": copies,
        "statuses": sorted(status for status, _ in answers),
        "rss_growth_mib": (peak - before) / MIB,
        "slowest_answer_s": slowest,
        "time_limit_s": limit,
        "within_2x": slowest <= 2 * limit,
    }


def _spin(base: str, duration: float) -> dict[str, Any]:
    sync = _request(SYNC)
    quiet = _wrk(base, sync, duration, 8)
    stop = threading.Event()
    spun: list[int] = []

    def spinner() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                spun.append(
                    client.post(base + "/api/webhooks/bench/code-spin", json={}).status_code
                )

    threads = [threading.Thread(target=spinner) for _ in range(SPINNERS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # all four running
    loaded = _wrk(base, sync, duration, 8)
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "p99_quiet_ms": quiet.latency.p99_ms,
        "p99_spinning_ms": loaded.latency.p99_ms,
        "ratio": loaded.latency.p99_ms / quiet.latency.p99_ms,
        "rps_quiet": quiet.rps,
        "rps_spinning": loaded.rps,
        "spins_answered": len(spun),
    }


def code_targets(argv: Sequence[str], results: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks code",
        description="The code node's targets (issue 14): throughput against the sync "
        "3-node workflow, memory bombs against the server's RSS, and a simple "
        "workflow's p99 while four scripts spin.",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (8)")
    parser.add_argument("--connections", type=int, default=32, help="closed loop (32)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="pairs of throughput phases; the median counts (5)"
    )
    parser.add_argument("--quick", action="store_true", help="3 s phases: a smoke run")
    args = parser.parse_args(argv)
    duration = 3.0 if args.quick else args.duration
    with tempfile.TemporaryDirectory(prefix="hookline-code-bench-") as tmp:
        with _server(Path(tmp)) as (base, pid):
            rounds = 1 if args.quick else max(1, args.rounds)
            throughput = _throughput(base, pid, duration, args.connections, rounds)
            bombs = [
                _bomb(base, pid, "/api/webhooks/bench/code-bomb", 3, 2.0),
                _bomb(base, pid, "/api/webhooks/bench/code-fill", 1, 5.0),
            ]
            spin = _spin(base, duration)
    targets = [
        (
            f"code / sync 3-node (req/s), median of {len(throughput['ratios'])}",
            throughput["ratio"],
            ">= 0.7",
            throughput["ratio"] >= 0.7,
        ),
        *(
            (
                (
                    f"{b['copies']}x {b['path'].rsplit('/', 1)[1]}: server RSS growth (MiB); "
                    f"slowest answer {b['slowest_answer_s']:.2f} s "
                    f"(limit {b['time_limit_s']:g} s)"
                ),
                b["rss_growth_mib"],
                "< 50, answer <= 2x limit",
                b["rss_growth_mib"] < 50 and b["within_2x"],
            )
            for b in bombs
        ),
        ("sync 3-node p99 with 4 spinning / without", spin["ratio"], "<= 2", spin["ratio"] <= 2),
    ]
    print(
        f"sync 3-node {throughput['sync_rps']:,.0f} req/s (server "
        f"{throughput['sync_server_cpu_us']:,.0f} CPU µs/request), code "
        f"{throughput['code_rps']:,.0f} req/s (server {throughput['code_server_cpu_us']:,.0f} "
        f"+ script workers {throughput['code_worker_cpu_us']:,.0f} CPU µs/request; by CPU "
        f"{throughput['ratio_by_cpu']:.2f}x; ratios "
        f"{', '.join(f'{ratio:.2f}' for ratio in throughput['ratios'])}); "
        f"p99 {spin['p99_quiet_ms']:.1f} ms quiet, "
        f"{spin['p99_spinning_ms']:.1f} ms with {SPINNERS} scripts spinning"
    )
    print("| target | measured | goal | met |\n|---|---|---|---|")
    for name, measured, goal, met in targets:
        print(f"| {name} | {measured:.3g} | {goal} | {'yes' if met else 'no'} |")
    results.mkdir(parents=True, exist_ok=True)
    figures = {"throughput": throughput, "bombs": bombs, "spin": spin, "quick": args.quick}
    (results / "code-targets.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(met for *_, met in targets) else 1
