"""The ``code`` node: JavaScript in a sandbox; its return value is the node's result.

Fields: ``code``, a function body (``return`` gives the result; ``await`` works);
``timeout``, the script's time limit (default: the server's ``code.timeout``, 5s;
when written it is also the node's timeout); ``memory``, its memory limit (default:
``code.memory``, 64MiB). The globals ``context`` (the ``$context`` object), ``nodes``
(the results so far) and ``scopes`` (the current loop items) are copies: changing them
changes nothing outside. ``console.log`` lines go to the job's log.

The body is compiled when the workflow loads (a syntax error is a load error with its
line and column: :mod:`hookline.nodes._js`) and runs in a worker process of the
engine's script pool (:mod:`hookline.nodes._script_pool`), in a fresh QuickJS context
with the standard library of ``_script_stdlib.js``: no file system, no network,
nothing kept between runs. A thrown error (message, line, column and stack in the
script), a result that is not JSON, or a limit reached fails the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from ..definition import Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._js import Script, ScriptSyntaxError, compile_script
from ._registry import NodeListParser, register
from ._script_pool import default_pool

_LAZY_CONTEXT = ("raw", "raw_base64")
MIN_MEMORY = 4 * 1024 * 1024
MAX_MEMORY = 1024 * 1024 * 1024


@attrs.frozen
class CodeNode:
    """A checked script (``code``, a function body) with its ``time_limit`` (seconds)
    and ``memory`` limit (bytes); None: the script pool's defaults."""

    script: Script
    # No effect outside its execution: a sync run of it may happen whole at admission
    # (see hookline/engine/_inline_run.py).
    pure: ClassVar[bool] = True
    time_limit: float | None = None
    memory: int | None = None

    @property
    def code(self) -> str:
        return self.script.body

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        roots = job.variables
        context = roots.get("context")
        if isinstance(context, Mapping):
            # The body's text (and base64) are made on demand: only for scripts naming
            # them. A plain copy leaves them out (encoding $context whole would make
            # and send both, for every run).
            context = {
                **context,
                **{key: context.get(key) for key in _LAZY_CONTEXT if key in self.code},
            }
        inputs = {
            "context": context,
            "nodes": roots.get("nodes") or {},
            "scopes": roots.get("scopes") or {},
        }
        pool = job.services.scripts or default_pool()
        outcome = await pool.execute(
            self.script, inputs, time_limit=self.time_limit, memory=self.memory
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
    time_limit = fields.duration("timeout") if fields.has("timeout") else None
    memory = fields.size("memory", None)
    if memory is not None and not MIN_MEMORY <= memory <= MAX_MEMORY:
        fields.fail("memory", "a size from 4MiB to 1GiB", fields.value("memory"))
    try:
        script = compile_script(code)
    except ScriptSyntaxError as exc:
        fields.fail("code", f"JavaScript that compiles; {exc}", _excerpt(code))
    return CodeNode(script=script, time_limit=time_limit, memory=memory)


def _excerpt(code: str) -> str:
    return code if len(code) <= 60 else code[:57] + "..."
