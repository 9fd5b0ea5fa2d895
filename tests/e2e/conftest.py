"""End-to-end tests: real server processes. The slowest are marked ``slow``
(deselect them with ``-m "not slow"`` for a quick run)."""

from __future__ import annotations

import os
import random

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a real-process test taking more than a few seconds")


@pytest.fixture
def rng() -> random.Random:
    """The random schedule of a test (kills, senders, targets), seeded and printed:
    ``HOOKLINE_TEST_SEED=<seed>`` replays a failed run's choices."""
    seed = int(os.environ.get("HOOKLINE_TEST_SEED") or random.randrange(2**32))
    print(f"random seed: {seed} (rerun with HOOKLINE_TEST_SEED={seed})")
    return random.Random(seed)
