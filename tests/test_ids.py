"""Ids sort by creation time, are unique and are well-formed."""

from __future__ import annotations

import re
import threading
import time

import pytest

from hookline._ids import id_time, new_id

CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def test_ids_are_26_crockford_characters() -> None:
    assert all(CROCKFORD.fullmatch(new_id()) for _ in range(100))


def test_ids_increase_even_within_one_millisecond() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_carry_their_creation_time() -> None:
    before = time.time()
    made = id_time(new_id())
    assert before - 0.001 <= made <= time.time()


def test_ids_keep_increasing_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = new_id()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000)
    second = new_id()
    assert second > first
    assert id_time(second) >= id_time(first)


def test_ids_from_many_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [id for ids in made for id in ids]
    assert len(set(every)) == len(every)
    assert all(ids == sorted(ids) for ids in made)


@pytest.mark.parametrize("bad", ["", "short", "U" * 26, "0" * 27])
def test_id_time_refuses_what_is_not_an_id(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        id_time(bad)
