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
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, KeysView
from pathlib import Path
from typing import TypeVar

from ..engine._fields import Fields
from ._base import NodeConfig, NodeSpec, RetryPolicy

__all__ = ["NODE_TYPES", "NodeListParser", "NodeParser", "parse_node", "parse_retry", "register"]

NodeParser = Callable[[Fields, "NodeListParser"], NodeConfig]
P = TypeVar("P", bound=NodeParser)

KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"

DEFAULT_TIMEOUT = 30.0
MAX_ATTEMPTS = 100
RETRY_STATUSES = ("failed", "timed_out")

_PARSERS: dict[str, NodeParser] = {}

NODE_TYPES: KeysView[str] = _PARSERS.keys()
"""The registered node type names (a live view)."""


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


class NodeListParser:
    """Parses the node lists of one workflow, keeping node keys unique across its tree.

    Call it as ``nodes(fields, "then")`` for the list at a field (absent: empty;
    ``required=True``: present and non-empty), or ``nodes.parse(fields, name, value)``
    for a list found elsewhere (an item of ``branches``).
    """

    def __init__(self) -> None:
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
    known = "a node type (one of: " + ", ".join(sorted(_PARSERS)) + ")"
    kind = fields.string("type", expected=known)
    parser = _PARSERS.get(kind)
    if parser is None:
        fields.fail("type", known, kind)
    title = fields.string("title", None)
    config = parser(fields, nodes)
    # Read after the type's own fields: a type may own `concurrency` or `retry`, or
    # set another default `timeout` (see hookline.nodes._base).
    timeout = fields.duration("timeout", getattr(config, "default_timeout", DEFAULT_TIMEOUT))
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
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in {"_base", "_registry"}:
            importlib.import_module(f"{__package__}.{module.name}")


_import_node_modules()
