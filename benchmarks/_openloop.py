"""Open-loop load at a fixed offered rate, with latency from each request's scheduled
send time (coordinated omission corrected).

A scheduler issues request ``i`` at ``start + i / rate`` whatever the server does;
a pool of keep-alive connections takes the issued requests in order. When the server
falls behind, issued requests wait for a free connection and that wait counts in
their latency, exactly as it would for real senders: a stall cannot hide in the tail
the way it does when a closed-loop generator simply stops sending (wrk2's model,
which Debian does not package; wrk's Lua hooks cannot delay a request).

``send_lag`` (scheduled time to the request being written) shows whether the
generator itself kept up; ``benchmarks generator-check`` runs this against a trivial
server at three times the rates under test to show that it does.
"""

from __future__ import annotations

import math
from collections import Counter

import attrs
import trio

from ._http1 import FAILURES, Connection, RequestMaker, split_url
from ._results import LoadResult, percentiles
from ._spec import RequestSpec

__all__ = ["DRAIN_SECONDS", "run_open"]

#: How long requests issued before the end may take to answer before they count as
#: unfinished.
DRAIN_SECONDS = 3.0


@attrs.define
class _Tally:
    latencies: list[float] = attrs.field(factory=list)
    lags: list[float] = attrs.field(factory=list)
    statuses: Counter[int] = attrs.field(factory=Counter)
    errors: int = 0
    window_end: float = math.inf
    in_window: int = 0
    sent: int = 0


async def _schedule(
    send: trio.MemorySendChannel[float], start: float, rate: float, total: int
) -> None:
    interval = 1.0 / rate
    issued = 0
    async with send:
        while issued < total:
            due = start + issued * interval
            if due > trio.current_time():
                await trio.sleep_until(due)
            now = trio.current_time()
            # Issue every request whose time has come: a late wake-up must not lower the
            # offered rate (the lateness shows in send_lag and in latency).
            while issued < total and start + issued * interval <= now:
                send.send_nowait(start + issued * interval)
                issued += 1


async def _work(
    host: str,
    port: int,
    maker: RequestMaker,
    stream: int,
    receive: trio.MemoryReceiveChannel[float],
    tally: _Tally,
) -> None:
    connection: Connection | None = None
    n = 0
    async with receive:
        async for due in receive:
            n += 1
            request = maker.make(stream, n)
            tried = False
            while True:
                if connection is None:
                    try:
                        connection = await Connection.open(host, port)
                    except OSError:
                        tally.errors += 1
                        break
                tally.lags.append(trio.current_time() - due)
                tally.sent += not tried
                tried = True
                try:
                    status, keep = await connection.exchange(request)
                except FAILURES:
                    clean = connection.clean_close
                    await connection.aclose()
                    connection = None
                    if clean:
                        continue  # an idle keep-alive closed by the server: resend
                    tally.errors += 1
                    break
                answered = trio.current_time()
                tally.latencies.append(answered - due)
                tally.in_window += answered <= tally.window_end
                tally.statuses[status] += 1
                if not keep:
                    await connection.aclose()
                    connection = None
                break
    if connection is not None:
        await connection.aclose()


def run_open(
    base_url: str,
    spec: RequestSpec,
    rate: float,
    duration: float,
    connections: int,
    run_id: str,
    drain: float = DRAIN_SECONDS,
) -> LoadResult:
    """Offer ``rate`` requests/s for ``duration`` s over up to ``connections``
    connections; wait up to ``drain`` s more for the last answers."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    host, port = split_url(base_url)
    maker = RequestMaker(spec, host, port, run_id)
    total = max(1, int(rate * duration))
    tally = _Tally()

    async def main() -> None:
        send, receive = trio.open_memory_channel[float](math.inf)
        start = trio.current_time() + 0.05
        tally.window_end = start + duration
        with trio.move_on_at(start + duration + drain):
            async with trio.open_nursery() as nursery:
                async with receive:
                    for stream in range(connections):
                        nursery.start_soon(_work, host, port, maker, stream, receive.clone(), tally)
                nursery.start_soon(_schedule, send, start, rate, total)

    trio.run(main)
    completed = len(tally.latencies)
    return LoadResult(
        mode="open",
        generator="builtin open-loop (trio)",
        duration_s=duration,
        connections=connections,
        completed=completed,
        latency=percentiles(tally.latencies),
        non_2xx=sum(count for status, count in tally.statuses.items() if not 200 <= status < 300),
        errors=tally.errors,
        offered_rps=rate,
        achieved_rps=tally.in_window / duration,
        scheduled=total,
        sent=tally.sent,
        unfinished=total - completed - tally.errors,
        send_lag=percentiles(tally.lags),
        statuses=tuple(sorted(tally.statuses.items())),
    )
