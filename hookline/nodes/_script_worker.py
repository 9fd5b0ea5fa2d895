"""One worker process of the code node's script pool (:mod:`hookline.nodes._script_pool`).

Started as ``python -I -S <this file> <memory cap> [<folder of _quickjs>]``, it imports
nothing of hookline and no ``site`` (only the standard library and QuickJS's C module,
from the folder the pool names), so it starts in about 25 ms of CPU rather than 75: a
worker killed at a script's limit is replaced often, and at full priority. Before
it reads any request it caps itself with ``RLIMIT_AS`` (its whole address space;
QuickJS reserves little, so unlike V8 it starts under a tight cap). Before each run
it sets ``RLIMIT_CPU`` to the CPU time used so far plus the script's time limit, so a
script that the parent's watchdog somehow misses is killed by the kernel (SIGXCPU).

Protocol, on stdin/stdout: frames of a 4-byte big-endian length and UTF-8 JSON. The
worker first writes ``{"ready": true}``; then it answers each request
``{"id", "sid", "source"?, "memory", "time", "max_result"}`` (then a newline and the
script's globals as JSON text) with
``{"id", "value"?, "error"?, "limit"?, "lines"}``: ``value`` is the result's JSON
text, ``error`` what the script threw (``name``, ``message``, ``line``, ``column``,
``stack``), ``limit`` is ``"memory"`` when the memory limit stopped it. ``source`` (the
script's body) comes with the first request of a script id to this worker only.

Every run gets a fresh QuickJS context (its own runtime: no built-in, global or
prototype survives a run) with the prelude of ``_script_runner.js`` (which loads the
standard library of ``_script_stdlib.js`` on first use; read from bytecode compiled
once, see :func:`_runner_loader`), and then the script. The
worker makes the next run's context, and frees the last one, after it sends an
answer: a request waits only for its script (about 0.07 ms for a short one, against
0.45 ms with the context made on arrival). QuickJS is used because a fresh context
costs about 0.25 ms here against about 6 ms for a fresh V8 isolate through mini-racer
(see docs/reference/code.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import resource
import struct
import sys
import time
from collections import OrderedDict
from typing import Any

FRAME = struct.Struct(">I")
STACK_SIZE = 1024 * 1024  # of the JS stack: deep recursion is a RangeError, not a crash
MAX_SCRIPTS = 256  # bodies kept per worker, by script id (sent once each)
MAX_LINES = 1000
MAX_LINE = 4000
HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512", "md5"})
STDLIB_GLOBALS = (
    "require",
    "crypto",
    "Buffer",
    "TextEncoder",
    "TextDecoder",
    "URL",
    "URLSearchParams",
)
"""The globals of ``_script_stdlib.js``: each loads it on first use."""


def _one_line(text: str) -> str:
    """The prelude on one line: its frames are all on line 1, which is dropped from
    the stacks users see (the script itself starts on line 2)."""
    kept = (line.strip() for line in text.splitlines())
    return " ".join(line for line in kept if line and not line.startswith("//"))


# os.path, not pathlib: the worker imports as little as it can (see the module doc).
_HERE = os.path.dirname(os.path.abspath(__file__))
_RUNNER_FILE = os.path.join(_HERE, "_script_runner.js")
_CONSOLE_FILE = os.path.join(_HERE, "_script_console.js")
_THROWN_FILE = os.path.join(_HERE, "_script_thrown.js")
_STDLIB_FILE = os.path.join(_HERE, "_script_stdlib.js")
HEAD = "__hl_run((async function () {\n"
"""Line 1 of a script's evaluated text: the body starts on line 2."""
TAIL = "\n}));"
_FRAME_LINE = re.compile(r"^\s*at (?:(.*?) \()?<input>:(\d+):(\d+)\)?\s*$")


def _script(path: str) -> str:
    """A prelude's text, its constants filled in, on one line."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    text = text.replace("__MAX_LINES__", str(MAX_LINES)).replace("__MAX_LINE__", str(MAX_LINE))
    return _one_line(text.replace("__STDLIB_GLOBALS__", json.dumps(STDLIB_GLOBALS)))


def runner() -> str:
    """The runner's text (see _script_runner.js)."""
    return _script(_RUNNER_FILE)


def wrap(body: str) -> str:
    """The text evaluated for ``body``: an async function (``await`` and ``return``
    work at its top level) handed to the runner."""
    return HEAD + body + TAIL


def user_stack(stack: str) -> tuple[list[str], tuple[int, int] | None]:
    """The frames of ``stack`` in the user's script, as ``at fn (script:line:column)``
    with the script's own line numbers, and the first one's (line, column)."""
    frames: list[str] = []
    where: tuple[int, int] | None = None
    for raw in stack.splitlines():
        found = _FRAME_LINE.match(raw)
        if found is None or int(found.group(2)) < 2:
            continue  # native code, the prelude, the runner or the wrapper
        line, column = int(found.group(2)) - 1, int(found.group(3))
        name = found.group(1) or "<script>"
        if name == "<anonymous>":
            name = "<script>"
        frames.append(f"    at {name} (script:{line}:{column})")
        if where is None:
            where = (line, column)
    return frames, where


def _digest(algorithm: str, data: str) -> str:
    if algorithm not in HASHES:
        raise ValueError(algorithm)
    return hashlib.new(algorithm, data.encode("latin-1")).digest().decode("latin-1")


def _hmac(algorithm: str, key: str, data: str) -> str:
    if algorithm not in HASHES:
        raise ValueError(algorithm)
    mac = hmac.new(key.encode("latin-1"), data.encode("latin-1"), algorithm)
    return mac.digest().decode("latin-1")


def _random(size: float) -> str:
    return os.urandom(max(0, min(int(size), 1 << 20))).decode("latin-1")


def _uuid() -> str:
    """A random (version 4) UUID, as uuid.uuid4 makes it (without importing uuid)."""
    data = bytearray(os.urandom(16))
    data[6] = (data[6] & 0x0F) | 0x40
    data[8] = (data[8] & 0x3F) | 0x80
    text = data.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Worker:
    """The worker's state: the prelude, the script bodies it was sent, and the context
    the next run gets (made between requests, see :meth:`prepare`)."""

    def __init__(self) -> None:
        # The C module itself: the ``quickjs`` package around it imports threads and
        # executors a worker never uses.
        import _quickjs  # type: ignore[import-not-found]

        self._quickjs = _quickjs
        self._stdlib = _script(_STDLIB_FILE)
        self._console = _script(_CONSOLE_FILE)
        self._thrown = _script(_THROWN_FILE)
        self._runner = runner()
        self._load_runner = _runner_loader(_quickjs, self._runner)
        self._scripts: OrderedDict[str, str] = OrderedDict()
        self._next: tuple[Any, Any] | None = None
        self._spent: Any = None
        self._cpu_soft = -1
        self._cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]

    def prepare(self) -> None:
        """Drop the last run's context and make the next one: called once an answer is
        sent, so a run's request waits for neither (together they are most of a
        short run's cost). The context is fresh all the same: nothing has run in it
        but the prelude. Should making it fail (the address space is full), the next
        run makes its own and reports why it cannot."""
        self._spent = None
        if self._next is None:
            try:
                self._next = self._fresh()
            except Exception:  # noqa: BLE001 (the next run reports it)
                self._next = None

    def _fresh(self) -> tuple[Any, Any]:
        """A new context with the prelude run, and the prelude's control."""
        context = self._context()
        if self._load_runner is not None:
            control = self._load_runner(context)
            if control is not None:
                return context, control
            context = self._context()  # a load that failed may have run part of it
        return context, context.eval(self._runner)

    def _context(self) -> Any:
        """A new context with what the runner takes: the host's functions and texts."""
        context = self._quickjs.Context()
        context.set_max_stack_size(STACK_SIZE)
        context.add_callable("__hl_digest", _digest)
        context.add_callable("__hl_hmac", _hmac)
        context.add_callable("__hl_random", _random)
        context.add_callable("__hl_uuid", _uuid)
        context.set("__hl_stdlib", self._stdlib)
        context.set("__hl_console", self._console)
        context.set("__hl_thrown", self._thrown)
        return context

    def handle(self, request: dict[str, Any]) -> bytes:
        sid = str(request["sid"])
        if request.get("source") is not None:
            self._scripts[sid] = wrap(str(request["source"]))
            while len(self._scripts) > MAX_SCRIPTS:
                self._scripts.popitem(last=False)
        text = self._scripts.get(sid)
        reply: dict[str, Any] = {"id": request["id"]}
        if text is None:
            reply["unknown"] = True  # evicted: the pool sends the body again
            return json.dumps(reply).encode()
        self._cap_cpu(float(request["time"]))
        value: str | None = None
        try:
            value, error, limit, lines = self._run(text, request)
        except MemoryError:
            error, limit, lines = None, "memory", []
        except Exception as exc:  # noqa: BLE001 (answer, never die, for what a script does)
            error = {"name": "Error", "message": f"the script worker could not run it: {exc}"}
            limit, lines = None, []
        reply.update(error=error, limit=limit, lines=lines)
        if value is not None and len(value) > int(request["max_result"]):
            reply["error"] = {
                "name": "RangeError",
                "message": f"the result is {len(value)} characters of JSON, more than the "
                f"{request['max_result']} a script may return",
            }
            value = None
        encoded = json.dumps(reply, ensure_ascii=False)
        if value is None:
            return encoded.encode("utf-8", "surrogatepass")
        # The result's JSON goes in as it is, not as a string to decode twice.
        return (encoded[:-1] + ', "value": ' + value + "}").encode("utf-8", "surrogatepass")

    def _run(
        self, text: str, request: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any] | None, str | None, list[str]]:
        quickjs = self._quickjs
        context, control = self._next if self._next is not None else self._fresh()
        self._next = None
        self._spent = context  # freed by prepare(), after the answer is sent
        context.set_memory_limit(int(request["memory"]))
        if "crypto" not in text and "require" not in text:
            # QuickJS stops the script itself at its time limit (CPU time), and this
            # worker lives on. Its binding refuses host calls under a time limit, so a
            # script that may call crypto is stopped by the pool's kill instead.
            context.set_time_limit(float(request["time"]))
        error: dict[str, Any] | None = None
        limit: str | None = None
        value: str | None = None
        lines: list[str] = []
        try:
            control(str(request["inputs"]))
            context.eval(text)
            while context.execute_pending_job():
                pass
            head, _, result = str(control()).partition("\n")
            report = json.loads(head)
            lines = _lines(report)
            if "error" in report:
                error = report["error"]
            elif "value" in report:
                value = result if report["value"] else None
            else:
                error = {
                    "name": "Error",
                    "message": "the script's promise never settled (there are no timers "
                    "or I/O to wait for here)",
                }
        except quickjs.StackOverflow:
            error = {"name": "RangeError", "message": "Maximum call stack size exceeded"}
        except quickjs.JSException as exc:
            error = _exception(str(exc))
        if error is not None and "out of memory" in str(error.get("message", "")):
            limit, error = "memory", None
        elif error is not None and error.get("message") == "interrupted":
            limit, error = "time", None
        return value, error, limit, lines

    def _cap_cpu(self, time_limit: float) -> None:
        # Whole seconds: the cap changes (a system call) about once a second of CPU.
        soft = int(time.process_time() + time_limit) + 2
        if self._cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, self._cpu_hard)
        if soft != self._cpu_soft:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, self._cpu_hard))
            self._cpu_soft = soft


# The binding's Context object: PyObject_HEAD, then its JSRuntime* and JSContext*
# (quickjs-ng 0.17's module.c, RuntimeData); checked by the installed release, the
# object's size and JS_GetRuntime.
_KNOWN_BINDING = "quickjs_ng-0.17."
_CONTEXT_SIZE = 80
_RUNTIME_AT, _CONTEXT_AT = 16, 24
_COMPILE_ONLY = 1 << 5  # JS_EVAL_FLAG_COMPILE_ONLY
_BYTECODE = 1 << 0  # JS_WRITE_OBJ_BYTECODE, JS_READ_OBJ_BYTECODE
_TAG_EXCEPTION = 6


def _runner_loader(quickjs: Any, text: str) -> Any:
    """A function that runs the runner in a binding context from bytecode compiled once
    here, and returns its control (None if it could not: the caller evaluates the
    text). Compiling the runner's text was half of a short run's CPU time (0.2 ms
    here), and QuickJS's binding evaluates text only: this goes through the C API that
    its library exports (JS_Eval to compile, JS_WriteObject once, then JS_ReadObject
    and JS_EvalFunction per context). Only our own text is ever read back as bytecode.
    None where the binding is not the one whose layout this knows."""
    import ctypes

    lib = _c_api(quickjs)
    if lib is None:
        return None

    def context_of(context: Any) -> int | None:
        runtime = ctypes.c_void_p.from_address(id(context) + _RUNTIME_AT).value
        handle = ctypes.c_void_p.from_address(id(context) + _CONTEXT_AT).value
        if not runtime or not handle or lib.JS_GetRuntime(handle) != runtime:
            return None
        return int(handle)

    probe = quickjs.Context()
    handle = context_of(probe)
    if handle is None:
        return None
    # A global the control takes away on its first call (before any script runs).
    source = ("globalThis.__hl_control = " + text).encode()
    compiled = lib.JS_Eval(handle, source, len(source), b"<input>", _COMPILE_ONLY)
    if compiled.tag == _TAG_EXCEPTION:
        return None
    written = ctypes.c_size_t()
    buffer = lib.JS_WriteObject(handle, ctypes.byref(written), compiled, _BYTECODE)
    lib.JS_FreeValue(handle, compiled)
    if not buffer:
        return None
    code = ctypes.string_at(buffer, written.value)
    lib.js_free(handle, buffer)
    del probe

    def load(context: Any) -> Any:
        handle = context_of(context)
        if handle is None:
            return None
        function = lib.JS_ReadObject(handle, code, len(code), _BYTECODE)
        if function.tag == _TAG_EXCEPTION:
            return None
        done = lib.JS_EvalFunction(handle, function)  # takes the function
        if done.tag == _TAG_EXCEPTION:
            return None
        lib.JS_FreeValue(handle, done)
        return context.get("__hl_control")

    return load


def _c_api(quickjs: Any) -> Any:
    """QuickJS's C functions that :func:`_runner_loader` calls, typed; None unless the
    binding is the release, and has the layout, this module knows."""
    import ctypes

    class Value(ctypes.Structure):  # JSValue, without NaN boxing (64-bit builds)
        _fields_ = [("u", ctypes.c_uint64), ("tag", ctypes.c_int64)]

    if quickjs.Context.__basicsize__ != _CONTEXT_SIZE or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:  # the release beside the module (its dist-info), not importlib: no site here
        beside = os.listdir(os.path.dirname(os.path.abspath(quickjs.__file__)))
    except OSError:
        return None
    if not any(name.startswith(_KNOWN_BINDING) for name in beside):
        return None
    try:
        lib = ctypes.CDLL(quickjs.__file__)
        pointer, size = ctypes.c_void_p, ctypes.c_size_t
        lib.JS_GetRuntime.argtypes, lib.JS_GetRuntime.restype = [pointer], pointer
        lib.JS_Eval.argtypes = [pointer, ctypes.c_char_p, size, ctypes.c_char_p, ctypes.c_int]
        lib.JS_Eval.restype = Value
        lib.JS_WriteObject.argtypes = [pointer, ctypes.POINTER(size), Value, ctypes.c_int]
        lib.JS_WriteObject.restype = pointer
        lib.JS_ReadObject.argtypes = [pointer, ctypes.c_char_p, size, ctypes.c_int]
        lib.JS_ReadObject.restype = Value
        lib.JS_EvalFunction.argtypes, lib.JS_EvalFunction.restype = [pointer, Value], Value
        lib.JS_FreeValue.argtypes, lib.JS_FreeValue.restype = [pointer, Value], None
        lib.js_free.argtypes, lib.js_free.restype = [pointer, pointer], None
    except (OSError, AttributeError):
        return None
    return lib


def _exception(text: str) -> dict[str, Any]:
    """A JSException's text (``Name: message`` and the stack) as an error record."""
    head, _, stack = text.partition("\n")
    name, sep, message = head.partition(": ")
    if not sep:
        name, message = "Error", head
    return {"name": name, "message": message, "stack": stack}


def _lines(report: dict[str, Any]) -> list[str]:
    lines = [str(line)[:MAX_LINE] for line in report["lines"][:MAX_LINES]]
    if report["dropped"]:
        lines.append(f"... {int(report['dropped'])} more lines not kept")
    return lines


def _read_exactly(stream: Any, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(stream: Any, payload: bytes) -> None:
    stream.write(FRAME.pack(len(payload)) + payload)
    stream.flush()


def main(argv: list[str]) -> None:
    memory_cap = int(argv[1])
    sys.path.extend(argv[2:])  # where _quickjs is, without site
    # QuickJS is imported before the cap: the import maps its library.
    worker = Worker()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_cap > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    worker.prepare()
    _send(stdout, b'{"ready": true}')
    while True:
        head = _read_exactly(stdin, FRAME.size)
        if head is None:
            return  # the pool closed the pipe: shut down
        body = _read_exactly(stdin, FRAME.unpack(head)[0])
        if body is None:
            return
        head, _, inputs = body.partition(b"\n")
        request = json.loads(head)
        request["inputs"] = inputs.decode("utf-8", "surrogatepass")
        _send(stdout, worker.handle(request))
        worker.prepare()


if __name__ == "__main__":
    main(sys.argv)
