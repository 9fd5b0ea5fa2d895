"""``debounce`` decisions: per key, only the latest item goes on, once things are quiet.

Pure bookkeeping, no I/O, no clock: every call takes ``now``. An item offered for a key
opens that key's window, or replaces the item waiting in it (which is then superseded:
it never runs). The window closes ``period`` after its latest item, or ``max_wait``
after its first, whichever comes first; its item then goes on.

Items carry a rank (the execution id: ids sort by arrival). Offered out of order, as
when executions resumed after a restart meet deliveries arriving meanwhile, the item of
the higher rank stays, whichever came second.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

import attrs

__all__ = ["Debounce"]

T = TypeVar("T")


@attrs.define
class _Window(Generic[T]):
    item: T
    rank: str
    first: float
    due: float
    number: int  # which heap entry is this window's current one


class Debounce(Generic[T]):
    """The open windows of one ``debounce`` rule, by key."""

    def __init__(self, period: float, max_wait: float | None = None) -> None:
        self.period = period
        self.max_wait = max_wait
        self._windows: dict[str, _Window[T]] = {}
        # (due, number, key); an entry whose number is no longer its window's is stale.
        self._heap: list[tuple[float, int, str]] = []
        self._numbers = itertools.count()

    def offer(self, key: str, item: T, now: float, rank: str = "") -> T | None:
        """Put ``item`` in ``key``'s window; the item superseded, if any: the one it
        replaces, or ``item`` itself when the waiting one has a higher ``rank``."""
        window = self._windows.get(key)
        if window is not None and rank < window.rank:
            return item  # older than the one waiting: it never runs, and moves nothing
        first = now if window is None else window.first
        due = now + self.period
        if self.max_wait is not None:
            due = min(due, first + self.max_wait)
        number = next(self._numbers)
        self._windows[key] = _Window(item, rank, first, due, number)
        heapq.heappush(self._heap, (due, number, key))
        return None if window is None else window.item

    def next_due(self) -> float:
        """When the next window closes (``math.inf``: none is open)."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else math.inf

    def close_due(self, now: float) -> list[T]:
        """Close every window due by ``now``; their items, in the order they closed."""
        closed: list[T] = []
        while self.next_due() <= now:
            _, _, key = heapq.heappop(self._heap)
            closed.append(self._windows.pop(key).item)
        return closed

    def _drop_stale(self) -> None:
        while self._heap:
            _, number, key = self._heap[0]
            window = self._windows.get(key)
            if window is not None and window.number == number:
                return
            heapq.heappop(self._heap)

    def waiting(self, key: str) -> T | None:
        """The item waiting in ``key``'s window, if one is open."""
        window = self._windows.get(key)
        return None if window is None else window.item

    def due_of(self, item: T) -> float | None:
        """When the window holding ``item`` closes; None if no window holds it."""
        for window in self._windows.values():
            if window.item is item:
                return window.due
        return None

    def __len__(self) -> int:
        """How many windows are open (each holds one waiting item)."""
        return len(self._windows)
