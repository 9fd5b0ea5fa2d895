"""Closed-loop load: wrk when it is installed, else the built-in generator on trio.

Both keep C connections busy sending one request after another for a fixed time: the
way to find maximum throughput. Their latencies are per request and hide queueing
(coordinated omission); :mod:`benchmarks._openloop` measures latency honestly.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections import Counter

import trio

from ._http1 import FAILURES, Connection, RequestMaker, split_url
from ._results import Latency, LoadResult, percentiles
from ._spec import HERE, REPEAT_LAG, REPO_ROOT, RequestSpec

__all__ = ["run_builtin", "run_wrk", "wrk_path", "wrk_version"]

WRK_SCRIPT = HERE / "lua" / "post.lua"
#: How long the built-in generator's last requests may take after the window.
_FINISH_SECONDS = 10.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).splitlines() or ["wrk (unknown version)"]
    return lines[0].partition("Copyright")[0].replace("[epoll]", "").strip()


def run_wrk(
    wrk: str,
    base_url: str,
    spec: RequestSpec,
    duration: float,
    connections: int,
    run_id: str,
    threads: int = 1,
    *,
    count_sent: bool = False,
) -> LoadResult:
    """Run wrk with ``lua/post.lua``; raises RuntimeError when wrk fails. With
    ``count_sent`` (or a unique header) the requests put on the wire are counted."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT.relative_to(REPO_ROOT)),
    ]
    for name, value in spec.all_headers():
        argv += ["-H", f"{name}: {value}"]
    argv.append(base_url.rstrip("/") + spec.path)
    env = {"BENCH_METHOD": spec.method, "BENCH_RUN_ID": run_id}
    if spec.body_file is not None:
        env["BENCH_BODY_FILE"] = str(spec.body_file.relative_to(REPO_ROOT))
    if spec.unique_header:
        env["BENCH_UNIQUE_HEADER"] = spec.unique_header
    if spec.repeat:
        env["BENCH_REPEAT_LAG"] = str(REPEAT_LAG)
    if count_sent:
        env["BENCH_COUNT_SENT"] = "1"
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv)
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr or done.stdout}")
    figures = json.loads(line.removeprefix("BENCH-RESULT "))
    return LoadResult(
        mode="closed",
        generator="wrk",
        duration_s=figures["duration_us"] / 1e6,
        connections=max(connections, threads),
        completed=figures["requests"],
        latency=Latency(
            figures["p50_us"] / 1000,
            figures["p90_us"] / 1000,
            figures["p99_us"] / 1000,
            figures["p999_us"] / 1000,
            figures["max_us"] / 1000,
        ),
        non_2xx=figures["status"],
        errors=figures["connect"] + figures["read"] + figures["write"] + figures["timeout"],
        command=command,
        sent=figures["sent"] if figures.get("sent", -1) >= 0 else None,
    )


async def _drive(
    host: str,
    port: int,
    maker: RequestMaker,
    stream: int,
    deadline: float,
    latencies: list[float],
    statuses: Counter[int],
    errors: list[int],
    sent: list[int],
) -> None:
    """Send one request after another until ``deadline``; the last one is answered
    (never cut half-sent), so that what was sent is what the server saw."""
    connection: Connection | None = None
    n = 0
    try:
        while trio.current_time() < deadline:
            if connection is None:
                try:
                    connection = await Connection.open(host, port)
                except OSError:
                    errors[0] += 1
                    await trio.sleep(0.01)
                    continue
            n += 1
            sent[0] += 1
            start = time.perf_counter()
            try:
                status, keep = await connection.exchange(maker.make(stream, n))
            except FAILURES:
                if connection.clean_close:
                    sent[0] -= 1  # an idle keep-alive the server had closed: resent
                else:
                    errors[0] += 1
                await connection.aclose()
                connection = None
                continue
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
            if not keep:
                await connection.aclose()
                connection = None
    finally:
        if connection is not None:
            await connection.aclose()


def run_builtin(
    base_url: str, spec: RequestSpec, duration: float, connections: int, run_id: str
) -> LoadResult:
    """The built-in closed-loop generator (one process, trio) against ``base_url``."""
    host, port = split_url(base_url)
    maker = RequestMaker(spec, host, port, run_id)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = [0]
    sent = [0]

    async def main() -> float:
        start = trio.current_time()
        deadline = start + duration
        # The requests in flight at the deadline finish (within a bound): the window
        # is that much longer, and every request sent has its answer.
        with trio.move_on_after(duration + _FINISH_SECONDS):
            async with trio.open_nursery() as nursery:
                for stream in range(connections):
                    nursery.start_soon(
                        _drive,
                        host,
                        port,
                        maker,
                        stream,
                        deadline,
                        latencies,
                        statuses,
                        errors,
                        sent,
                    )
        return trio.current_time() - start

    elapsed = trio.run(main)
    return LoadResult(
        mode="closed",
        generator="builtin",
        duration_s=elapsed,
        connections=connections,
        completed=len(latencies),
        latency=percentiles(latencies),
        non_2xx=sum(count for status, count in statuses.items() if not 200 <= status < 300),
        errors=errors[0],
        statuses=tuple(sorted(statuses.items())),
        sent=sent[0],
    )
