"""The code node's scripts as the server sees them: checked when loaded, run elsewhere.

:func:`compile_script` checks a body's syntax when the workflow loads (a syntax error
is a load error naming the line and column) and gives it the id the pool's workers
cache it under. It is compiled in-process by QuickJS, in a context with no host
functions, a 0.25 s time limit and a 16 MiB memory limit: a body that closes the
function around it (``}); ...; (function () {``) could run code there, within those
limits, and is refused.

Scripts themselves run in the worker processes of :mod:`hookline.nodes._script_pool`;
:func:`describe_error` turns what a worker reports about a thrown error into the
message the job fails with.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

from ._script_worker import HEAD, user_stack

__all__ = ["Script", "ScriptSyntaxError", "compile_script", "describe_error"]

_CHECK_TIME = 0.25  # of the process's CPU time (other threads count too)
_CHECK_MEMORY = 16 * 1024 * 1024
_ESCAPED = "a function body, and this one closes the function around it"


@attrs.frozen
class Script:
    """A checked script body and its id (a digest of the body)."""

    body: str
    sid: str


class ScriptSyntaxError(ValueError):
    """The body does not compile: the message names what, with the line and column."""


def compile_script(body: str) -> Script:
    """Check ``body`` (a function body: ``return``/``await`` allowed at its top level)
    and return it as a :class:`Script`. Raises :class:`ScriptSyntaxError`."""
    import quickjs

    wrapped = "(async function () {\n" + body + "\n})"
    context = quickjs.Context()
    context.set_memory_limit(_CHECK_MEMORY)
    context.set_time_limit(_CHECK_TIME)
    context.set("__hl_source", wrapped)
    try:
        # The completion value is the function, unless the body escaped it.
        source = context.eval("String((0, eval)(__hl_source))")
    except quickjs.JSException as exc:
        if not str(exc).startswith("SyntaxError"):  # code ran: the body escaped
            raise ScriptSyntaxError(_ESCAPED) from None
        raise ScriptSyntaxError(_syntax_message(str(exc))) from None
    except (quickjs.StackOverflow, MemoryError):
        raise ScriptSyntaxError("the script is nested too deeply to compile") from None
    if source != wrapped[1:-1]:
        raise ScriptSyntaxError(_ESCAPED)
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    return Script(body=body, sid=digest[:24])


def _syntax_message(text: str) -> str:
    head, _, stack = text.partition("\n")
    where = user_stack(stack)[1]
    if where is None:
        return head
    return f"{head} (line {where[0]}, column {where[1]})"


def describe_error(error: dict[str, Any]) -> str:
    """The job's error for what a script threw: ``Name: message (line L, column C)``
    then the frames in the user's script (``at fn (script:L:C)``)."""
    if "thrown" in error:
        return f"Uncaught {error['thrown']}"
    head = f"{error.get('name', 'Error')}: {error.get('message', '')}"
    frames, where = user_stack(str(error.get("stack", "")))
    if where is not None:
        head += f" (line {where[0]}, column {where[1]})"
    return "\n".join([head, *frames])


# Made once: json.dumps with options builds an encoder per call. No circular check:
# the globals are a delivery's parsed body and node outputs, stored as JSON already
# (a cycle would end in a RecursionError, not a hang).
_INPUTS = json.JSONEncoder(
    default=str, ensure_ascii=False, check_circular=False, separators=(",", ":")
)


def inputs_json(inputs: dict[str, Any]) -> str:
    """The script's globals as JSON text (values that are not JSON become strings)."""
    return _INPUTS.encode(inputs)


assert HEAD.endswith("{\n")  # the wrapper puts the body on line 2, as compile_script does
