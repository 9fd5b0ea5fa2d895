"""Load generators: wrk when it is installed, else a built-in closed-loop one on trio.

Both keep C connections busy sending one request after another for a fixed time
and report requests/s, p50/p99 latency, non-2xx answers and socket errors.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time

import attrs
import trio

from ._scenarios import HERE, REPO_ROOT, RequestSpec

__all__ = ["LoadResult", "LoadSettings", "run_builtin", "run_wrk", "wrk_path"]

WRK_SCRIPT = HERE / "lua" / "post.lua"


@attrs.frozen
class LoadSettings:
    duration: float
    connections: int
    threads: int = 1


@attrs.frozen
class LoadResult:
    """One measurement. ``non_2xx`` is answers outside 2xx (wrk counts only >= 400);
    ``errors`` is connect, read, write and timeout failures."""

    generator: str
    requests: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    command: str
    output: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    wrk: str, base_url: str, spec: RequestSpec, settings: LoadSettings, run_id: str
) -> LoadResult:
    """Run wrk with ``lua/post.lua``; raises RuntimeError when wrk fails."""
    argv = [
        wrk,
        f"-t{settings.threads}",
        f"-c{max(settings.connections, settings.threads)}",
        f"-d{max(1, round(settings.duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT.relative_to(REPO_ROOT)),
    ]
    for name, value in spec.headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(base_url + spec.path)
    env = {"BENCH_METHOD": spec.method, "BENCH_RUN_ID": run_id}
    if spec.body_file is not None:
        env["BENCH_BODY_FILE"] = str(spec.body_file.relative_to(REPO_ROOT))
    if spec.unique_header:
        env["BENCH_UNIQUE_HEADER"] = spec.unique_header
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv)
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr or done.stdout}")
    figures = json.loads(line.removeprefix("BENCH-RESULT "))
    return LoadResult(
        generator="wrk",
        requests=figures["requests"],
        elapsed=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non_2xx=figures["status"],
        errors=figures["connect"] + figures["read"] + figures["write"] + figures["timeout"],
        command=command,
        output=done.stdout,
    )


class _ClosedError(Exception):
    """The server closed the connection before a complete answer."""


class _Connection:
    """One HTTP/1.1 keep-alive connection that reads just enough to frame answers."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.answered = 0

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise _ClosedError
        self.buffer += chunk

    async def _read_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + len(marker)]
        return line

    async def _read_exactly(self, size: int) -> None:
        while len(self.buffer) < size:
            await self._fill()
        del self.buffer[:size]

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send ``request``, read its answer; return (status, server keeps the connection)."""
        await self.stream.send_all(request)
        head = (await self._read_until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if fields.get("transfer-encoding") == "chunked":
            while size := int((await self._read_until(b"\r\n")).split(b";")[0], 16):
                await self._read_exactly(size + 2)
            await self._read_until(b"\r\n")  # no trailers are expected
        else:
            await self._read_exactly(int(fields.get("content-length", "0")))
        self.answered += 1
        return status, fields.get("connection") != "close"


async def _drive(
    host: str,
    port: int,
    spec: RequestSpec,
    number: int,
    run_id: str,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    body = spec.body()
    head = f"{spec.method} {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in spec.headers)
    head += f"Content-Length: {len(body)}\r\n"
    connection: _Connection | None = None
    sent = 0
    while True:
        if connection is None:
            try:
                connection = _Connection(await trio.open_tcp_stream(host, port))
            except OSError:
                counts["errors"] += 1
                await trio.sleep(0.01)
                continue
        sent += 1
        unique = f"{spec.unique_header}: {run_id}-{number}-{sent}\r\n" if spec.unique_header else ""
        request = (head + unique + "\r\n").encode("latin-1") + body
        start = time.perf_counter()
        try:
            status, keep = await connection.exchange(request)
        except (_ClosedError, trio.BrokenResourceError, OSError, ValueError, IndexError):
            # A connection the server closed between answers (keep-alive limit) is
            # reopened quietly, as wrk does; failing mid-answer or on a fresh one is an error.
            if connection.answered == 0 or connection.buffer:
                counts["errors"] += 1
            await connection.stream.aclose()
            connection = None
            continue
        latencies.append(time.perf_counter() - start)
        counts["non_2xx"] += not 200 <= status < 300
        if not keep:
            await connection.stream.aclose()
            connection = None


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_builtin(
    base_url: str, spec: RequestSpec, settings: LoadSettings, run_id: str
) -> LoadResult:
    """Run the built-in closed-loop generator (one process, trio) against ``base_url``."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0}

    async def main() -> float:
        start = trio.current_time()
        with trio.move_on_after(settings.duration):
            async with trio.open_nursery() as nursery:
                for number in range(settings.connections):
                    nursery.start_soon(
                        _drive, host, int(port), spec, number, run_id, latencies, counts
                    )
        return trio.current_time() - start

    elapsed = trio.run(main)
    ordered = sorted(latencies)
    return LoadResult(
        generator="builtin",
        requests=len(latencies),
        elapsed=elapsed,
        p50_ms=_percentile(ordered, 0.50) * 1000,
        p99_ms=_percentile(ordered, 0.99) * 1000,
        non_2xx=counts["non_2xx"],
        errors=counts["errors"],
        command="",
    )
