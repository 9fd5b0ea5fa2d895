"""A wall clock that follows trio's clock, for engines under a ``MockClock``."""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["TEST_EPOCH", "trio_wall_clock"]

TEST_EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where :func:`trio_wall_clock` starts by default."""


def trio_wall_clock(start: float = TEST_EPOCH) -> Callable[[], float]:
    """A wall clock (unix seconds) reading ``start + trio.current_time()``.

    Give it to ``open_engine(..., clock=...)`` in tests on trio's ``MockClock`` (which
    starts at 0): ``$system.now``, delay due times and the times in records then move
    with the virtual clock, so a run is the same every time. Read it inside
    :func:`trio.run` only. (Under trio's real clock, whose zero is arbitrary, the times
    it gives are not today's.)
    """

    def clock() -> float:
        return start + trio.current_time()

    return clock
