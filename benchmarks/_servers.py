"""Start a scenario's server as a separate process, wait until it answers, probe it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx

from ._spec import REPO_ROOT, HttpScenario, RequestSpec

__all__ = [
    "CpuSample",
    "RunningServer",
    "ServerError",
    "connections_per_process",
    "free_port",
    "probe",
    "rss_bytes",
    "running_server",
    "signature_checked",
]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerError(Exception):
    """A scenario's server did not start, or did not answer the probe request with 2xx.

    The message names the scenario, the command, what went wrong and the end of
    the server's output.
    """


@attrs.frozen
class RunningServer:
    """A server process the suite started (``pid``), on 127.0.0.1:``port``."""

    port: int
    command: tuple[str, ...]
    log: Path
    pid: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` (Linux), or None where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _established(port: int) -> set[str]:
    """The inodes of established TCP sockets whose local port is ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "ADDR:PORT" (hex), state 01 = ESTABLISHED, inode.
            if (
                len(fields) > 9
                and fields[3] == "01"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def connections_per_process(pid: int, port: int) -> tuple[int, ...]:
    """How many established connections to ``port`` each serving process holds: ``pid``
    itself when it has no children, else each child of ``pid`` (``--workers``), in
    descending order. Empty where /proc cannot tell (not Linux)."""
    inodes = _established(port)
    counts = []
    for process in _children(pid) or [pid]:
        try:
            fds = list(Path(f"/proc/{process}/fd").iterdir())
        except OSError:
            continue
        held = 0
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts.append(held)
    return tuple(sorted(counts, reverse=True))


@attrs.frozen
class CpuSample:
    """CPU time so far, in seconds: of the processes serving (``server``) and of the
    whole machine (``busy``: every core's non-idle time), at monotonic time ``at``."""

    at: float
    server: float
    busy: float

    @classmethod
    def now(cls, pid: int) -> CpuSample:
        """The sample for ``pid`` and its children (Linux; zeros where /proc cannot
        tell)."""
        tick = os.sysconf("SC_CLK_TCK")
        server = 0
        for process in [pid, *_children(pid)]:
            try:
                # Fields after the command name (which may hold spaces): utime, stime
                # are the 12th and 13th.
                fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
                server += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
        try:
            cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            busy = sum(cpu) - cpu[3] - cpu[4]  # idle and iowait
        except (OSError, IndexError, ValueError):
            busy = 0
        return cls(time.monotonic(), server / tick, busy / tick)

    def since(self, earlier: CpuSample) -> str:
        """What the machine's cores did between ``earlier`` and this sample."""
        wall = self.at - earlier.at
        cores = os.cpu_count() or 1
        if wall <= 0 or self.busy <= earlier.busy:
            return "CPU use unknown"
        server = (self.server - earlier.server) / wall
        busy = (self.busy - earlier.busy) / wall
        return (
            f"CPU during the window: {busy:.2f} of {cores} cores busy, of which hookline "
            f"{server:.2f} and everything else (PostgreSQL, the load generator, other "
            f"work) {max(busy - server, 0.0):.2f}"
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "(no output)"


def _failure(scenario: HttpScenario, server: RunningServer, what: str) -> ServerError:
    message = (
        f"{scenario.name}: {what}\n  command: {' '.join(server.command)}\n"
        f"  last output:\n{_tail(server.log)}"
    )
    if scenario.hint:
        message += f"\n  note: {scenario.hint}"
    return ServerError(message)


def _wait_ready(
    scenario: HttpScenario, server: RunningServer, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = server.base_url + (scenario.ready_path or "/")
    last = "no answer"
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise _failure(scenario, server, f"the server exited with code {code} before answering")
        try:
            status = httpx.get(url, timeout=1.0).status_code
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if scenario.ready_path is None or 200 <= status < 300:
                return
            last = f"GET {scenario.ready_path} answered {status}"
        time.sleep(0.1)
    raise _failure(scenario, server, f"not ready after {STARTUP_TIMEOUT:.0f} s ({last})")


def _request(spec: RequestSpec, base_url: str, *, signed: bool = True) -> httpx.Response:
    headers = dict(spec.all_headers() if signed else spec.headers)
    if spec.unique_header:
        headers[spec.unique_header] = f"probe-{time.time_ns()}"
    return httpx.request(
        spec.method, base_url.rstrip("/") + spec.path, headers=headers, content=spec.body()
    )


def probe(name: str, spec: RequestSpec, base_url: str) -> None:
    """Send one request of the benchmark's shape: a scenario that answers errors is no
    benchmark, and saying so beats a table of fast 404s. Raises ServerError."""
    try:
        answer = _request(spec, base_url)
    except httpx.HTTPError as exc:
        raise ServerError(f"{name}: the probe request failed: {exc!r}") from exc
    if not 200 <= answer.status_code < 300:
        hint = ""
        if answer.status_code in (401, 403, 404):
            hint = (
                f" (`python -m benchmarks prepare --target {base_url}` deploys the benchmark "
                "workflows with a secret this run then signs with)"
            )
        raise ServerError(
            f"{name}: {spec.method} {spec.path} answered {answer.status_code}: "
            f"{answer.text[:300]}{hint}"
        )


def signature_checked(spec: RequestSpec, base_url: str) -> bool:
    """Whether the server refuses the request without its signature (401 or 403)."""
    try:
        return _request(spec, base_url, signed=False).status_code in (401, 403)
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running_server(
    scenario: HttpScenario, workdir: Path, *, quick: bool = False
) -> Iterator[RunningServer]:
    """Run the scenario's server on a free port while the block runs; stop it after.

    Raises :class:`~benchmarks._spec.Skip` (from the scenario's command) when it
    cannot run here, :class:`ServerError` when it exits early, is not ready within
    30 s, or answers the probe request with anything but 2xx. Stopping sends SIGTERM,
    then SIGKILL after 10 s.
    """
    port = free_port()
    folder = workdir / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    command = scenario.command(port, folder, quick)
    log_path = folder / "server.log"
    env = {**os.environ, **dict(scenario.env)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        server = RunningServer(port, tuple(command), log_path, process.pid)
        try:
            _wait_ready(scenario, server, process)
            try:
                probe(scenario.name, scenario.request, server.base_url)
            except ServerError as exc:
                raise _failure(scenario, server, str(exc)) from exc
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
