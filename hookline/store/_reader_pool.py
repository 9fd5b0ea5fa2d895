"""The read connections of a threaded backend, shared by the store's worker threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from ..errors import StoreClosed


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class ReaderPool(Generic[C]):
    """Idle read connections kept for reuse, with at most ``readers`` reads at once.

    Closed at first and after :meth:`close`; :meth:`take` then raises StoreClosed with
    ``closed_message``. A connection given back to a closed pool, or marked unusable,
    is closed instead of kept. Safe to use from several threads.
    """

    def __init__(self, readers: int, closed_message: str) -> None:
        self._slots = threading.BoundedSemaphore(readers)
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._open = False
        self._closed_message = closed_message

    def open(self) -> None:
        with self._lock:
            self._open = True

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``readers`` slots for the duration of a read."""
        with self._slots:
            yield

    def take(self) -> C | None:
        """An idle connection, or None when the caller must open a new one."""
        with self._lock:
            if not self._open:
                raise StoreClosed(self._closed_message)
            return self._idle.pop() if self._idle else None

    def give(self, conn: C, *, usable: bool = True) -> None:
        with self._lock:
            keep = self._open and usable
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._open = False
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
