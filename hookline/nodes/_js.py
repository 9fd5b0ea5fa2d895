"""JavaScript in a sandbox: a fresh V8 isolate per run, with hard time and memory limits.

:func:`run_script` runs a function body in its own V8 isolate (the ``mini-racer``
package) in a worker thread, so the trio loop never waits on a script. The isolate has
the ECMAScript built-ins and nothing else: no ``require``, no ``fetch``, no file system,
no ``WebAssembly``; ``console.log`` lines are collected and returned. Nothing survives
from one run to the next.

Limits are enforced by V8 itself, not by politeness: past ``time_limit`` (wall clock)
the isolate's execution is terminated wherever it is, a regular expression backtracking
included; past ``memory_limit`` of heap the same. When the trio caller is cancelled,
the script is terminated at once and the worker thread ends with it, so a cancelled job
never leaves a thread spinning.

Why V8 and not QuickJS (the ``quickjs`` package is faster to start, about 0.4 ms against
2 ms here): its time limit is checked by an interrupt handler that regular expressions
never call, so ``/(a+)+$/`` on a long input ran for 20 s past a 1 s limit.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    # Imported where a script runs (in its worker thread): V8 and asyncio cost more to
    # import than the rest of hookline's engine, and most programs never run a script.
    import asyncio

    from py_mini_racer import MiniRacer

from ..definition import format_duration, format_size

__all__ = ["MAX_LINES", "ScriptOutcome", "run_script"]

MAX_LINES = 1000
"""``console.log`` lines kept per run; later ones are counted, not kept."""
MAX_LINE = 4000
"""Characters kept of one ``console.log`` line."""
CONCURRENCY = 8
"""Scripts running at once per trio run (each is a V8 isolate and a thread)."""

_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("hookline_js")
_POLL = 0.002  # first wait for a pending promise; doubles up to 50 ms

# Runs first in every isolate. Helpers live in a closure and are frozen, so the script
# can neither see the collected lines nor forge the outcome record.
_PRELUDE = f"""
(() => {{
  'use strict';
  const stringify = JSON.stringify;
  const lines = [];
  let dropped = 0;
  let outcome = null;
  const show = (value) => {{
    if (typeof value === 'string') return value;
    if (value instanceof Error) return String(value.stack || value);
    try {{
      const text = stringify(value);
      return text === undefined ? String(value) : text;
    }} catch (e) {{
      return String(value);
    }}
  }};
  const write = (prefix) => (...args) => {{
    if (lines.length >= {MAX_LINES}) {{ dropped += 1; return; }}
    const line = prefix + args.map(show).join(' ');
    lines.push(line.length > {MAX_LINE} ? line.slice(0, {MAX_LINE}) + '...' : line);
  }};
  const describe = (error) => {{
    if (error instanceof Error) {{
      const where = /<anonymous>:(\\d+):\\d+/.exec(String(error.stack || ''));
      return error.name + ': ' + error.message + (where ? ' (line ' + where[1] + ')' : '');
    }}
    return 'Uncaught ' + show(error);
  }};
  const define = (name, value) => Object.defineProperty(
    globalThis, name, {{value, writable: false, enumerable: false, configurable: false}});
  define('console', Object.freeze({{
    log: write(''), info: write(''), debug: write(''),
    warn: write('warn: '), error: write('error: '),
  }}));
  define('__hookline', Object.freeze({{
    settle(promise) {{
      promise.then((value) => {{
        try {{
          const text = stringify(value);
          outcome = {{value: text === undefined ? 'null' : text}};
        }} catch (e) {{
          outcome = {{error: 'the result cannot be turned into JSON: ' + e.message}};
        }}
      }}, (e) => {{ outcome = {{error: describe(e)}}; }});
    }},
    poll: () => outcome === null ? null : stringify(outcome),
    lines: () => stringify({{lines, dropped}}),
  }}));
  delete globalThis.WebAssembly;
}})();
"""
# The body starts on the script's first line, so error line numbers are the user's.
_HEAD = "__hookline.settle((async function () {"
_TAIL = "\n})());"
_SYNTAX = re.compile(r"<anonymous>:(\d+): (.+)")


@attrs.frozen
class ScriptOutcome:
    """What a run gave: the return ``value`` (decoded JSON; None for ``undefined``), the
    ``console.log`` ``lines``, and ``error`` (None if it succeeded): a thrown error's
    name, message and line, or which limit was hit."""

    value: Any = None
    lines: tuple[str, ...] = ()
    error: str | None = None


async def run_script(
    body: str, inputs: Mapping[str, Any], *, time_limit: float, memory_limit: int
) -> ScriptOutcome:
    """Run ``body`` as an async function body with each of ``inputs`` (JSON values) as
    a global variable. Never raises for what the script does: errors and limits are
    in the outcome. Cancellation terminates the script and propagates."""
    globals_json = json.dumps(dict(inputs), default=str, ensure_ascii=False)
    stopper = _Stopper()
    run = functools.partial(_run_blocking, body, globals_json, time_limit, memory_limit, stopper)
    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True, limiter=_limiter())
    finally:
        stopper.stop()  # after a cancel: stop the abandoned thread's script now


def _limiter() -> trio.CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(CONCURRENCY)
        _LIMITER.set(limiter)
        return limiter


class _Stopper:
    """Lets the trio side cancel the worker thread's asyncio task, whenever it asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._target: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._target = (loop, task)
            return True

    def detach(self) -> None:
        with self._lock:
            self._target = None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._target is not None:
                loop, task = self._target
                loop.call_soon_threadsafe(task.cancel)


def _run_blocking(
    body: str, globals_json: str, time_limit: float, memory_limit: int, stopper: _Stopper
) -> ScriptOutcome:
    import asyncio

    return asyncio.run(_evaluate(body, globals_json, time_limit, memory_limit, stopper))


async def _evaluate(
    body: str, globals_json: str, time_limit: float, memory_limit: int, stopper: _Stopper
) -> ScriptOutcome:
    import asyncio

    from py_mini_racer import JSEvalException, JSOOMException, JSParseException, mini_racer

    task = asyncio.current_task()
    assert task is not None
    if not stopper.attach(asyncio.get_running_loop(), task):
        return ScriptOutcome(error="cancelled")
    try:
        with mini_racer() as racer:
            racer.set_hard_memory_limit(memory_limit)
            value: Any = None
            error: str | None = None
            try:
                value = await asyncio.wait_for(_execute(racer, body, globals_json), time_limit)
            except JSOOMException:
                error = ""
            except JSParseException as exc:
                error = _syntax_error(str(exc))
            except JSEvalException as exc:  # terminated: by the memory limit, as a rule
                error = str(exc).split("\n", 1)[0]
            except TimeoutError:  # asyncio.wait_for's, checked after JS's own subclasses
                error = f"the script ran past its time limit of {format_duration(time_limit)}"
            except _ScriptError as exc:
                error = str(exc)
            if error == "" or racer.was_hard_memory_limit_reached():
                error = f"the script went past its memory limit of {format_size(memory_limit)}"
            return ScriptOutcome(value=value, lines=await _lines(racer), error=error)
    finally:
        stopper.detach()


class _ScriptError(Exception):
    """The script threw (or its result is not JSON): the message says what and where."""


async def _execute(racer: MiniRacer, body: str, globals_json: str) -> Any:
    import asyncio

    await racer.eval_cancelable(_PRELUDE)
    await racer.eval_cancelable(
        f"Object.assign(globalThis, JSON.parse({json.dumps(globals_json)}));"
    )
    await racer.eval_cancelable(_HEAD + body + _TAIL)
    # Promises are watched from JS and polled with short evals: awaiting a JS promise
    # from Python blocks the calling loop while the isolate is busy, past any timeout.
    wait = _POLL
    while True:
        found = await racer.eval_cancelable("__hookline.poll()")
        if isinstance(found, str):
            outcome = json.loads(found)
            if "error" in outcome:
                raise _ScriptError(outcome["error"])
            return json.loads(outcome["value"])
        await asyncio.sleep(wait)
        wait = min(wait * 2, 0.05)


async def _lines(racer: MiniRacer) -> tuple[str, ...]:
    import asyncio

    from py_mini_racer import JSEvalException

    try:
        found = await asyncio.wait_for(racer.eval_cancelable("__hookline.lines()"), 0.1)
        collected = json.loads(str(found))
        lines = [str(line)[:MAX_LINE] for line in collected["lines"][:MAX_LINES]]
        dropped = int(collected["dropped"])
    except (JSEvalException, TimeoutError, ValueError, KeyError, TypeError):
        return ()  # the isolate can no longer answer (out of memory): the lines are lost
    if dropped:
        lines.append(f"... {dropped} more lines not kept")
    return tuple(lines)


def _syntax_error(text: str) -> str:
    found = _SYNTAX.search(text)
    if found is None:
        return text.split("\n", 1)[0]
    return f"{found.group(2)} (line {found.group(1)})"
