"""The GCRA decisions of ``throttle`` and ``rate_limit``: no clock, times passed in."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.engine._gcra import Gcra, Rate

# Float sums of intervals may land a hair before a window's end.
EPSILON = 1e-9


def most_in_any_window(times: list[float], period: float) -> int:
    """The most events in a window ``[t, t + period)``, over every start ``t`` (the
    busiest window always starts at an event)."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + period - EPSILON) - i for i, t in enumerate(times)),
        default=0,
    )


arrivals = st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=300)
rates = st.builds(
    Rate,
    limit=st.integers(1, 20),
    period=st.sampled_from([0.5, 1.0, 3.0, 60.0]),
    burst=st.integers(0, 5),
)


@settings(max_examples=200)
@given(rates, arrivals)
def test_take_never_lets_more_than_limit_plus_burst_through_in_any_window(
    rate: Rate, times: list[float]
) -> None:
    gcra = Gcra(rate)
    through = [t for t in sorted(times) if gcra.take("k", t) == 0.0]
    assert most_in_any_window(through, rate.period) <= rate.limit + rate.burst


@settings(max_examples=200)
@given(rates, arrivals)
def test_schedule_books_every_event_within_the_rate_in_arrival_order(
    rate: Rate, times: list[float]
) -> None:
    gcra = Gcra(rate)
    ordered = sorted(times)
    starts = [gcra.schedule("k", t) for t in ordered]
    assert all(start >= t for start, t in zip(starts, ordered, strict=True))
    assert starts == sorted(starts)
    assert most_in_any_window(starts, rate.period) <= rate.limit + rate.burst


def test_a_burst_goes_through_at_once_then_the_steady_rate() -> None:
    gcra = Gcra(Rate(limit=10, period=60.0, burst=2))
    assert [gcra.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # The fourth conforms one interval (6 s) after the first.
    assert gcra.take("k", 0.0) == 6.0
    assert gcra.take("k", 6.0) == 0.0
    assert gcra.take("k", 6.0) == 6.0


def test_keys_are_apart_and_a_refusal_moves_nothing() -> None:
    gcra = Gcra(Rate(limit=1, period=10.0))
    assert gcra.take("a", 0.0) == 0.0
    assert gcra.take("b", 0.0) == 0.0
    assert gcra.take("a", 4.0) == 6.0
    assert gcra.take("a", 9.0) == 1.0  # still due at 10, not pushed on by the refusals
    assert gcra.take("a", 10.0) == 0.0


def test_schedule_spaces_waiting_events_one_interval_apart() -> None:
    gcra = Gcra(Rate(limit=2, period=1.0))
    assert [gcra.schedule("k", 0.0) for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert gcra.schedule("k", 10.0) == 10.0


def test_idle_keys_are_forgotten() -> None:
    gcra = Gcra(Rate(limit=1, period=1.0))
    for n in range(100):
        gcra.take(f"client-{n}", float(n) / 100)
    assert gcra.forget_idle(1.5) == 51  # due again by 1.5: client-0 to client-50
    assert gcra.forget_idle(2.0) == 49
    assert len(gcra) == 0
    assert gcra.take("client-0", 1.5) == 0.0


def test_the_table_sweeps_itself_once_it_doubles() -> None:
    gcra = Gcra(Rate(limit=1, period=1.0), keep=10)
    for n in range(1000):
        gcra.take(f"client-{n}", float(n))  # each key idle again a second later
    assert len(gcra) <= 20
