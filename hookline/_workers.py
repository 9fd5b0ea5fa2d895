"""``hookline serve --workers N``: N server processes on one port, and their parent.

The parent binds the listening socket itself (:func:`open_listener`) and starts N
children, each ``hookline serve ... --fd FD`` serving on an inherited copy of that
socket (hypercorn's ``fd://`` bind): the kernel hands each new connection to whichever
child accepts it first. The parent runs no engine. :class:`WorkerPool` forwards
SIGTERM and SIGINT to the children and waits for them to drain, starts another child
when one dies unexpectedly (with a backoff, until :class:`RestartBudget` says they keep
dying), and prints one ``hookline serving ... with N workers`` line once every child
said it was serving. The children share one store, so only PostgreSQL will do:
:func:`refusal` says why anything else is refused.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

import attrs
import trio

from ._config import parse_bind

__all__ = [
    "RestartBudget",
    "WorkerPool",
    "WorkerPoolStatistics",
    "open_listener",
    "refusal",
    "serve_workers",
]

log = logging.getLogger("hookline.workers")

# What a child prints once it serves (cli.py): "hookline serving 3 workflows on URL".
_SERVING = re.compile(r"hookline serving (?P<what>.+ on .+)$")
# A child stopped before its signal handlers were installed dies of the signal itself
# (or exits 130 on SIGINT): it served nothing, so that is a clean stop too.
_INTERRUPTED = frozenset({0, 130, -signal.SIGTERM, -signal.SIGINT})
_BACKLOG = 100  # hypercorn's default; each child listens again with its own
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def refusal(store_url: str, workers: int, origin: str = "--workers") -> str | None:
    """Why ``workers`` processes cannot share the store at ``store_url``, or None when
    they can (PostgreSQL, or a single worker). ``origin`` names where the number came
    from (``--workers`` or ``server.workers:``)."""
    if workers <= 1 or store_url.startswith(("postgresql://", "postgres://")):
        return None
    return (
        f"hookline: {origin} {workers} needs the PostgreSQL store "
        "(store.url: postgresql://...); SQLite and memory:// serve one process"
    )


def open_listener(bind: str) -> socket.socket:
    """A TCP socket bound to ``bind`` (``HOST:PORT``, ``[IPv6]:PORT``; port 0: a free
    one) and listening, for the workers to inherit. Raises :class:`ValueError` for a
    malformed ``bind`` and :class:`OSError` when the address cannot be bound."""
    host, port = parse_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=_BACKLOG)
    # hypercorn sets this on sockets it binds itself, not on inherited ones; accepted
    # connections inherit it.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


class RestartBudget:
    """How soon a dead worker is replaced, and when to stop replacing them.

    :meth:`exited` is told each unexpected exit. It answers the delay before starting
    another (``first_delay``, doubling with each exit still within ``period``, at most
    ``max_delay``), or None once ``limit`` exits fall within ``period`` seconds: the
    workers keep dying and starting more will not help.
    """

    def __init__(
        self,
        limit: int = 5,
        period: float = 10.0,
        *,
        first_delay: float = 0.1,
        max_delay: float = 2.0,
    ) -> None:
        self.limit = limit
        self.period = period
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._exits: list[float] = []

    def exited(self, now: float) -> float | None:
        """Record an exit at ``now`` (seconds, any monotonic clock)."""
        self._exits = [*(at for at in self._exits if at > now - self.period), now]
        if len(self._exits) >= self.limit:
            return None
        return min(self.first_delay * 2.0 ** (len(self._exits) - 1), self.max_delay)


@attrs.frozen
class WorkerPoolStatistics:
    """A :class:`WorkerPool` now: ``workers`` asked for, the ``pids`` of the children
    alive, how many of them are ``ready`` (serving), and ``restarts`` so far."""

    workers: int
    pids: tuple[int, ...]
    ready: int
    restarts: int


class WorkerPool:
    """``workers`` children running ``command`` plus ``--fd FD`` on ``listener``.

    :meth:`run` starts them and supervises them until they have all exited; it returns
    the exit status for the parent: 0 when every child stopped cleanly after
    :meth:`signal`, the status of a child that exited before it was ready, or 1 when
    children kept dying. Each child's standard output passes through to ``out``
    (default :data:`sys.stdout`), except its ``hookline serving`` line, which the pool
    sums up in its own once all are ready; standard error is the parent's.
    """

    def __init__(
        self,
        command: Sequence[str],
        listener: socket.socket,
        workers: int,
        *,
        budget: RestartBudget | None = None,
        out: TextIO | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._fd = listener.fileno()
        self._command = [*command, "--fd", str(self._fd)]
        self._workers = workers
        self._budget = budget if budget is not None else RestartBudget()
        self._out = out
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # slot -> child
        self._ready: set[int] = set()  # pids
        self._restarts = 0
        self._stopping = trio.Event()
        self._announced = False
        self._status = 0
        self._task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED

    def statistics(self) -> WorkerPoolStatistics:
        """The children now."""
        pids = tuple(child.pid for child in self._children.values())
        ready = sum(pid in self._ready for pid in pids)
        return WorkerPoolStatistics(self._workers, pids, ready, self._restarts)

    def signal(self, signum: int) -> None:
        """Pass ``signum`` on to every child. The first call also stops the pool: no
        child is started again, and :meth:`run` returns once all have exited."""
        if not self._stopping.is_set():
            log.info("%s: stopping %d workers", signal.Signals(signum).name, self._workers)
            self._stopping.set()
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def reload(self) -> None:
        """Pass SIGHUP on to every child: each loads its workflows folder again."""
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGHUP)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> int:
        """Start the children and supervise them until all have exited (see the class).

        Reports ``"<n> workflows on <url>"`` through ``task_status`` once every child
        serves.
        """
        self._task_status = task_status
        async with trio.open_nursery() as nursery:
            for slot in range(self._workers):
                nursery.start_soon(self._keep_running, slot)
        return self._status

    async def _keep_running(self, slot: int) -> None:
        while not self._stopping.is_set():
            child, output = self._start()
            self._children[slot] = child
            try:
                code = await self._watch(child, output)
            finally:
                del self._children[slot]
                _kill(child)
            was_ready = child.pid in self._ready
            self._ready.discard(child.pid)
            status = _describe(code)
            if self._stopping.is_set():
                if code != 0 and not (code in _INTERRUPTED and not was_ready):
                    log.warning("worker %d exited with %s", child.pid, status)
                    self._status = self._status or 1
                return
            if not self._announced:
                self._give_up(f"worker {child.pid} exited with {status} before it was ready", code)
                return
            delay = self._budget.exited(trio.current_time())
            if delay is None:
                limit, period = self._budget.limit, self._budget.period
                last = f"worker {child.pid} exited with {status}"
                self._give_up(f"workers keep exiting ({limit} in {period:g} s; {last})", 1)
                return
            log.warning("worker %d exited with %s; starting another", child.pid, status)
            self._restarts += 1
            with trio.move_on_after(delay):
                await self._stopping.wait()

    def _start(self) -> tuple[subprocess.Popen[bytes], trio.lowlevel.FdStream]:
        read_end, write_end = os.pipe()
        try:
            # Started from this (the main) thread, never a worker thread: the parent
            # death signal fires when the thread that started the child ends.
            child = subprocess.Popen(  # noqa: S603 - our own command line
                self._command,
                stdout=write_end,
                pass_fds=(self._fd,),
                # Ctrl-C in a terminal reaches the parent alone, which passes it on once.
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - the parent has no threads
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return child, trio.lowlevel.FdStream(read_end)

    async def _watch(self, child: subprocess.Popen[bytes], output: trio.lowlevel.FdStream) -> int:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward, child.pid, output)
            code = await _wait_exit(child)
            # Whatever still holds the child's output open may not keep us waiting.
            nursery.cancel_scope.deadline = trio.current_time() + 1.0
        return code

    async def _forward(self, pid: int, output: trio.lowlevel.FdStream) -> None:
        async with output:
            async for line in _lines(output):
                self._line(pid, line)

    def _line(self, pid: int, line: str) -> None:
        serving = _SERVING.match(line)
        if serving is None or pid in self._ready:
            self._write(line)
            return
        self._ready.add(pid)
        if self._announced:
            log.info("worker %d ready", pid)
        elif len(self._ready) == self._workers:
            self._announced = True
            self._write(f"hookline serving {serving['what']} with {self._workers} workers")
            self._task_status.started(serving["what"])

    def _write(self, line: str) -> None:
        out = self._out if self._out is not None else sys.stdout
        out.write(line + "\n")
        out.flush()

    def _give_up(self, message: str, code: int) -> None:
        log.error("hookline: %s; stopping the workers", message)
        if not self._status:
            self._status = code if code > 0 else 1
        self.signal(signal.SIGTERM)


def serve_workers(command: Sequence[str], *, bind: str, workers: int) -> int:
    """Listen on ``bind`` and run a :class:`WorkerPool` of ``command`` until SIGTERM or
    SIGINT (both passed on to the children); returns the pool's exit status. Blocks."""
    logging.getLogger("hookline").setLevel(min(logging.INFO, logging.getLogger().level))
    try:
        listener = open_listener(bind)
    except OSError as exc:
        log.error("hookline: cannot listen on %s: %s", bind, exc.strerror or exc)
        return 1
    with listener:
        return trio.run(_run_until_signalled, WorkerPool(command, listener, workers))


async def _run_until_signalled(pool: WorkerPool) -> int:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pass_signals, pool, signals)
            status = await pool.run()
            nursery.cancel_scope.cancel()
    return status


async def _pass_signals(pool: WorkerPool, signals: AsyncIterator[int]) -> None:
    async for signum in signals:
        if signum == signal.SIGHUP:
            pool.reload()  # hot reload, not a stop
        else:
            pool.signal(signum)


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    pending = b""
    while chunk := await stream.receive_some():
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.decode(errors="replace")
    if pending:
        yield pending.decode(errors="replace")


async def _wait_exit(child: subprocess.Popen[bytes]) -> int:
    try:
        pidfd: int | None = os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3
        pidfd = None
    if pidfd is None:
        return await trio.to_thread.run_sync(child.wait, abandon_on_cancel=True)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return child.wait()  # it has exited: this only reaps it


def _kill(child: subprocess.Popen[bytes]) -> None:
    # Only when the parent itself fails or is cancelled: no child outlives the pool.
    if child.poll() is None:
        child.kill()
        child.wait()


def _die_with_parent() -> None:
    # In the child, between fork and exec: SIGTERM it when the parent dies, so a parent
    # killed with SIGKILL leaves no worker holding the port on its own.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _describe(code: int) -> str:
    if code < 0:
        return signal.Signals(-code).name
    return f"status {code}"
