"""End-to-end tests: real server processes. The slowest are marked ``slow``
(deselect them with ``-m "not slow"`` for a quick run)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a real-process test taking more than a few seconds")
