"""``batch`` decisions (no clock, times passed in) and the rule as loaded."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookline import Workflow
from hookline.engine._batch import Batches
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError


def test_a_window_closes_when_full_with_its_items_in_arrival_order() -> None:
    batches: Batches[str] = Batches(size=3, timeout=10.0)
    assert batches.offer("d1", "a", 0.0, rank="1") is None
    assert batches.offer("d1", "b", 1.0, rank="2") is None
    assert len(batches) == 2
    assert batches.offer("d1", "c", 2.0, rank="3") == ["a", "b", "c"]
    assert len(batches) == 0
    assert batches.next_due() == math.inf  # the full window's timer is gone
    assert batches.offer("d1", "d", 3.0, rank="4") is None  # a new window
    assert batches.due_of("d") == 13.0


def test_a_window_times_out_after_its_first_item_whatever_came_since() -> None:
    batches: Batches[int] = Batches(size=100, timeout=10.0)
    batches.offer("d1", 1, 0.0)
    batches.offer("d1", 2, 9.0)
    batches.offer("d2", 3, 5.0)
    assert batches.next_due() == 10.0
    assert batches.close_due(9.9) == []
    assert batches.close_due(10.0) == [[1, 2]]
    assert batches.close_due(20.0) == [[3]]
    assert len(batches) == 0
    assert batches.windows == 0


def test_keys_gather_apart() -> None:
    batches: Batches[str] = Batches(size=2, timeout=60.0)
    assert batches.offer("d1", "a", 0.0) is None
    assert batches.offer("d2", "x", 0.0) is None
    assert batches.windows == 2
    assert batches.offer("d2", "y", 1.0) == ["x", "y"]
    assert batches.offer("d1", "b", 1.0) == ["a", "b"]


def test_items_resumed_beside_newer_ones_come_out_by_rank() -> None:
    batches: Batches[str] = Batches(size=3, timeout=60.0)
    batches.offer("d1", "new", 0.0, rank="05")
    batches.offer("d1", "old", 0.0, rank="02")
    assert batches.offer("d1", "older", 0.0, rank="01") == ["older", "old", "new"]


def test_a_discarded_item_leaves_its_window_and_an_empty_window_closes() -> None:
    batches: Batches[str] = Batches(size=3, timeout=10.0)
    batches.offer("d1", "a", 0.0)
    batches.offer("d1", "b", 0.0)
    assert batches.discard("a")
    assert not batches.discard("a")
    assert batches.held("b") == 1
    assert batches.offer("d1", "c", 1.0) is None  # two held: not full yet
    assert batches.discard("b")
    assert batches.discard("c")
    assert batches.windows == 0
    assert batches.next_due() == math.inf
    assert batches.close_due(100.0) == []


@given(st.integers(0, 2**32 - 1))
def test_every_item_comes_out_in_exactly_one_batch_of_its_key(seed: int) -> None:
    rng = random.Random(seed)
    batches: Batches[tuple[str, int]] = Batches(size=7, timeout=5.0)
    closed: list[list[tuple[str, int]]] = []
    now = 0.0
    for n in range(500):
        now += rng.random() * 0.2
        closed += batches.close_due(now)
        key = f"device-{rng.randrange(5)}"
        full = batches.offer(key, (key, n), now, rank=f"{n:04d}")
        if full is not None:
            closed.append(full)
    closed += batches.close_due(now + 5.0)
    assert sorted(n for batch in closed for _, n in batch) == list(range(500))
    for batch in closed:
        assert 1 <= len(batch) <= 7
        assert len({key for key, _ in batch}) == 1
        assert [n for _, n in batch] == sorted(n for _, n in batch)


def load(batch: str) -> Workflow:
    text = f"key: readings\n{batch}\nnodes: [{{key: s, type: set, values: {{a: 1}}}}]"
    return load_workflow_text(text, source="readings.yaml")


def test_a_batch_rule_loads_with_its_size_timeout_and_key() -> None:
    rule = load('batch: {size: 100, timeout: 10s, key: "{{$context.params.device}}"}').batch
    assert rule is not None
    assert (rule.size, rule.timeout) == (100, 10.0)
    assert rule.key is not None


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ("batch: {size: 0, timeout: 1s}", "batch.size: expected an integer from 1 to 1000, got 0"),
        ("batch: {size: 5000, timeout: 1s}", "batch.size: expected an integer from 1 to 1000"),
        ("batch: {size: 5}", "batch.timeout: expected a duration such as '5s'"),
        ("batch: {size: 5, timeout: 0s}", "batch.timeout: expected a duration above zero"),
        ("batch: {size: 5, timeout: 1s, every: 2}", "batch.every: expected a known field"),
        ("batch: [5]", "batch: expected a mapping of fields"),
        (
            "batch: {size: 5, timeout: 1s}\ndebounce: {period: 1s}",
            "batch: expected no batch in a workflow with debounce (choose one)",
        ),
    ],
)
def test_a_bad_batch_rule_is_refused_naming_its_field(batch: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load(batch)
    assert str(caught.value).startswith(f"readings.yaml: {message}")


def test_close_all_closes_every_window_in_the_order_they_opened() -> None:
    batches: Batches[str] = Batches(size=10, timeout=60.0)
    batches.offer("d2", "x", 0.0)
    batches.offer("d1", "a", 1.0)
    batches.offer("d2", "y", 2.0)
    assert batches.close_all() == [["x", "y"], ["a"]]
    assert len(batches) == 0
    assert batches.next_due() == math.inf
