"""Start a scenario's server as a separate process and wait until it answers."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx

from ._scenarios import REPO_ROOT, Scenario

__all__ = ["RunningServer", "ServerError", "free_port", "running_server"]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerError(Exception):
    """A scenario's server did not start, or did not answer the probe request with 2xx.

    The message names the scenario, the command, what went wrong and the end of
    the server's output.
    """


@attrs.frozen
class RunningServer:
    port: int
    command: tuple[str, ...]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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


def _failure(scenario: Scenario, server: RunningServer, what: str) -> ServerError:
    message = (
        f"{scenario.name}: {what}\n  command: {' '.join(server.command)}\n"
        f"  last output:\n{_tail(server.log)}"
    )
    if scenario.hint:
        message += f"\n  note: {scenario.hint}"
    return ServerError(message)


def _wait_ready(
    scenario: Scenario, server: RunningServer, process: subprocess.Popen[bytes]
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


def _probe(scenario: Scenario, server: RunningServer) -> None:
    """Send one request of the benchmark's shape: a scenario that answers errors is no
    benchmark, and saying so beats a table of fast 404s."""
    spec = scenario.request
    headers = dict(spec.headers)
    if spec.unique_header:
        headers[spec.unique_header] = f"probe-{time.time_ns()}"
    try:
        answer = httpx.request(
            spec.method, server.base_url + spec.path, headers=headers, content=spec.body()
        )
    except httpx.HTTPError as exc:
        raise _failure(scenario, server, f"the probe request failed: {exc!r}") from exc
    if not 200 <= answer.status_code < 300:
        raise _failure(
            scenario,
            server,
            f"{spec.method} {spec.path} answered {answer.status_code}: {answer.text[:300]}",
        )


@contextlib.contextmanager
def running_server(scenario: Scenario, workdir: Path) -> Iterator[RunningServer]:
    """Run the scenario's server on a free port while the block runs; stop it after.

    Raises :class:`ServerError` when it exits early, is not ready within 30 s, or
    answers the probe request with anything but 2xx. Stopping sends SIGTERM, then
    SIGKILL after 10 s.
    """
    port = free_port()
    command = scenario.command(port, workdir)
    server = RunningServer(port=port, command=tuple(command), log=workdir / f"{scenario.name}.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(scenario, server, process)
            _probe(scenario, server)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
