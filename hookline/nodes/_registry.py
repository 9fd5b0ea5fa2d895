"""The node registry: node type names, their config parsers, and node-list parsing.

A node type is one module in :mod:`hookline.nodes` that registers a parser::

    @register("set")
    def parse(fields: Fields, nodes: NodeListParser) -> SetNode:
        return SetNode(values=fields.templates("values"))

The parser reads only its own fields (``key``, ``type``, ``title``, ``timeout``,
``concurrency`` and ``retry`` are read by :func:`parse_node`, unless the config class
says it handles ``concurrency`` or ``retry`` itself: see :mod:`hookline.nodes._base`),
parses nested node lists with ``nodes`` (``nodes(fields, "then")``), and returns a
frozen config implementing :class:`~hookline.nodes._base.NodeConfig`. Unknown fields are
refused after it returns.
Every module of the package except this one and ``_base`` is imported here, so adding a
node type is adding one module.

Registered types are the built-ins, known to every load in the process. An engine's own
types (``open_engine(..., nodes=...)``, see :mod:`hookline.nodes._call`) are not
registered: each load gets a :data:`NodeTypes` mapping, the built-ins plus its own,
threaded through :class:`NodeListParser`, so two engines in one process never see each
other's types.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections import ChainMap
from collections.abc import Callable, KeysView, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from ..definition import Fields, format_duration
from ._base import NodeConfig, NodeSpec, RetryPolicy

__all__ = [
    "BUILT_IN_TYPES",
    "NODE_TYPES",
    "NodeListParser",
    "NodeParser",
    "NodeTypes",
    "node_types",
    "parse_node",
    "parse_retry",
    "register",
]

NodeParser = Callable[[Fields, "NodeListParser"], NodeConfig]
P = TypeVar("P", bound=NodeParser)

NodeTypes = Mapping[str, NodeParser]
"""The node types one load knows, by name: the built-ins and, for an engine, its own."""

KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"

DEFAULT_TIMEOUT = 30.0
MAX_ATTEMPTS = 100
RETRY_STATUSES = ("failed", "timed_out")

_PARSERS: dict[str, NodeParser] = {}

NODE_TYPES: KeysView[str] = _PARSERS.keys()
"""The registered node type names (a live view)."""

BUILT_IN_TYPES: NodeTypes = MappingProxyType(_PARSERS)
"""The registered node types (a live, read-only view): what a load knows by default."""


def register(name: str) -> Callable[[P], P]:
    """Register ``parser`` as the config parser of node type ``name``.

    Raises :class:`ValueError` if the name is taken: two modules claiming one type is a bug.
    """

    def decorate(parser: P) -> P:
        if name in _PARSERS and _PARSERS[name] is not parser:
            raise ValueError(f"node type {name!r} is registered twice")
        _PARSERS[name] = parser
        return parser

    return decorate


def node_types(own: Mapping[str, NodeParser]) -> NodeTypes:
    """The built-in types together with ``own`` (an engine's types, by name).

    Raises :class:`ValueError` for a name of ``own`` that is a built-in type: a
    definition's ``type: set`` must mean the same node in every engine. The built-ins
    are looked up live, so types registered later (``register_test_nodes``) are known.
    """
    for name in own:
        if name in _PARSERS:
            raise ValueError(f"node type {name!r} is built in; give your node type another name")
    if not own:
        return BUILT_IN_TYPES
    return ChainMap(_PARSERS, dict(own))


class NodeListParser:
    """Parses the node lists of one workflow, keeping node keys unique across its tree.

    Call it as ``nodes(fields, "then")`` for the list at a field (absent: empty;
    ``required=True``: present and non-empty), or ``nodes.parse(fields, name, value)``
    for a list found elsewhere (an item of ``branches``).

    ``types`` are the node types the workflow may use (default: the built-ins).
    ``workflow_timeout`` bounds what a node may be written to take: an explicit
    ``timeout``, or a ``delay`` node's literal ``duration``, longer than it is refused
    (it could only end in the workflow timing out).
    """

    def __init__(
        self, types: NodeTypes = BUILT_IN_TYPES, *, workflow_timeout: float = math.inf
    ) -> None:
        self.types = types
        self.workflow_timeout = workflow_timeout
        self._keys: dict[str, str] = {}

    def __call__(
        self, fields: Fields, name: str, *, required: bool = False
    ) -> tuple[NodeSpec, ...]:
        return tuple(parse_node(item, self) for item in fields.items(name, required=required))

    def parse(self, fields: Fields, name: str, value: object) -> tuple[NodeSpec, ...]:
        """Parse ``value``, found at ``name`` below ``fields``, as a list of nodes."""
        if not isinstance(value, list):
            fields.fail(name, "a list of nodes", value)
        return tuple(
            parse_node(fields.child(f"{name}[{index}]", item), self)
            for index, item in enumerate(value)
        )

    def claim(self, fields: Fields, key: str) -> None:
        """Record node ``key`` at ``fields``; raise if another node already has it."""
        where = fields.at("key")
        first = self._keys.setdefault(key, where)
        if first != where:
            fields.fail("key", f"a node key unique in the workflow (also at {first})", key)


def parse_node(fields: Fields, nodes: NodeListParser | None = None) -> NodeSpec:
    """Parse one node: the common fields, then its type's own fields."""
    nodes = NodeListParser() if nodes is None else nodes
    key = fields.string("key", pattern=KEY_PATTERN, expected=f"a node key matching {KEY_PATTERN}")
    nodes.claim(fields, key)
    known = "a node type (one of: " + ", ".join(sorted(nodes.types)) + ")"
    kind = fields.string("type", expected=known)
    parser = nodes.types.get(kind)
    if parser is None:
        fields.fail("type", known, kind)
    title = fields.string("title", None)
    config = parser(fields, nodes)
    # Read after the type's own fields: a type may own `concurrency` or `retry`, or
    # set another default `timeout` (see hookline.nodes._base).
    timeout = fields.duration("timeout", getattr(config, "default_timeout", DEFAULT_TIMEOUT))
    _check_within(fields, kind, config, nodes.workflow_timeout)
    concurrency = (
        None
        if getattr(config, "handles_concurrency", False)
        else fields.integer("concurrency", None, low=1)
    )
    retry = None if getattr(config, "handles_retry", False) else parse_retry(fields)
    fields.done()
    return NodeSpec(
        key=key,
        type=kind,
        config=config,
        timeout=timeout,
        concurrency=concurrency,
        title=title,
        retry=retry,
    )


def _check_within(fields: Fields, kind: str, config: NodeConfig, limit: float) -> None:
    """Refuse a node written to take longer than its workflow may run: it could only
    end in the workflow timing out.

    Only what is written counts: a default timeout (``math.inf`` for nodes that wait)
    is bounded by the workflow's anyway, and a templated ``duration`` is known only
    when the node runs.
    """
    if math.isinf(limit):
        return
    expected = f"at most the workflow's timeout ({format_duration(limit)})"
    if fields.has("timeout") and fields.duration("timeout") > limit:
        fields.fail("timeout", expected, fields.value("timeout"))
    if kind == "delay" and getattr(config, "template", None) is None:
        waits = getattr(config, "duration", 0.0)
        if waits > limit:
            fields.fail("duration", expected, fields.value("duration"))


def parse_retry(fields: Fields) -> RetryPolicy | None:
    """The common ``retry`` field: ``{attempts, backoff, max_backoff, jitter, retry_on}``,
    or a bare number of attempts; absent: None (no retry)."""
    if not fields.has("retry"):
        fields.value("retry", None)
        return None
    if isinstance(fields.value("retry"), int):
        return RetryPolicy(attempts=fields.integer("retry", low=1, high=MAX_ATTEMPTS))
    sub = fields.sub("retry")
    default = RetryPolicy()
    retry_on = sub.strings("retry_on", sorted(default.retry_on))
    for index, status in enumerate(retry_on):
        if status not in RETRY_STATUSES:
            sub.fail(f"retry_on[{index}]", "one of " + ", ".join(RETRY_STATUSES), status)
    policy = RetryPolicy(
        attempts=sub.integer("attempts", default.attempts, low=1, high=MAX_ATTEMPTS),
        backoff=sub.duration("backoff", default.backoff, positive=False),
        max_backoff=sub.duration("max_backoff", default.max_backoff, positive=False),
        jitter=sub.boolean("jitter", default.jitter),
        retry_on=frozenset(retry_on),
    )
    sub.done()
    return policy


def _import_node_modules() -> None:
    # Importing a node module runs its @register: discovering them keeps "add a type"
    # down to "add a module", with no list here to edit.
    # (_transport holds the http nodes' httpx client: imported on their first request.)
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in {"_base", "_registry", "_transport"}:
            importlib.import_module(f"{__package__}.{module.name}")


_import_node_modules()
