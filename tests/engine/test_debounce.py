"""``debounce`` decisions: no clock, times passed in."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from hookline.engine._debounce import Debounce


def test_a_burst_gives_its_last_item_once_the_key_is_quiet() -> None:
    debounce: Debounce[str] = Debounce(period=30.0)
    assert debounce.offer("r1", "a", 0.0) is None
    assert debounce.offer("r1", "b", 10.0) == "a"  # superseded
    assert debounce.offer("r2", "x", 15.0) is None
    assert debounce.next_due() == 40.0
    assert debounce.close_due(39.9) == []
    assert debounce.close_due(40.0) == ["b"]
    assert debounce.close_due(45.0) == ["x"]
    assert len(debounce) == 0
    assert debounce.offer("r1", "c", 50.0) is None  # a new window


def test_max_wait_closes_a_window_that_never_goes_quiet() -> None:
    debounce: Debounce[int] = Debounce(period=30.0, max_wait=300.0)
    for n in range(40):
        debounce.offer("hot", n, n * 10.0)  # every 10 s, for 400 s
        assert debounce.close_due(n * 10.0) == ([n] if n == 30 else [])


@given(st.integers(0, 2**32 - 1))
def test_a_thousand_deliveries_over_fifty_keys_give_fifty_each_its_last(seed: int) -> None:
    rng = random.Random(seed)
    # The burst (about 25 s) is shorter than the period: no window closes during it.
    debounce: Debounce[tuple[str, int]] = Debounce(period=30.0, max_wait=300.0)
    last: dict[str, int] = {}
    passed: list[tuple[str, int]] = []
    superseded = 0
    now = 0.0
    for n in range(1000):
        now += rng.random() * 0.05
        key = f"record-{rng.randrange(50)}"
        last[key] = n
        passed += debounce.close_due(now)
        if debounce.offer(key, (key, n), now) is not None:
            superseded += 1
    passed += debounce.close_due(now + 30.0)
    assert sorted(passed) == sorted(last.items())
    assert superseded + len(passed) == 1000


def test_an_older_item_offered_late_is_the_one_superseded() -> None:
    debounce: Debounce[str] = Debounce(period=30.0)
    assert debounce.offer("r1", "new", 0.0, rank="0002") is None
    # Resumed after a restart, an older delivery comes through after a newer one.
    assert debounce.offer("r1", "old", 1.0, rank="0001") == "old"
    assert debounce.waiting("r1") == "new"
    assert debounce.close_due(30.0) == ["new"]  # its window did not move
