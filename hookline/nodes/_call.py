"""Custom node types: an async function of a :class:`NodeCall`, given to one engine.

An embedding team writes a node type as a plain async function and hands it to
``open_engine(..., nodes={"double": double})`` (or to the loader functions)::

    async def double(call: hookline.NodeCall) -> object:
        call.log(f"doubling {call.params['value']}")
        return {"value": call.params["value"] * 2}

A node ``{key: d, type: double, value: "{{$context.data.n}}"}`` then runs it. Its
fields, except the ones the engine handles for every node (:data:`ENGINE_FIELDS`), are
compiled as templates at load time and rendered for each job into ``call.params``. The
return value is the node's output (``$nodes.d``); it must be a JSON value, or the job
fails saying where it is not. An exception fails the job like any node's.

:func:`custom_node_types` turns such a mapping into the :data:`NodeTypes` a load uses.
The built-in node types keep their richer interface (:mod:`hookline.nodes._base`).
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import attrs

from ..definition import JSON, Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, NodeParser, NodeTypes, node_types

__all__ = [
    "ENGINE_FIELDS",
    "CustomNode",
    "NodeCall",
    "NodeFunction",
    "custom_node_types",
    "json_problem",
]

ENGINE_FIELDS = ("key", "type", "title", "timeout", "retry", "concurrency")
"""The fields of every node, read by the engine: never part of ``call.params``."""

_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1  # what the store's msgpack encoding holds


@attrs.frozen(kw_only=True)
class NodeCall:
    """One run of a custom node, as its function sees it.

    ``params`` holds the node's fields with their templates rendered (every field but
    ``key``, ``type``, ``title``, ``timeout``, ``retry`` and ``concurrency``); it is a
    fresh copy for each call, yours to change. ``execution_id`` and ``node_key`` name
    the job; ``attempt`` counts from 1 when the node has a ``retry`` policy. Lines
    passed to :meth:`log` go to the job's log, in ``lines`` until the function returns.

    The engine makes one per job. To test a node function without an engine, make one
    yourself: ``await double(NodeCall(params={"value": 2}))``.
    """

    params: Mapping[str, Any] = attrs.field(factory=dict)
    execution_id: str = ""
    node_key: str = ""
    attempt: int = 1
    lines: list[str] = attrs.field(factory=list, eq=False, repr=False)

    def log(self, text: str) -> None:
        """Add a line to the job's log (shown with the job's record)."""
        self.lines.append(str(text))


NodeFunction = Callable[[NodeCall], Awaitable[object]]
"""A custom node type: ``async def name(call: NodeCall) -> object``."""


@attrs.frozen
class CustomNode:
    """A node of a custom type: ``function`` called with ``params`` rendered."""

    function: NodeFunction
    params: tuple[tuple[str, Compiled], ...] = ()

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        call = NodeCall(
            params={name: _copy(job.render(value)) for name, value in self.params},
            execution_id=job.execution_id,
            node_key=job.node.key,
            attempt=job.attempt,
        )
        try:
            output = await self.function(call)
        finally:
            # Also when it raised or was cancelled: those lines explain why.
            for line in call.lines:
                job.log(line)
        problem = json_problem(output)
        if problem is not None:
            raise NodeError(
                f"{_describe(self.function)} returned a value that cannot be stored "
                f"as JSON: {problem}"
            )
        return NodeResult(output=cast(JSON, output))  # json_problem found none


def custom_node_types(functions: Mapping[str, NodeFunction] | None) -> NodeTypes:
    """The built-in node types and ``functions``, each an async node function by type name.

    Raises :class:`ValueError` for a name that is built in or not a valid type name,
    :class:`TypeError` for a value that is not an async function.
    """
    if not functions:
        return node_types({})
    parsers: dict[str, NodeParser] = {}
    for name, function in functions.items():
        if not isinstance(name, str) or _TYPE_NAME.fullmatch(name) is None:
            raise ValueError(
                f"node type name {name!r}: expected letters, digits, '_', '-' or '.', "
                "starting with a letter or '_'"
            )
        if not _is_async(function):
            raise TypeError(
                f"node type {name!r}: expected an async function of a NodeCall, got {function!r}"
            )
        parsers[name] = _parser(function)
    return node_types(parsers)


def _parser(function: NodeFunction) -> NodeParser:
    def parse(fields: Fields, nodes: NodeListParser) -> CustomNode:
        params = tuple(
            (name, fields.compile(name, fields.value(name, None)))
            for name in fields.names()
            if name not in ENGINE_FIELDS
        )
        return CustomNode(function=function, params=params)

    return parse


def _is_async(function: object) -> bool:
    if inspect.iscoroutinefunction(function):
        return True
    # An object whose class defines `async def __call__`.
    return callable(function) and inspect.iscoroutinefunction(type(function).__call__)


def _describe(function: object) -> str:
    name = getattr(function, "__name__", None)
    return f"{name}()" if isinstance(name, str) else "the node function"


def _copy(value: Any) -> Any:
    # Rendering shares the literal parts of a template (and whole context objects) with
    # every other job: the function gets its own.
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def json_problem(value: object, path: str = "$") -> str | None:
    """Why ``value`` is not a JSON value, naming where (``a set at $.tags``); None if it is.

    JSON values: None, bool, str, int (within 64 bits), finite float, list, and dict
    with str keys, nested without cycles.
    """
    return _problem(value, path, set())


def _problem(value: object, path: str, open_ids: set[int]) -> str | None:
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _INT_MAX else f"an integer wider than 64 bits at {path}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} at {path}"
    if not isinstance(value, dict | list):
        kind = type(value).__name__
        return f"{'an' if kind[:1] in 'aeiouAEIOU' else 'a'} {kind} at {path}"
    if id(value) in open_ids:
        return f"a reference to a containing value (a cycle) at {path}"
    open_ids.add(id(value))
    try:
        if isinstance(value, list):
            for index, item in enumerate(value):
                problem = _problem(item, f"{path}[{index}]", open_ids)
                if problem is not None:
                    return problem
            return None
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a key that is not a string ({key!r}) at {path}"
            problem = _problem(item, _member(path, key), open_ids)
            if problem is not None:
                return problem
        return None
    finally:
        open_ids.discard(id(value))


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"
