"""Rate decisions for ``throttle`` and ``rate_limit``: the generic cell rate algorithm.

Pure bookkeeping, no I/O, no clock: every call takes ``now`` (seconds on any monotonic
scale). A :class:`Rate` of ``limit`` per ``period`` with ``burst`` lets at most
``limit + burst`` events through in any window one ``period`` long, wherever the window
starts (sliding, not clock-aligned), and spaces a steady stream ``period / limit`` apart.

GCRA keeps one number per key, the *theoretical arrival time* (TAT): when the next event
would be due if events came at exactly the steady rate. An event at ``now`` conforms
when ``TAT - now <= burst * interval``; it then moves the TAT one interval on. That is a
token bucket of ``burst + 1`` tokens refilled one per interval, stored as a single float.

- :meth:`Gcra.take` (``rate_limit``) lets an event through or refuses it with how long
  until it would conform; a refused event moves nothing.
- :meth:`Gcra.schedule` (``throttle``) never refuses: it books the earliest start that
  conforms, so the events that wait keep their arrival order.
"""

from __future__ import annotations

import attrs

__all__ = ["Gcra", "Rate"]


@attrs.frozen
class Rate:
    """``limit`` events per ``period`` seconds, ``burst`` more at once."""

    limit: int
    period: float
    burst: int = 0

    @property
    def interval(self) -> float:
        """Seconds between two events of a steady stream."""
        return self.period / self.limit

    @property
    def tolerance(self) -> float:
        """How far ahead of the steady rate an event may come."""
        return self.burst * self.interval


class Gcra:
    """The TATs of one :class:`Rate`, by key.

    Keys whose TAT has passed hold no state worth keeping (a fresh key behaves the
    same): :meth:`forget_idle` drops them, and so does every call once the table has
    doubled since the last sweep (at least ``keep`` keys), so that a stream of distinct
    keys, such as client addresses, costs memory for the keys seen within about one
    period and amortised O(1) time per call.
    """

    def __init__(self, rate: Rate, *, keep: int = 10_000) -> None:
        self.rate = rate
        self._tats: dict[str, float] = {}
        self._keep = keep
        self._sweep_at = keep

    def take(self, key: str, now: float) -> float:
        """Let one event of ``key`` through at ``now`` and return 0.0, or refuse it and
        return how many seconds until one would be let through (state unchanged)."""
        self._sweep(now)
        tat = max(self._tats.get(key, now), now)
        wait = tat - self.rate.tolerance - now
        if wait > 0:
            return wait
        self._tats[key] = tat + self.rate.interval
        return 0.0

    def schedule(self, key: str, now: float) -> float:
        """Book the earliest start of one event of ``key`` at or after ``now``, after
        those booked before it, and return it."""
        self._sweep(now)
        tat = max(self._tats.get(key, now), now)
        start = max(now, tat - self.rate.tolerance)
        self._tats[key] = tat + self.rate.interval
        return start

    def forget_idle(self, now: float) -> int:
        """Drop the keys whose TAT has passed (they behave as new ones); how many."""
        idle = [key for key, tat in self._tats.items() if tat <= now]
        for key in idle:
            del self._tats[key]
        return len(idle)

    def _sweep(self, now: float) -> None:
        if len(self._tats) >= self._sweep_at:
            self.forget_idle(now)
            self._sweep_at = max(self._keep, 2 * len(self._tats))

    def __len__(self) -> int:
        return len(self._tats)
