"""The scenario registry, in the order ``make bench`` runs them.

Ratios in the report are over :data:`BASELINE` (a minimal quart-trio route) and
:data:`CEILING` (a bare ASGI app), both on hypercorn-trio, measured in the same run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ._embedded import run_embedded
from ._hookline import SERVER_ENV, hookline_server
from ._peers import node_red_server
from ._spec import (
    BENCH_SECRET,
    PAYLOADS,
    HttpScenario,
    MicroScenario,
    PlanScenario,
    RequestSpec,
    Scenario,
)
from ._store_bench import run_store

__all__ = [
    "ASYNC_INGEST",
    "BASELINE",
    "CEILING",
    "DEFAULT",
    "EMBEDDED",
    "NODE_RED",
    "SCENARIOS",
    "SYNC",
    "TARGETS",
    "TRIVIAL",
    "register",
]

BASELINE = "baseline-quart"
CEILING = "baseline-asgi"
NODE_RED = "node-red"
ASYNC_INGEST = "hookline-async-ingest"
SYNC = "hookline-sync"
EMBEDDED = "embedded-engine"
TARGETS = "targets"

SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add ``scenario`` to the registry (a name registered twice is a bug: ValueError)."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name!r} is registered twice")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _module_server(module: str) -> Callable[[int, Path, bool], list[str]]:
    def command(port: int, folder: Path, quick: bool) -> list[str]:
        return [sys.executable, "-m", module, "--bind", f"127.0.0.1:{port}"]

    return command


_HOOK = RequestSpec(path="/hook")
_GITHUB = (("Content-Type", "application/json"), ("X-GitHub-Event", "push"))
_HINT = "hookline runs as `python -m hookline serve` on the workflow named above"

#: Not a scenario of its own: the generator check's target.
TRIVIAL = HttpScenario(
    name="trivial-server",
    description="a fixed HTTP answer from an asyncio Protocol (the generator check's target)",
    system="trivial",
    request=_HOOK,
    command=_module_server("benchmarks.servers.trivial"),
)

register(
    HttpScenario(
        name=CEILING,
        description="the stack's ceiling: a bare ASGI app on hypercorn-trio answering 202",
        system="asgi",
        request=_HOOK,
        command=_module_server("benchmarks.servers.baseline_asgi"),
        in_sweep=True,
    )
)
register(
    HttpScenario(
        name=BASELINE,
        description="a minimal quart-trio route on hypercorn-trio answering 202",
        system="quart-trio",
        request=_HOOK,
        command=_module_server("benchmarks.servers.baseline_quart"),
        in_sweep=True,
    )
)
register(
    HttpScenario(
        name=NODE_RED,
        description="the peer: Node-RED 4 flow http in -> function -> http response (202)",
        system="node-red",
        request=_HOOK,
        command=node_red_server,
    )
)
register(
    HttpScenario(
        name=ASYNC_INGEST,
        description=(
            "hookline async ingest: signed GitHub push, idempotency key, 202 after commit "
            "(workflow async-ingest)"
        ),
        system="hookline",
        request=RequestSpec(
            path="/api/webhooks/bench/async",
            headers=_GITHUB,
            unique_header="X-GitHub-Delivery",
            github_secret=BENCH_SECRET,
        ),
        command=hookline_server("async-ingest"),
        env=SERVER_ENV,
        ready_path="/readyz",
        hint=_HINT,
        unsigned_probe=True,
        in_sweep=True,
    )
)
register(
    HttpScenario(
        name="hookline-duplicates",
        description=(
            "hookline async ingest with half the deliveries repeating an earlier id "
            "(replays; workflow async-ingest)"
        ),
        system="hookline",
        request=RequestSpec(
            path="/api/webhooks/bench/async",
            headers=_GITHUB,
            unique_header="X-GitHub-Delivery",
            repeat=True,
            github_secret=BENCH_SECRET,
        ),
        command=hookline_server("async-ingest"),
        env=SERVER_ENV,
        ready_path="/readyz",
        hint=_HINT,
    )
)
register(
    HttpScenario(
        name=SYNC,
        description="hookline sync workflow of 3 nodes (set, condition, set), 200 with output",
        system="hookline",
        request=RequestSpec(path="/api/webhooks/bench/sync", headers=_GITHUB),
        command=hookline_server("sync-3"),
        env=SERVER_ENV,
        ready_path="/readyz",
        hint=_HINT,
    )
)
register(
    HttpScenario(
        name="hookline-code",
        description="hookline sync workflow with a JavaScript `code` node, then condition, set",
        system="hookline",
        request=RequestSpec(path="/api/webhooks/bench/code", headers=_GITHUB),
        command=hookline_server("sync-code"),
        env=SERVER_ENV,
        ready_path="/readyz",
        hint=_HINT,
    )
)
register(
    HttpScenario(
        name="hookline-fanout",
        description="hookline sync fan-out: a `loop` over 20 items, one `set` node each",
        system="hookline",
        request=RequestSpec(path="/api/webhooks/bench/fanout", body_file=PAYLOADS / "fanout.json"),
        command=hookline_server("fanout"),
        env=SERVER_ENV,
        ready_path="/readyz",
        hint=_HINT,
    )
)
register(
    PlanScenario(
        name="latency-sweep",
        description=(
            "open loop at 25/50/75% of hookline-async-ingest's maximum rate against it and "
            "the baselines; latency from scheduled send time"
        ),
    )
)
register(
    PlanScenario(
        name="generator-check",
        description="the open-loop generator against a trivial server at 3x the top rate tested",
    )
)
register(
    MicroScenario(
        name=EMBEDDED,
        description="a 5-node workflow via open_engine + engine.run on the memory store vs "
        "the same steps as a plain trio task (CPU/execution), and on SQLite vs the steps "
        "plus raw SQLite rows",
        system="hookline",
        run=run_embedded,
    )
)
register(
    MicroScenario(
        name="store-actor",
        description="durable acks/s of the store actor (AcceptDelivery, many writers) vs raw "
        "batched executemany of the same rows",
        system="hookline",
        run=run_store,
    )
)
register(
    PlanScenario(
        name=TARGETS,
        description="the five target ratios of issue 12, measuring only what they need "
        "(in a full run: read from the steps before it)",
    )
)
register(
    PlanScenario(
        name="scale",
        description="async ingest and sync 3-node as 1, 2 and 4 processes "
        "(`hookline serve --workers N`) on one PostgreSQL, beside 1 process on SQLite "
        "(quick: async ingest at 1 and 2; skipped without PostgreSQL)",
    )
)
register(
    PlanScenario(
        name="soak",
        description="RSS of hookline-async-ingest under open loop at 70% of its maximum rate "
        "(use --duration 600 for the 10-minute target; not in the default run)",
        by_default=False,
    )
)

#: What ``python -m benchmarks`` with no scenario names runs.
DEFAULT = [
    name
    for name, scenario in SCENARIOS.items()
    if not isinstance(scenario, PlanScenario) or scenario.by_default
]
