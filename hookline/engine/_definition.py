"""A workflow definition as validated at load time: frozen, typed, templates compiled."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Literal

import attrs

from ..definition import CorsPolicy
from ..nodes._base import NodeSpec, Renderable
from ..verify import Verification, Verifier, compile_verifiers
from ._gcra import Rate

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


@attrs.frozen
class Idempotency:
    """How a delivery's idempotency key is found, and how long it is kept.

    ``key`` None means automatic (the provider headers of DESIGN.md section 7).
    """

    key: Renderable | None = None
    ttl: float = 3 * 86400.0


@attrs.frozen
class ResponseSpec:
    """The configured immediate answer of an async webhook (templates)."""

    status: int = 202
    headers: Renderable | None = None
    body: Renderable | None = None


def _compile_verify(trigger: WebhookTrigger) -> Verification:
    return compile_verifiers(trigger.verify, source="", path="trigger.verify")


@attrs.frozen
class WebhookTrigger:
    """How requests reach a workflow (DESIGN.md section 4).

    ``verification`` is ``verify`` compiled into checks; the loader compiles it with
    the file's name, so bad options are refused at load time naming the field. Built
    by hand, it is compiled from ``verify`` (raising the same DefinitionError), so the
    two never disagree.
    """

    path: str
    methods: tuple[str, ...] = ("POST",)
    mode: Literal["async", "sync"] = "async"
    sync_timeout: float = 10.0
    max_body: int = 1024 * 1024
    verify: tuple[Verifier, ...] = ()
    ip_allow: tuple[IPNetwork, ...] = ()
    idempotency: Idempotency = attrs.field(factory=Idempotency)
    response: ResponseSpec | None = None
    #: What this workflow's deliveries correlate on, as events other workflows listen
    #: for (``cancel_on``): a template, rendered at intake.
    correlate: Renderable | None = None
    #: ``trigger.cors``: browsers on these origins may call the webhook (None: no CORS).
    cors: CorsPolicy | None = None
    #: Keep the credentials ``verify`` consumed in ``$context`` and stored records
    #: (by default they read ``[redacted]``: docs/security.md, section 9).
    expose_credentials: bool = False
    verification: Verification = attrs.field(
        default=attrs.Factory(_compile_verify, takes_self=True), eq=False
    )


@attrs.frozen
class Concurrency:
    max: int = 8
    order_by: Renderable | None = None
    queue: int = 1000


@attrs.frozen
class RateRule:
    """``throttle`` or ``rate_limit``: ``rate`` per value of ``key`` (None: one for the
    whole workflow)."""

    rate: Rate
    key: Renderable | None = None


@attrs.frozen
class CancelOn:
    """``cancel_on`` entry: cancel the execution when a delivery of workflow ``event``
    correlates on what ``match`` renders for it."""

    event: str
    match: Renderable


@attrs.frozen
class DebounceRule:
    """``debounce``: per value of ``key``, only the latest execution runs, once no
    newer delivery came for ``period`` (or ``max_wait`` after the first one)."""

    period: float
    max_wait: float | None = None
    key: Renderable | None = None


@attrs.frozen
class BatchRule:
    """``batch``: per value of ``key``, up to ``size`` deliveries make one execution,
    which starts once the batch is full or ``timeout`` after its first delivery."""

    size: int
    timeout: float
    key: Renderable | None = None


@attrs.frozen
class Workflow:
    """A validated workflow. ``source`` names where it came from (a file path, ``api``)."""

    key: str
    trigger: WebhookTrigger
    nodes: tuple[NodeSpec, ...]
    title: str = ""
    enabled: bool = True
    concurrency: Concurrency = attrs.field(factory=Concurrency)
    timeout: float = 300.0
    #: The workflow started when an execution of this one fails (``_on_failure``).
    on_failure: str | None = None
    #: Flow control (docs/reference/workflow.md, "Flow control"): deliveries past
    #: ``rate_limit`` are refused at intake, ``debounce`` keeps the latest execution of
    #: a key, executions past ``throttle`` wait to start, and queued ones start by
    #: ``priority`` (higher first).
    rate_limit: RateRule | None = None
    throttle: RateRule | None = None
    priority: Renderable | None = None
    debounce: DebounceRule | None = None
    #: ``batch`` (docs/reference/workflow.md, "Flow control"): deliveries grouped into
    #: one execution (:mod:`._batch`).
    batch: BatchRule | None = None
    cancel_on: tuple[CancelOn, ...] = ()
    source: str = ""
    text: str = ""

    def walk(self) -> Iterator[NodeSpec]:
        """Every node of the tree, depth first."""
        for node in self.nodes:
            yield from node.walk()
