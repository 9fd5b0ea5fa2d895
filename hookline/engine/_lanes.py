"""Ordering lanes for ``concurrency.order_by``: pure bookkeeping, no I/O, no trio.

Executions that share an order key form a lane: one of them runs at a time, the others
wait in arrival order. Executions without a key (and the heads of different lanes) are
limited only by the workflow's ``concurrency.max``, which the caller enforces.
The workflow supervisor carries the decisions out; this module only decides.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.frozen
class LanesStatistics:
    """``busy`` lanes have an execution running; ``parked`` executions wait in them."""

    busy: int
    parked: int


class Lanes(Generic[T]):
    """Per-key FIFO lanes of items (executions).

    Call :meth:`admit` when an item may start: True means run it now, False means it
    was parked behind the running item of its lane. Call :meth:`release` when the
    running item of a lane ends: it returns the next item of that lane, which is now the
    running one, or None when the lane is free again.
    """

    def __init__(self) -> None:
        # A key is present while its lane is busy; the deque holds the parked items in
        # arrival order, each with its arrival number (for :meth:`reset`).
        self._lanes: dict[str, deque[tuple[int, T]]] = {}
        self._arrivals = itertools.count()
        self._parked = 0

    def admit(self, key: str | None, item: T) -> bool:
        """True if ``item`` may run now (no key, or its lane was free and is now busy);
        False if it was parked behind the lane's running item."""
        if key is None:
            return True
        waiting = self._lanes.get(key)
        if waiting is None:
            self._lanes[key] = deque()
            return True
        waiting.append((next(self._arrivals), item))
        self._parked += 1
        return False

    def release(self, key: str | None) -> T | None:
        """The running item of lane ``key`` ended: the lane's next item (it runs now and
        keeps the lane busy), or None (the lane is free). Releasing a free lane or
        ``None`` does nothing and returns None."""
        if key is None:
            return None
        waiting = self._lanes.get(key)
        if waiting is None:
            return None
        if waiting:
            self._parked -= 1
            return waiting.popleft()[1]
        del self._lanes[key]
        return None

    def remove(self, key: str | None, item: T) -> bool:
        """Withdraw a parked ``item`` (cancelled while it waited). False if it is not
        parked in lane ``key``."""
        waiting = self._lanes.get(key) if key is not None else None
        if not waiting:
            return False
        for entry in waiting:
            if entry[1] is item:
                waiting.remove(entry)
                self._parked -= 1
                return True
        return False

    def busy(self, key: str) -> bool:
        """True while an item of lane ``key`` runs."""
        return key in self._lanes

    def reset(self) -> list[T]:
        """Free every lane and return the parked items in arrival order, to be admitted
        again (after the runner crashed and lost what was running)."""
        lanes, self._lanes = self._lanes, {}
        self._parked = 0
        return [item for _, item in heapq.merge(*lanes.values(), key=lambda entry: entry[0])]

    @property
    def parked(self) -> int:
        """How many items wait behind a running one."""
        return self._parked

    def statistics(self) -> LanesStatistics:
        return LanesStatistics(busy=len(self._lanes), parked=self._parked)
