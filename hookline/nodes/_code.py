"""The ``code`` node: JavaScript in a sandbox; its return value is the node's result.

Fields: ``code``, a function body (``return`` gives the result; ``await`` works);
``timeout``, the script's time limit (default 5s; when written it is also the node's
timeout); ``memory``, its heap limit (default 64MiB). The globals ``context`` (the
``$context`` object), ``nodes`` (the results so far) and ``scopes`` (the current loop
items) are copies: changing them changes nothing outside. ``console.log`` lines go to
the job's log.

Every run gets a fresh V8 isolate (see :mod:`hookline.nodes._js`): no file system, no
network, nothing kept between runs. A thrown error, a syntax error, a result that is not
JSON, or a limit reached fails the job with the JavaScript message.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..definition import Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._js import run_script
from ._registry import NodeListParser, register

DEFAULT_TIME_LIMIT = 5.0
DEFAULT_MEMORY = 64 * 1024 * 1024
MIN_MEMORY = 4 * 1024 * 1024
MAX_MEMORY = 1024 * 1024 * 1024


@attrs.frozen
class CodeNode:
    """A script (``code``, a function body) with its ``time_limit`` (seconds) and
    ``memory`` limit (bytes)."""

    code: str
    time_limit: float = DEFAULT_TIME_LIMIT
    memory: int = DEFAULT_MEMORY

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        roots = job.variables
        inputs = {
            "context": roots.get("context"),
            "nodes": roots.get("nodes") or {},
            "scopes": roots.get("scopes") or {},
        }
        outcome = await run_script(
            self.code, inputs, time_limit=self.time_limit, memory_limit=self.memory
        )
        for line in outcome.lines:
            job.log(line)
        if outcome.error is not None:
            raise NodeError(outcome.error)
        return NodeResult(output=outcome.value)


@register("code")
def parse(fields: Fields, nodes: NodeListParser) -> CodeNode:
    code = fields.string("code", expected="JavaScript code (a function body)")
    if not code.strip():
        fields.fail("code", "JavaScript code (a function body)", code)
    # `timeout` is read by parse_node as the node's timeout; written, it is the script's
    # limit too, so the two never disagree.
    time_limit = fields.duration("timeout") if fields.has("timeout") else DEFAULT_TIME_LIMIT
    memory = fields.size("memory", DEFAULT_MEMORY)
    if not MIN_MEMORY <= memory <= MAX_MEMORY:
        fields.fail("memory", "a size from 4MiB to 1GiB", fields.value("memory"))
    return CodeNode(code=code, time_limit=time_limit, memory=memory)
