"""The observed drain rate of a queue, to tell a refused sender when to come back."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class DrainRate:
    """Executions finished per second, smoothed, to tell a refused sender when to retry.

    ``clock`` gives the time in seconds; the workflow supervisor passes
    :func:`trio.current_time`, so a ``MockClock`` drives it in tests.
    """

    def __init__(
        self, half_life: float = 5.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._half_life = half_life
        self._clock = clock
        self._rate = 0.0
        self._last: float | None = None

    def tick(self) -> None:
        """One execution finished now."""
        now = self._clock()
        if self._last is None:
            # No interval yet: the first finish only starts the measurement.
            self._last = now
            return
        elapsed = max(now - self._last, 1e-6)
        weight = 0.5 ** (elapsed / self._half_life)
        self._rate = self._rate * weight + (1 - weight) / elapsed
        self._last = now

    @property
    def rate(self) -> float:
        """The smoothed rate, in executions per second (0 before two finishes)."""
        return self._rate

    def retry_after(self, backlog: int) -> float:
        """Seconds until ``backlog`` executions have drained, between 1 and 60; 5 while
        nothing has finished yet."""
        return drain_seconds(backlog, self._rate)


def drain_seconds(backlog: int, rate: float) -> float:
    """Seconds until ``backlog`` executions have drained at ``rate`` per second, between
    1 and 60; 5 while nothing has finished yet (``rate`` 0)."""
    if rate <= 0:
        return 5.0
    return float(min(60, max(1, math.ceil(backlog / rate))))
