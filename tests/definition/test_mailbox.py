"""The bounded mailbox: bound, FIFO order, reservations, close, cancellation, statistics."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from hookline.definition._mailbox import Mailbox, MailboxStatistics


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox[int](0)


async def test_send_nowait_refuses_when_full() -> None:
    mailbox = Mailbox[int](2)
    mailbox.send_nowait(1)
    mailbox.send_nowait(2)
    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait(3)
    assert mailbox.receive_nowait() == 1
    mailbox.send_nowait(3)
    assert [mailbox.receive_nowait(), mailbox.receive_nowait()] == [2, 3]
    with pytest.raises(trio.WouldBlock):
        mailbox.receive_nowait()


async def test_reservations_count_against_the_bound() -> None:
    mailbox = Mailbox[str](2)
    mailbox.reserve_nowait()
    mailbox.send_nowait("a")
    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait("b")
    with pytest.raises(trio.WouldBlock):
        mailbox.reserve_nowait()


async def test_waiting_senders_are_served_in_order() -> None:
    mailbox = Mailbox[str](1)
    mailbox.send_nowait("first")
    async with trio.open_nursery() as nursery:
        for name in ("a", "b", "c"):
            nursery.start_soon(mailbox.send, name)
            await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 3
        # The freed slot goes to the oldest waiting sender, not to a newcomer.
        assert mailbox.receive_nowait() == "first"
        with pytest.raises(trio.WouldBlock):
            mailbox.send_nowait("late")
        received = [await mailbox.receive() for _ in range(3)]
    assert received == ["a", "b", "c"]
    assert mailbox.statistics().senders_waiting == 0


async def test_waiting_receivers_are_served_in_order() -> None:
    mailbox = Mailbox[int](1)
    got: list[tuple[str, int]] = []

    async def receiver(name: str) -> None:
        got.append((name, await mailbox.receive()))

    async with trio.open_nursery() as nursery:
        for name in ("r1", "r2"):
            nursery.start_soon(receiver, name)
            await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().receivers_waiting == 2
        mailbox.send_nowait(10)
        mailbox.send_nowait(20)
    assert dict(got) == {"r1": 10, "r2": 20}


async def test_reservation_send_never_fails_for_lack_of_room() -> None:
    mailbox = Mailbox[str](1)
    reservation = mailbox.reserve_nowait()
    assert mailbox.statistics().reserved == 1
    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait("other")
    reservation.send("kept")
    assert mailbox.statistics().reserved == 0
    assert mailbox.receive_nowait() == "kept"
    with pytest.raises(RuntimeError, match="already sent"):
        reservation.send("again")
    reservation.release()  # no-op after send
    assert mailbox.statistics().reserved == 0


async def test_released_reservation_frees_its_slot_for_a_waiting_sender() -> None:
    mailbox = Mailbox[str](1)
    reservation = mailbox.reserve_nowait()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mailbox.send, "waiting")
        await trio.testing.wait_all_tasks_blocked()
        reservation.release()
        reservation.release()  # idempotent
    assert mailbox.statistics().reserved == 0
    assert mailbox.receive_nowait() == "waiting"
    with pytest.raises(RuntimeError, match="already released"):
        reservation.send("late")


async def test_reservation_as_context_manager_releases_unless_sent() -> None:
    mailbox = Mailbox[int](1)
    with pytest.raises(KeyError), mailbox.reserve_nowait():
        raise KeyError("store failed")
    assert mailbox.statistics().reserved == 0
    with mailbox.reserve_nowait() as reservation:
        reservation.send(1)
    assert mailbox.statistics().depth == 1


async def test_reserve_waits_its_turn_among_waiting_senders() -> None:
    mailbox = Mailbox[str](1)
    mailbox.send_nowait("first")
    order: list[str] = []

    async def send(item: str) -> None:
        await mailbox.send(item)
        order.append(item)

    async def reserve(item: str) -> None:
        reservation = await mailbox.reserve()
        order.append(f"reserved for {item}")
        reservation.send(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "a")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(reserve, "b")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(send, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 3
        received = [await mailbox.receive() for _ in range(4)]
    assert received == ["first", "a", "b", "c"]
    assert order == ["a", "reserved for b", "c"]


async def test_a_cancelled_or_closed_reserve_holds_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[int](1)
    mailbox.send_nowait(1)
    with trio.move_on_after(0.01):
        await mailbox.reserve()
    assert mailbox.statistics().senders_waiting == 0
    assert mailbox.receive_nowait() == 1
    assert mailbox.statistics().reserved == 0
    mailbox.send_nowait(2)

    async def closer() -> None:
        await trio.testing.wait_all_tasks_blocked()
        mailbox.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(closer)
        with pytest.raises(trio.ClosedResourceError):
            await mailbox.reserve()
    assert mailbox.statistics().reserved == 0


async def test_close_refuses_sends_and_drains() -> None:
    mailbox = Mailbox[int](3)
    reservation = mailbox.reserve_nowait()
    mailbox.send_nowait(1)
    mailbox.send_nowait(2)
    mailbox.close()
    mailbox.close()  # idempotent
    assert mailbox.closed
    with pytest.raises(trio.ClosedResourceError):
        mailbox.send_nowait(3)
    with pytest.raises(trio.ClosedResourceError):
        await mailbox.send(3)
    with pytest.raises(trio.ClosedResourceError):
        mailbox.reserve_nowait()
    with pytest.raises(trio.ClosedResourceError):
        reservation.send(3)
    assert mailbox.statistics().reserved == 0
    assert [item async for item in mailbox] == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        mailbox.receive_nowait()
    with pytest.raises(trio.EndOfChannel):
        await mailbox.receive()


async def test_close_wakes_waiting_senders_and_receivers() -> None:
    full = Mailbox[int](1)
    full.send_nowait(0)
    empty = Mailbox[int](1)
    errors: list[type[BaseException]] = []

    async def expect(
        error: type[BaseException], fn: Callable[..., Awaitable[object]], *args: object
    ) -> None:
        with pytest.raises(error):
            await fn(*args)
        errors.append(error)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect, trio.ClosedResourceError, full.send, 1)
        nursery.start_soon(expect, trio.EndOfChannel, empty.receive)
        await trio.testing.wait_all_tasks_blocked()
        full.close()
        empty.close()
    assert sorted(e.__name__ for e in errors) == ["ClosedResourceError", "EndOfChannel"]
    assert [item async for item in full] == [0]  # the waiting sender's item never got in


async def test_cancelled_send_sends_nothing() -> None:
    mailbox = Mailbox[str](1)
    mailbox.send_nowait("a")
    with trio.CancelScope() as scope:
        scope.cancel()
        await mailbox.send("b")
    async with trio.open_nursery() as nursery:
        cancel = trio.CancelScope()

        async def send_then_cancelled() -> None:
            with cancel:
                await mailbox.send("c")

        nursery.start_soon(send_then_cancelled)
        nursery.start_soon(mailbox.send, "d")
        await trio.testing.wait_all_tasks_blocked()
        cancel.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 1
        assert mailbox.receive_nowait() == "a"
    assert mailbox.receive_nowait() == "d"
    assert mailbox.statistics().sent == 2


async def test_cancelled_receive_takes_nothing() -> None:
    mailbox = Mailbox[str](2)
    got: list[str] = []
    async with trio.open_nursery() as nursery:
        cancel = trio.CancelScope()

        async def receive_then_cancelled() -> None:
            with cancel:
                got.append(await mailbox.receive())

        nursery.start_soon(receive_then_cancelled)
        await trio.testing.wait_all_tasks_blocked()
        cancel.cancel()
        await trio.testing.wait_all_tasks_blocked()
        mailbox.send_nowait("x")
    assert got == []
    assert mailbox.receive_nowait() == "x"


async def test_random_cancellations_lose_and_duplicate_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    mailbox = Mailbox[int](3)
    sent: list[int] = []
    received: list[int] = []

    async def sender(item: int) -> None:
        with trio.move_on_after(rng.random()):
            await trio.sleep(rng.random())
            await mailbox.send(item)
            sent.append(item)

    async def receiver() -> None:
        while True:
            with trio.move_on_after(rng.random()):
                try:
                    item = await mailbox.receive()
                except trio.EndOfChannel:
                    return
                received.append(item)
                await trio.sleep(rng.random() / 4)

    async with trio.open_nursery() as receivers:
        for _ in range(3):
            receivers.start_soon(receiver)
        async with trio.open_nursery() as senders:
            for item in range(300):
                senders.start_soon(sender, item)
        mailbox.close()
    assert 0 < len(sent) < 300  # some sends were cancelled, some got through
    assert sorted(received) == sorted(sent)


async def test_statistics() -> None:
    mailbox = Mailbox[int](4, name="inbox")
    mailbox.send_nowait(1)
    mailbox.send_nowait(2)
    mailbox.reserve_nowait()
    mailbox.receive_nowait()
    assert mailbox.statistics() == MailboxStatistics(
        name="inbox",
        capacity=4,
        depth=1,
        reserved=1,
        sent=2,
        received=1,
        senders_waiting=0,
        receivers_waiting=0,
    )


async def test_an_ordered_mailbox_hands_out_the_first_in_order_ties_by_arrival() -> None:
    mailbox = Mailbox[tuple[str, int]](4, order=lambda item: -item[1])
    for item in [("low", 0), ("high", 9), ("low-2", 0), ("mid", 5)]:
        mailbox.send_nowait(item)
    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait(("late", 99))  # the bound holds as for a FIFO mailbox
    assert mailbox.statistics().depth == 4
    taken = [mailbox.receive_nowait()[0] for _ in range(4)]
    assert taken == ["high", "mid", "low", "low-2"]


async def test_an_ordered_mailbox_admits_a_waiting_sender_in_order() -> None:
    mailbox = Mailbox[int](1, order=lambda item: -item)
    mailbox.send_nowait(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mailbox.send, 7)
        await trio.testing.wait_all_tasks_blocked()
        assert mailbox.receive_nowait() == 1
        assert mailbox.receive_nowait() == 7
