"""The ``json_query`` node: a JMESPath query over data; its result is the query's value.

``source`` (a template, default ``{{$context.data}}``) is rendered per job; ``query`` is
compiled once at load with :func:`jmespath.compile`, so a bad expression refuses the
workflow with the field's path rather than failing every execution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import jmespath
import jmespath.exceptions
import jmespath.parser

from ..definition import Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

_DEFAULT_SOURCE = "{{$context.data}}"


@attrs.frozen
class JsonQueryNode:
    """Run ``query`` (compiled JMESPath) over ``source`` rendered.

    A query that is valid but fails on the data (a function given the wrong type, as
    ``length(`5`)``) raises NodeError; a path that finds nothing gives null.
    """

    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver
    source: Compiled
    query: jmespath.parser.ParsedResult = attrs.field(eq=False)
    expression: str

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        data = _for_jmespath(job.render(self.source))
        try:
            return NodeResult(output=self.query.search(data))
        except jmespath.exceptions.JMESPathError as exc:
            raise NodeError(f"the query {self.expression!r} failed: {exc}") from exc


def _for_jmespath(value: Any) -> Any:
    """``value`` with mappings that are not dicts (``$context`` and its files, whose
    parts are computed when read) made dicts: JMESPath's functions (``keys``,
    ``length``...) know no other mapping. Plain JSON data is left as it is, unwalked."""
    if isinstance(value, Mapping) and type(value) is not dict:
        return _plain(value)
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    if any(isinstance(child, Mapping) and type(child) is not dict for child in children):
        return _plain(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@register("json_query")
def parse(fields: Fields, nodes: NodeListParser) -> JsonQueryNode:
    source = fields.compile("source", fields.value("source", _DEFAULT_SOURCE))
    expression = fields.string("query", expected="a JMESPath expression such as 'items[*].id'")
    try:
        query = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        # The parser's message spans lines (the expression with a caret): keep the first.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fields.fail("query", f"a valid JMESPath expression ({reason})", expression)
    return JsonQueryNode(source=source, query=query, expression=expression)
