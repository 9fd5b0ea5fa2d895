"""The shapes of a scenario: the request it sends, the server it starts, or the
in-process benchmark it runs.

Three kinds: :class:`HttpScenario` (a server process loaded over HTTP),
:class:`MicroScenario` (an in-process measurement against a baseline in the same run)
and :class:`PlanScenario` (a step the runner composes from others: the latency sweep,
the generator check, the soak).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path

import attrs

from ._results import MicroResult

__all__ = [
    "BENCH_SECRET",
    "HERE",
    "PAYLOADS",
    "REPEAT_LAG",
    "REPO_ROOT",
    "HttpScenario",
    "MicroScenario",
    "MicroSettings",
    "PlanScenario",
    "RequestSpec",
    "Scenario",
    "Skip",
    "delivery_number",
    "github_signature",
]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PAYLOADS = HERE / "payloads"
JSON = (("Content-Type", "application/json"),)

#: The secret the signed scenarios sign with and the servers verify with.
BENCH_SECRET = os.environ.get("BENCH_SECRET", "hookline-bench-secret")

#: In duplicate-heavy traffic every odd request repeats the id sent this many pairs
#: earlier: far enough back that, with up to a few hundred requests in flight, the
#: first delivery has been answered, so the repeat is a replay and not a 409.
REPEAT_LAG = 64


class Skip(Exception):
    """A scenario cannot run on this machine or against this hookline yet.

    The message says why and what would make it run; the report shows it, the run
    goes on, and the exit status is not affected.
    """


def delivery_number(n: int, *, repeat: bool) -> int:
    """The id number request ``n`` (from 1) of one sender carries.

    Without ``repeat`` every request has its own. With it, odd requests past the
    first ``2 * REPEAT_LAG`` reuse an earlier even request's number: half the traffic
    is retries of deliveries already accepted. ``lua/post.lua`` computes the same.
    """
    if repeat and n % 2 == 1 and n > 2 * REPEAT_LAG:
        return n - 2 * REPEAT_LAG - 1
    return n


def github_signature(secret: str, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@attrs.frozen
class RequestSpec:
    """The request a load generator sends over and over.

    ``unique_header`` gets a fresh delivery id per request (``repeat``: half of them
    repeat an earlier id, see :func:`delivery_number`). With ``github_secret`` each
    request carries ``X-Hub-Signature-256`` over the body; the body is the same for
    every request and the id header is not signed, so one signature is valid for all.
    """

    path: str
    method: str = "POST"
    body_file: Path | None = PAYLOADS / "push.json"
    headers: tuple[tuple[str, str], ...] = JSON
    unique_header: str | None = None
    repeat: bool = False
    github_secret: str | None = None

    def body(self) -> bytes:
        return self.body_file.read_bytes() if self.body_file is not None else b""

    def all_headers(self) -> tuple[tuple[str, str], ...]:
        """``headers`` plus the signature header when the request is signed."""
        if self.github_secret is None:
            return self.headers
        signature = github_signature(self.github_secret, self.body())
        return (*self.headers, ("X-Hub-Signature-256", signature))


@attrs.frozen
class HttpScenario:
    """A server process and the request to load it with.

    ``command(port, workdir, quick)`` returns the server's argv (run from the
    repository root) after preparing what it needs in ``workdir``; it raises
    :class:`Skip` when the server cannot run here. ``ready_path`` None: any HTTP
    answer shows the server is up; a path: it must answer 2xx there. With
    ``unsigned_probe`` the runner also sends one unsigned request and notes whether
    the server refused it (signature checked) or not.
    """

    name: str
    description: str
    system: str
    request: RequestSpec
    command: Callable[[int, Path, bool], list[str]]
    env: tuple[tuple[str, str], ...] = ()
    ready_path: str | None = None
    hint: str = ""
    unsigned_probe: bool = False
    in_sweep: bool = False


@attrs.frozen
class MicroSettings:
    """How long an in-process benchmark measures each side, and with how many tasks."""

    duration: float
    concurrency: int
    workdir: Path


@attrs.frozen
class MicroScenario:
    """An in-process benchmark: ``run`` measures subject and baseline in one go and
    raises :class:`Skip` when it cannot run against this hookline."""

    name: str
    description: str
    system: str
    run: Callable[[MicroSettings], MicroResult]


@attrs.frozen
class PlanScenario:
    """A step the runner builds from other scenarios (see :mod:`benchmarks._runner`).

    ``by_default`` False keeps it out of a plain ``make bench`` (the 10-minute soak).
    """

    name: str
    description: str
    by_default: bool = True


Scenario = HttpScenario | MicroScenario | PlanScenario
