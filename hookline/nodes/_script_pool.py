"""The pool of worker processes that run the code node's scripts, with hard limits.

Each worker is a separate Python process (:mod:`hookline.nodes._script_worker`) talking
length-prefixed JSON over its stdin/stdout pipes, driven from trio through
:func:`trio.lowlevel.open_process`, so the event loop never waits on a script and the
server's memory never holds what a script allocates (only its result, at most
``max_result``).

Limits, and what enforces them:

- time: the pool waits ``time_limit`` (+ 0.25 s of grace) for the answer, then kills
  the worker (SIGKILL) and starts another; the kernel's ``RLIMIT_CPU``, set by the
  worker before each run, kills it too should the pool be late (SIGXCPU);
- memory: QuickJS counts every allocation of the script (typed arrays included)
  against its ``memory`` limit and throws; the worker's ``RLIMIT_AS``
  (``worker_memory``) caps the whole process, so even an allocation QuickJS does not
  count fails instead of growing it. cgroup v2 ``memory.max`` is not used: it needs a
  writable cgroup, which containers rarely give; RLIMIT_AS works because QuickJS,
  unlike V8, reserves little address space (V8 fails to start under a cap that tight).

A script burning CPU past 50 ms moves its worker to SCHED_IDLE (and ``niceness``), so
scripts that spin do not slow the server's answers; short scripts run at full speed.

Workers start lazily or, with ``prestart``, when the pool starts (the server does);
they are kept warm between runs and stopped when the pool stops. A worker that fails
to start or dies outside a script counts as a crash: past ``intensity`` crashes within
``period`` seconds the pool gives up and every script fails with the reason (like a
supervisor past its restart intensity). A worker killed for a script's limit is not a
crash; it is replaced in the background.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import math
import os
import signal
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import trio

from ..definition import format_duration, format_size
from ._js import Script, describe_error, inputs_json

__all__ = [
    "ScriptOutcome",
    "ScriptPool",
    "ScriptPoolConfig",
    "ScriptPoolStatistics",
    "default_pool",
]

log = logging.getLogger("hookline.scripts")

_WORKER = str(Path(__file__).with_name("_script_worker.py"))
_FRAME = struct.Struct(">I")
_GRACE = 0.25  # past the time limit, for the context's set-up and the pipe
_DEMOTE_AFTER = 0.05  # a script running longer gets the worker's niceness
_START_TIMEOUT = 20.0
_LINES_ROOM = 20 * 1024 * 1024  # of a reply frame, beyond the result: the log lines
_MIB = 1024 * 1024


@attrs.frozen
class ScriptPoolConfig:
    """The ``code:`` section of the server config.

    ``workers`` processes run scripts at once (more wait their turn); each is capped at
    ``worker_memory`` of address space. ``timeout`` and ``memory`` are the limits of a
    script whose node sets none; ``max_result`` caps the JSON a script may return.
    ``intensity``/``period``: how many worker crashes the pool absorbs (see module doc).
    ``prestart``: start the workers with the pool rather than on the first script.
    ``niceness``: the CPU priority a worker drops to once one of its scripts runs past
    50 ms, so that runaway scripts yield the cores to the server's own work.
    """

    workers: int = 2
    worker_memory: int = 512 * _MIB
    timeout: float = 5.0
    memory: int = 64 * _MIB
    max_result: int = 4 * _MIB
    intensity: int = 5
    period: float = 10.0
    prestart: bool = False
    niceness: int = 10


@attrs.frozen
class ScriptOutcome:
    """What a run gave: the return ``value`` (decoded JSON; None for ``undefined``), the
    ``console.log`` ``lines``, ``error`` (None if it succeeded: what the script threw,
    or which limit stopped it) and ``limit`` (``"time"``, ``"memory"`` or None)."""

    value: Any = None
    lines: tuple[str, ...] = ()
    error: str | None = None
    limit: Literal["time", "memory"] | None = None


@attrs.frozen
class ScriptPoolStatistics:
    """A snapshot of the pool: ``workers`` running (``idle`` of them waiting for a
    script), ``waiting`` scripts queued for one, ``runs`` finished, ``time_stops`` and
    ``memory_stops`` scripts stopped at their time or memory limit, ``kills`` workers
    killed or dead during a run (and replaced), ``crashes`` workers that failed outside
    a script, ``restarts`` workers started after the first ``size``; ``broken`` the
    reason the pool gave up."""

    size: int
    workers: int
    idle: int
    waiting: int
    runs: int
    time_stops: int
    memory_stops: int
    kills: int
    crashes: int
    restarts: int
    intensity: int
    period: float
    broken: str | None


class _WorkerDied(Exception):
    """The worker's pipe closed: it exited or was killed."""


class _Worker:
    """One worker process and what it was sent."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        # Pipes: read and written by their descriptors (see send and _fill).
        stdin, stdout = process.stdin, process.stdout
        assert isinstance(stdin, trio.lowlevel.FdStream)
        assert isinstance(stdout, trio.lowlevel.FdStream)
        self._stdin, self._stdout = stdin, stdout
        self.known: set[str] = set()
        self.demoted = False
        # The run in progress, as the watchdog sees it (trio times; CPU seconds).
        self.deadline = math.inf
        self.watch_from = math.inf
        self.cpu_from: float | None = None
        self.timed_out = False
        self._buffer = bytearray()

    async def send(self, head: bytes, inputs: bytes = b"") -> None:
        """A request frame: ``head`` (the request's JSON), a newline, then ``inputs``
        (JSON text passed as it is, not escaped into a string)."""
        payload = head + b"\n" + inputs
        frame = _FRAME.pack(len(payload)) + payload
        stdin = self._stdin
        # Written at once where the pipe has room (it nearly always has): the stream's
        # send_all would first yield to the scheduler, a quarter of a short run's cost
        # here. receive() is this run's checkpoint.
        try:
            sent = os.write(stdin.fileno(), frame)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # the worker is gone (EPIPE), or its pipe closed (EBADF)
            raise _WorkerDied() from exc
        if sent < len(frame):
            try:
                await stdin.send_all(frame[sent:])
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _WorkerDied() from exc

    async def receive(self, limit: int) -> dict[str, Any]:
        """The next frame. Cancelled, it consumes nothing: a later call reads it."""
        await self._fill(_FRAME.size)
        size = _FRAME.unpack_from(self._buffer)[0]
        if size > limit:
            raise _WorkerDied(f"an answer of {size} bytes")
        end = _FRAME.size + size
        await self._fill(end)
        found = json.loads(self._buffer[_FRAME.size : end].decode("utf-8", "surrogatepass"))
        del self._buffer[:end]
        assert isinstance(found, dict)
        return found

    async def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            fd = self._stdout.fileno()
            if fd < 0:
                raise _WorkerDied()
            # Waited for, then read: the stream's receive_some would first yield and
            # try a read that finds nothing (the worker has not answered yet).
            try:
                await trio.lowlevel.wait_readable(fd)
                chunk = os.read(fd, max(65536, size - len(self._buffer)))
            except BlockingIOError:
                continue
            except (OSError, trio.ClosedResourceError) as exc:
                raise _WorkerDied() from exc
            if not chunk:
                raise _WorkerDied()
            self._buffer += chunk

    def demote(self, niceness: int) -> None:
        """Lower the worker's CPU priority for good (raising it back needs privileges):
        Linux's SCHED_IDLE where there is one (it runs only on otherwise idle cores),
        and ``niceness``."""
        if not self.demoted and self.process.returncode is None:
            self.demoted = True
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.process.pid, niceness)
            if hasattr(os, "SCHED_IDLE"):
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(self.process.pid, os.SCHED_IDLE, os.sched_param(0))

    async def stop(self) -> int | None:
        """Kill the process and reap it; its exit status (negative: a signal)."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                self.process.kill()
            with trio.move_on_after(5):
                await self.process.wait()
        return self.process.returncode


class ScriptPool:
    """Worker processes that run scripts; :meth:`run` is its task (start it with
    ``nursery.start``), :meth:`execute` runs one script."""

    def __init__(self, config: ScriptPoolConfig | None = None) -> None:
        self.config = config if config is not None else ScriptPoolConfig()
        self._slots = trio.Semaphore(self.config.workers)
        self._idle: list[_Worker] = []
        self._busy = 0
        self._waiting = 0
        self._started = 0
        self._watched: set[_Worker] = set()  # workers running a script
        self._watching = trio.Event()  # set when the first of them starts
        self._starting = 0  # replacements being started in the background
        self._arrived = trio.Event()  # set when one is ready (or failed)
        self._nursery: trio.Nursery | None = None
        self._running = trio.Event()
        self._closed = False
        self._crashes: deque[float] = deque()
        self._broken: str | None = None
        self._runs = self._time_stops = self._memory_stops = self._crash_count = 0
        self._kills = 0

    # -- lifecycle -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the pool until cancelled; then stop every worker."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.config.prestart:
                    async with trio.open_nursery() as starting:
                        for _ in range(self.config.workers):
                            self._starting += 1
                            starting.start_soon(self._replace)
                nursery.start_soon(self._watch)
                self._running.set()
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._closed = True
            self._nursery = None
            idle, self._idle = self._idle, []
            for worker in idle:
                await worker.stop()

    def statistics(self) -> ScriptPoolStatistics:
        return ScriptPoolStatistics(
            size=self.config.workers,
            workers=len(self._idle) + self._busy,
            idle=len(self._idle),
            waiting=self._waiting,
            runs=self._runs,
            time_stops=self._time_stops,
            memory_stops=self._memory_stops,
            kills=self._kills,
            crashes=self._crash_count,
            restarts=max(0, self._started - self.config.workers),
            intensity=self.config.intensity,
            period=self.config.period,
            broken=self._broken,
        )

    # -- running a script --------------------------------------------------------------

    async def execute(
        self,
        script: Script,
        inputs: dict[str, Any],
        *,
        time_limit: float | None = None,
        memory: int | None = None,
    ) -> ScriptOutcome:
        """Run ``script`` with ``inputs`` as its globals. What the script does (a throw,
        a limit) is in the outcome; a pool that cannot run it raises
        :class:`~hookline.errors.NodeError`. Cancelling it kills the worker at once."""
        from ..errors import NodeError

        time_limit = self.config.timeout if time_limit is None else time_limit
        memory = self.config.memory if memory is None else memory
        encoded = inputs_json(inputs).encode("utf-8", "surrogatepass")
        request = _request(script.sid, memory, time_limit, self.config.max_result)
        if not self._running.is_set():
            await self._running.wait()
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        try:
            if self._broken is not None or self._closed:
                raise NodeError(f"the script workers are not running: {self._broken or 'stopped'}")
            while not self._idle and self._starting:
                await self._arrived.wait()  # a replacement is on its way: take it
            # Last in, first out: the worker that answered last is the likeliest to be
            # awake still (waking one that sleeps costs both processes CPU time).
            worker = self._idle.pop() if self._idle else await self._start_worker()
            self._busy += 1
            healthy = False
            try:
                outcome, healthy = await self._call(worker, script, request, encoded, time_limit)
            finally:
                self._busy -= 1
                if healthy and not self._closed:
                    self._idle.append(worker)
                else:
                    self._kills += 1
                    await worker.stop()
                    if not self._closed and self._nursery is not None:
                        self._starting += 1  # now: the next caller waits for it
                        try:
                            self._nursery.start_soon(self._replace)
                        except RuntimeError:  # the pool is closing (its nursery is)
                            self._starting -= 1
        finally:
            self._slots.release()
        self._runs += 1
        if outcome.limit == "memory":
            self._memory_stops += 1
        elif outcome.limit == "time":
            self._time_stops += 1
        return _limit_message(outcome, time_limit, memory, self.config.worker_memory)

    async def _call(
        self,
        worker: _Worker,
        script: Script,
        request: bytes,
        inputs: bytes,
        time_limit: float,
    ) -> tuple[ScriptOutcome, bool]:
        limit = self.config.max_result + _LINES_ROOM
        # No cancel scope per run (they cost a quarter of the pool's CPU): the watchdog
        # kills a worker past its deadline, and the pipe's end tells this task.
        now = trio.current_time()
        worker.deadline = now + time_limit + _GRACE
        worker.watch_from = now + _DEMOTE_AFTER
        worker.cpu_from = None
        worker.timed_out = False
        self._watched.add(worker)
        self._watching.set()
        try:
            for _ in range(2):
                head = request + b"%d" % self._runs
                if script.sid not in worker.known:  # the body goes to each worker once
                    body = json.dumps(script.body, ensure_ascii=False)
                    head += b', "source": ' + body.encode("utf-8", "surrogatepass")
                await worker.send(head + b"}", inputs)
                reply = await worker.receive(limit)
                worker.known.add(script.sid)
                if not reply.get("unknown"):
                    return _outcome(reply), True
                worker.known.discard(script.sid)  # evicted from its cache: send again
            return ScriptOutcome(error="the script's worker lost it twice"), False
        except _WorkerDied as exc:
            status = await worker.stop()
            if worker.timed_out or status == -signal.SIGXCPU:
                return ScriptOutcome(limit="time"), False
            detail = f" ({exc.args[0]})" if exc.args else ""
            return (
                ScriptOutcome(
                    error=f"the script's worker process stopped while running it "
                    f"({_exit(status)}{detail}): past its memory cap of "
                    f"{format_size(self.config.worker_memory)}, most likely",
                    limit="memory",
                ),
                False,
            )
        finally:
            self._watched.discard(worker)

    async def _watch(self) -> None:
        """Every 50 ms while scripts run: kill the workers past their deadline, and
        demote those whose script has burnt 50 ms of CPU since its first 50 ms (the
        wall clock alone would demote short scripts on a busy machine; short runs never
        read /proc)."""
        while True:
            if not self._watched:
                self._watching = trio.Event()
                await self._watching.wait()
            await trio.sleep(_DEMOTE_AFTER)
            now = trio.current_time()
            for worker in list(self._watched):
                if now >= worker.deadline:
                    worker.timed_out = True
                    if worker.process.returncode is None:
                        worker.process.kill()
                elif not worker.demoted and now >= worker.watch_from:
                    used = _cpu_seconds(worker.process.pid)
                    if used is None:
                        worker.demote(self.config.niceness)
                    elif worker.cpu_from is None:
                        worker.cpu_from = used
                    elif used - worker.cpu_from >= _DEMOTE_AFTER:
                        worker.demote(self.config.niceness)

    # -- workers -------------------------------------------------------------------------

    async def _start_worker(self) -> _Worker:
        from ..errors import NodeError

        try:
            return await self._spawn()
        except (OSError, _WorkerDied, trio.TooSlowError) as exc:
            reason = f"a script worker failed to start: {exc or type(exc).__name__}"
            self._crashed(reason)
            raise NodeError(reason) from None

    async def _replace(self) -> None:
        """Start a worker in the background and keep it idle (after one was killed).
        The caller counted it in ``_starting``."""
        try:
            if self._closed or self._broken is not None:
                return
            worker = await self._spawn()
        except (OSError, _WorkerDied, trio.TooSlowError) as exc:
            self._crashed(f"a script worker failed to start: {exc or type(exc).__name__}")
            return
        finally:
            self._starting -= 1
            self._arrived.set()
            self._arrived = trio.Event()
        if self._closed or len(self._idle) + self._busy >= self.config.workers:
            await worker.stop()
        else:
            self._idle.append(worker)

    async def _spawn(self) -> _Worker:
        command = [sys.executable, *_worker_arguments(), str(self.config.worker_memory)]
        command += _quickjs_folder()
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        worker = _Worker(process)
        self._started += 1
        try:
            with trio.fail_after(_START_TIMEOUT):
                ready = await worker.receive(1024)
        except BaseException:
            await worker.stop()
            raise
        if not ready.get("ready"):
            await worker.stop()
            raise _WorkerDied("it did not say it was ready")
        return worker

    def _crashed(self, reason: str) -> None:
        now = trio.current_time()
        self._crash_count += 1
        self._crashes.append(now)
        while self._crashes and self._crashes[0] < now - self.config.period:
            self._crashes.popleft()
        log.warning("%s", reason)
        if len(self._crashes) > self.config.intensity and self._broken is None:
            self._broken = (
                f"{len(self._crashes)} worker failures within "
                f"{format_duration(self.config.period)}; the last: {reason}"
            )
            log.error("the script pool gave up: %s", self._broken)


@functools.lru_cache(maxsize=1024)
def _request(sid: str, memory: int, time_limit: float, max_result: int) -> bytes:
    """A request's JSON up to its id (which each run appends, then the closing brace):
    made once per script and limits rather than encoded for every run."""
    fields = {"sid": sid, "memory": memory, "time": time_limit, "max_result": max_result}
    return json.dumps(fields)[:-1].encode() + b', "id": '


@functools.cache
def _quickjs_folder() -> list[str]:
    """The folder QuickJS's C module is imported from, for a worker started without
    ``site`` (empty: none found, the worker starts with ``site``)."""
    spec = importlib.util.find_spec("_quickjs")
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return []
    return [os.path.dirname(spec.origin)]


def _worker_arguments() -> list[str]:
    """The interpreter's options and the worker's file: isolated (``-I``), and without
    ``site`` (``-S``, a third of its start-up) when the pool can name where QuickJS is."""
    return ["-I", "-S", _WORKER] if _quickjs_folder() else ["-I", _WORKER]


def _outcome(reply: Mapping[str, Any]) -> ScriptOutcome:
    lines = tuple(str(line) for line in reply.get("lines") or ())
    if reply.get("limit") in ("memory", "time"):
        return ScriptOutcome(lines=lines, limit=reply["limit"])
    error = reply.get("error")
    if error is not None:
        return ScriptOutcome(lines=lines, error=describe_error(error))
    return ScriptOutcome(value=reply.get("value"), lines=lines)


def _limit_message(
    outcome: ScriptOutcome, time_limit: float, memory: int, worker_memory: int
) -> ScriptOutcome:
    if outcome.error is not None or outcome.limit is None:
        return outcome
    if outcome.limit == "time":
        text = f"the script ran past its time limit of {format_duration(time_limit)}"
    elif memory >= worker_memory // 2:  # the worker's own cap may have stopped it first
        text = (
            f"the script went past its memory limit of {format_size(memory)} or its "
            f"worker's cap of {format_size(worker_memory)} (code.worker_memory)"
        )
    else:
        text = f"the script went past its memory limit of {format_size(memory)}"
    return attrs.evolve(outcome, error=text)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux's /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _exit(status: int | None) -> str:
    if status is None:
        return "still running"
    if status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            return f"signal {-status}"
    return f"exit status {status}"


_DEFAULT: trio.lowlevel.RunVar[ScriptPool] = trio.lowlevel.RunVar("hookline_scripts")


def default_pool() -> ScriptPool:
    """The pool of code nodes run with no engine's pool (``NodeServices.scripts`` None):
    one per trio run, started on first use and stopped when the run ends."""
    try:
        return _DEFAULT.get()
    except LookupError:
        pool = ScriptPool()
        trio.lowlevel.spawn_system_task(pool.run, name="hookline script pool")
        _DEFAULT.set(pool)
        return pool
