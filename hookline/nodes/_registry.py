"""The node registry: node type names, their config parsers, and node-list parsing.

A node type is one module in :mod:`hookline.nodes` that registers a parser::

    @register("set")
    def parse(fields: Fields, nodes: NodeListParser) -> SetNode:
        return SetNode(values=fields.templates("values"))

The parser reads only its own fields (``key``, ``type``, ``title``, ``timeout`` and
``concurrency`` are read by :func:`parse_node`), parses nested node lists with ``nodes``
(``nodes(fields, "then")``), and returns a frozen config implementing
:class:`~hookline.nodes._base.NodeConfig`. Unknown fields are refused after it returns.
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
from ._base import NodeConfig, NodeSpec

__all__ = ["NODE_TYPES", "NodeListParser", "NodeParser", "parse_node", "register"]

NodeParser = Callable[[Fields, "NodeListParser"], NodeConfig]
P = TypeVar("P", bound=NodeParser)

KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"

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
    timeout = fields.duration("timeout", 30.0)
    concurrency = fields.integer("concurrency", None, low=1)
    config = parser(fields, nodes)
    fields.done()
    return NodeSpec(
        key=key, type=kind, config=config, timeout=timeout, concurrency=concurrency, title=title
    )


def _import_node_modules() -> None:
    # Importing a node module runs its @register: discovering them keeps "add a type"
    # down to "add a module", with no list here to edit.
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in {"_base", "_registry"}:
            importlib.import_module(f"{__package__}.{module.name}")


_import_node_modules()
