"""``batch`` decisions: per key, items gather in a window until it holds ``size`` of
them or ``timeout`` passed since its first; then they go on together.

Pure bookkeeping, no I/O, no clock: every call takes ``now``. An item offered for a key
joins that key's open window, or opens one. The window closes when it is full (the
offer that fills it returns it) or ``timeout`` after it opened (:meth:`close_due`). A
closed window's items come out in rank order: items carry a rank (the execution id: ids
sort by arrival), so items resumed after a restart, offered beside newer ones, still
come out in arrival order.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from typing import Generic, TypeVar

import attrs

__all__ = ["Batches"]

T = TypeVar("T")


@attrs.define
class _Window(Generic[T]):
    due: float
    number: int  # which heap entry is this window's
    ranks: list[str] = attrs.field(factory=list)
    items: list[T] = attrs.field(factory=list)


class Batches(Generic[T]):
    """The open windows of one ``batch`` rule, by key."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.timeout = timeout
        self._windows: dict[str, _Window[T]] = {}
        self._where: dict[int, str] = {}  # id(item) -> its window's key
        # (due, number, key); an entry whose number is no longer its window's is stale.
        self._heap: list[tuple[float, int, str]] = []
        self._numbers = itertools.count()
        self._count = 0

    def offer(self, key: str, item: T, now: float, rank: str = "") -> list[T] | None:
        """Put ``item`` in ``key``'s window; the window's items (in rank order) when
        this offer filled it, which closes it; None while it is still open."""
        window = self._windows.get(key)
        if window is None:
            window = _Window(now + self.timeout, next(self._numbers))
            self._windows[key] = window
            heapq.heappush(self._heap, (window.due, window.number, key))
        position = bisect.bisect_right(window.ranks, rank)
        window.ranks.insert(position, rank)
        window.items.insert(position, item)
        self._where[id(item)] = key
        self._count += 1
        if len(window.items) >= self.size:
            return self._close(key)
        return None

    def discard(self, item: T) -> bool:
        """Take ``item`` out of its window (it was cancelled); False if none holds it.
        A window left empty closes with nothing in it."""
        key = self._where.pop(id(item), None)
        if key is None:
            return False
        window = self._windows[key]
        position = next(i for i, held in enumerate(window.items) if held is item)
        del window.items[position], window.ranks[position]
        self._count -= 1
        if not window.items:
            del self._windows[key]
        return True

    def next_due(self) -> float:
        """When the next window times out (``math.inf``: none is open)."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else math.inf

    def close_due(self, now: float) -> list[list[T]]:
        """Close every window timed out by ``now``; their items, window by window in
        the order they opened."""
        closed: list[list[T]] = []
        while self.next_due() <= now:
            _, _, key = heapq.heappop(self._heap)
            closed.append(self._close(key))
        return closed

    def close_all(self) -> list[list[T]]:
        """Close every open window now (the rule's owner is going away); their items,
        window by window in the order they opened."""
        order = sorted(self._windows, key=lambda key: self._windows[key].number)
        return [self._close(key) for key in order]

    def due_of(self, item: T) -> float | None:
        """When the window holding ``item`` times out; None if no window holds it."""
        key = self._where.get(id(item))
        return None if key is None else self._windows[key].due

    def held(self, item: T) -> int:
        """How many items the window holding ``item`` has (0: none holds it)."""
        key = self._where.get(id(item))
        return 0 if key is None else len(self._windows[key].items)

    def _close(self, key: str) -> list[T]:
        window = self._windows.pop(key)
        for item in window.items:
            del self._where[id(item)]
        self._count -= len(window.items)
        return window.items

    def _drop_stale(self) -> None:
        while self._heap:
            _, number, key = self._heap[0]
            window = self._windows.get(key)
            if window is not None and window.number == number:
                return
            heapq.heappop(self._heap)

    @property
    def windows(self) -> int:
        """How many windows are open."""
        return len(self._windows)

    def __len__(self) -> int:
        """How many items wait in open windows."""
        return self._count
