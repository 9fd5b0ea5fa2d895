"""The scenario registry: which server to start, and which request to send it.

A scenario is a server command (given a free port and a scratch folder) and one
request shape. Add one with :func:`register`; ``python -m benchmarks NAME`` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import attrs

__all__ = ["BASELINE", "SCENARIOS", "RequestSpec", "Scenario", "register"]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PUSH_PAYLOAD = HERE / "payloads" / "push.json"

#: The scenario every ratio in the report is relative to.
BASELINE = "baseline-quart"


@attrs.frozen
class RequestSpec:
    """The request each connection sends back to back.

    ``unique_header`` names a header that gets a fresh value per request (a delivery
    id), so idempotency does not turn the load into replays.
    """

    path: str
    method: str = "POST"
    body_file: Path | None = PUSH_PAYLOAD
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    unique_header: str | None = None

    def body(self) -> bytes:
        return self.body_file.read_bytes() if self.body_file is not None else b""


@attrs.frozen
class Scenario:
    """A server to start and the request to load it with.

    ``command(port, workdir)`` gives the server's argv (run from the repository root);
    ``ready_path`` None means any HTTP answer shows the server is up, a path means it
    must answer 2xx there. ``hint`` is shown when the server does not come up.
    """

    name: str
    description: str
    command: Callable[[int, Path], list[str]]
    request: RequestSpec
    ready_path: str | None = None
    hint: str = ""


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add ``scenario`` to the registry (a name registered twice is a bug: ValueError)."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name!r} is registered twice")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _module_server(module: str) -> Callable[[int, Path], list[str]]:
    def command(port: int, workdir: Path) -> list[str]:
        return [sys.executable, "-m", module, "--bind", f"127.0.0.1:{port}"]

    return command


def _hookline_server(port: int, workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hookline",
        "serve",
        "--config",
        str(HERE / "hookline-bench.yaml"),
        "--bind",
        f"127.0.0.1:{port}",
        "--db",
        str(workdir / "bench.db"),
    ]


register(
    Scenario(
        name="baseline-asgi",
        description="a bare ASGI app on hypercorn-trio answering 202 JSON",
        command=_module_server("benchmarks.servers.baseline_asgi"),
        request=RequestSpec(path="/hook"),
    )
)
register(
    Scenario(
        name=BASELINE,
        description="a minimal quart-trio route POST /hook answering 202 JSON",
        command=_module_server("benchmarks.servers.baseline_quart"),
        request=RequestSpec(path="/hook"),
    )
)
register(
    Scenario(
        name="hookline-async-ingest",
        description="hookline: async webhook, durable 202, one `set` node per event",
        command=_hookline_server,
        request=RequestSpec(
            path="/api/webhooks/bench",
            headers=(("Content-Type", "application/json"), ("X-GitHub-Event", "push")),
            unique_header="X-GitHub-Delivery",
        ),
        ready_path="/readyz",
        hint=(
            "this scenario runs `python -m hookline serve` with "
            "benchmarks/hookline-bench.yaml; it needs hookline's server and the "
            "`bench` workflow in benchmarks/workflows/ to load."
        ),
    )
)
