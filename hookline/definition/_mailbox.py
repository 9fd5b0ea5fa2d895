"""A bounded FIFO mailbox: the only queue an actor reads from.

Every mailbox in hookline is bounded (DESIGN.md invariant 2). A slot is either taken by an
item waiting to be received or held by a :class:`Reservation`; when all ``capacity`` slots
are taken, :meth:`Mailbox.send_nowait` raises :class:`trio.WouldBlock` and
:meth:`Mailbox.send` waits its turn (:meth:`Mailbox.reserve` too, for a slot).

Waiting senders and receivers are served strictly first come, first served, by handing
items over task to task (as :mod:`trio`'s memory channels do): a waiting sender's item
enters the mailbox at the moment room frees up, and a waiting receiver is handed its item
directly. So a cancelled ``send`` has sent nothing and a cancelled ``receive`` has taken
nothing: cancellation never loses or duplicates an item.

Given ``order``, a mailbox hands out the waiting item whose ``order(item)`` is smallest
instead of the oldest (ties in arrival order): a workflow's ``priority``.
"""

from __future__ import annotations

import heapq
import itertools
import types
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import outcome
import trio

T = TypeVar("T")


class _Slot:
    """What a task waiting in :meth:`Mailbox.reserve` waits for, in the senders' line."""


_SLOT = _Slot()


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox.

    ``depth`` counts items waiting to be received; ``reserved`` counts slots held by
    reservations not yet used. ``sent`` and ``received`` count items since creation.
    """

    name: str
    capacity: int
    depth: int
    reserved: int
    sent: int
    received: int
    senders_waiting: int
    receivers_waiting: int


class Mailbox(Generic[T]):
    """A bounded FIFO queue of messages with reservations.

    ``capacity`` (at least 1) bounds the items waiting plus the slots reserved. After
    :meth:`close`, sends fail with :class:`trio.ClosedResourceError` and receivers drain
    what is left, then get :class:`trio.EndOfChannel`.
    """

    def __init__(
        self, capacity: int, *, name: str = "", order: Callable[[T], Any] | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, got {capacity}")
        self._name = name
        self._capacity = capacity
        self._items: deque[T] = deque()
        # With ``order``: a heap of (order, arrival, item) instead of the deque.
        self._order = order
        self._ordered: list[tuple[Any, int, T]] = []
        self._arrivals = itertools.count()
        self._reserved = 0
        self._closed = False
        self._sent = 0
        self._received = 0
        # Waiting senders, and waiting reservers (_SLOT), in one first-come line.
        self._senders: OrderedDict[trio.lowlevel.Task, T | _Slot] = OrderedDict()
        self._receivers: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (items may still be waiting)."""
        return self._closed

    def send_nowait(self, item: T) -> None:
        """Put ``item`` in the mailbox now.

        Raises :class:`trio.WouldBlock` when every slot is taken (reserved slots count),
        and :class:`trio.ClosedResourceError` after :meth:`close`.
        """
        if self._closed:
            raise trio.ClosedResourceError(f"mailbox {self._name!r} is closed")
        if not self._has_room():
            raise trio.WouldBlock
        self._deliver(item)

    async def send(self, item: T) -> None:
        """Put ``item`` in the mailbox, waiting for room behind earlier waiting senders.

        Raises :class:`trio.ClosedResourceError` if the mailbox is closed before the item
        got in. If cancelled while waiting, the item was not sent.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.send_nowait(item)
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._senders[task] = item

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            del self._senders[task]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def reserve_nowait(self) -> Reservation[T]:
        """Hold one slot for an item to be sent later through the reservation.

        The slot counts as taken until the reservation sends or is released. Raises
        :class:`trio.WouldBlock` when no slot is free and
        :class:`trio.ClosedResourceError` after :meth:`close`.
        """
        if self._closed:
            raise trio.ClosedResourceError(f"mailbox {self._name!r} is closed")
        if not self._has_room():
            raise trio.WouldBlock
        self._reserved += 1
        return Reservation(self)

    async def reserve(self) -> Reservation[T]:
        """Hold one slot as :meth:`reserve_nowait` does, waiting for one behind earlier
        waiting senders and reservers.

        Raises :class:`trio.ClosedResourceError` if the mailbox is closed before a slot
        was held. If cancelled while waiting, nothing is held.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            reservation = self.reserve_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return reservation
        task = trio.lowlevel.current_task()
        self._senders[task] = _SLOT

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            del self._senders[task]
            return trio.lowlevel.Abort.SUCCEEDED

        held: Reservation[T] = await trio.lowlevel.wait_task_rescheduled(abort)
        return held

    def receive_nowait(self) -> T:
        """Take the oldest item (with ``order``: the first in that order) now.

        Raises :class:`trio.WouldBlock` when empty, and :class:`trio.EndOfChannel` when
        closed and empty.
        """
        if self._items or self._ordered:
            item = heapq.heappop(self._ordered)[2] if self._order else self._items.popleft()
            self._received += 1
            self._admit_waiting_senders()
            return item
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        """Take the next item as :meth:`receive_nowait` does, waiting for one behind
        earlier waiting receivers.

        Raises :class:`trio.EndOfChannel` once the mailbox is closed and drained. If
        cancelled while waiting, nothing was taken.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            item = self.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        task = trio.lowlevel.current_task()
        self._receivers[task] = None

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            del self._receivers[task]
            return trio.lowlevel.Abort.SUCCEEDED

        received: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return received

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Refuse further sends; receivers drain the items already in. Idempotent.

        Waiting senders and reservers get :class:`trio.ClosedResourceError` (their
        items were not sent, no slot is held); waiting receivers (there are items for
        none of them) get :class:`trio.EndOfChannel`. Unused reservations can no longer
        send.
        """
        if self._closed:
            return
        self._closed = True
        senders, self._senders = self._senders, OrderedDict()
        for task in senders:
            error = trio.ClosedResourceError(f"mailbox {self._name!r} is closed")
            trio.lowlevel.reschedule(task, outcome.Error(error))
        receivers, self._receivers = self._receivers, OrderedDict()
        for task in receivers:
            trio.lowlevel.reschedule(task, outcome.Error(trio.EndOfChannel()))

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            name=self._name,
            capacity=self._capacity,
            depth=self._depth(),
            reserved=self._reserved,
            sent=self._sent,
            received=self._received,
            senders_waiting=len(self._senders),
            receivers_waiting=len(self._receivers),
        )

    def _depth(self) -> int:
        return len(self._ordered) if self._order else len(self._items)

    def _has_room(self) -> bool:
        return self._depth() + self._reserved < self._capacity

    def _deliver(self, item: T) -> None:
        # A waiting receiver implies an empty mailbox, so handing over directly keeps
        # FIFO order and the item never occupies a slot.
        self._sent += 1
        if self._receivers:
            task, _ = self._receivers.popitem(last=False)
            self._received += 1
            trio.lowlevel.reschedule(task, outcome.Value(item))
        elif self._order is not None:
            heapq.heappush(self._ordered, (self._order(item), next(self._arrivals), item))
        else:
            self._items.append(item)

    def _admit_waiting_senders(self) -> None:
        # Called whenever a slot frees up; keeps "senders wait only when full" true.
        while self._senders and self._has_room():
            task, item = self._senders.popitem(last=False)
            if isinstance(item, _Slot):
                self._reserved += 1
                trio.lowlevel.reschedule(task, outcome.Value(Reservation(self)))
            else:
                self._deliver(item)
                trio.lowlevel.reschedule(task)

    def _send_reserved(self, item: T) -> None:
        self._reserved -= 1
        if self._closed:
            raise trio.ClosedResourceError(f"mailbox {self._name!r} is closed")
        self._deliver(item)
        self._admit_waiting_senders()

    def _release_reserved(self) -> None:
        self._reserved -= 1
        self._admit_waiting_senders()


class Reservation(Generic[T]):
    """One slot held in a :class:`Mailbox`, from :meth:`Mailbox.reserve_nowait` or
    :meth:`Mailbox.reserve`.

    Use it once: :meth:`send` an item or :meth:`release` the slot. As a context manager it
    releases the slot on exit unless an item was sent, so an abandoned reservation never
    leaks a slot.
    """

    def __init__(self, mailbox: Mailbox[T]) -> None:
        self._mailbox: Mailbox[T] | None = mailbox
        self._sent = False

    def send(self, item: T) -> None:
        """Put ``item`` in the held slot; never blocks and never fails for lack of room.

        Raises :class:`trio.ClosedResourceError` if the mailbox was closed meanwhile (the
        slot is given back, the item is not sent), and :class:`RuntimeError` if the
        reservation was already used or released.
        """
        mailbox = self._mailbox
        if mailbox is None:
            used = "sent" if self._sent else "released"
            raise RuntimeError(f"this reservation was already {used}")
        self._mailbox = None
        mailbox._send_reserved(item)
        self._sent = True

    def release(self) -> None:
        """Give the slot back unused. Does nothing if already released or sent."""
        mailbox, self._mailbox = self._mailbox, None
        if mailbox is not None:
            mailbox._release_reserved()

    def __enter__(self) -> Reservation[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.release()
