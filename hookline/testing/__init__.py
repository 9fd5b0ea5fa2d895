"""Helpers for testing workflows and node types, for hookline's tests and yours.

``register_test_nodes()`` adds two node types (``sleep`` and ``fail``) for tests that
need a slow or failing node; ``FakeJob`` runs one node's config without an engine;
``MemoryStore`` is the store that needs no threads, so trio's ``autojump_clock`` works;
``trio_wall_clock()`` is a wall clock for ``open_engine(clock=...)`` that follows trio's
(mock) clock.
"""

from ..store._store import MemoryStore as MemoryStore
from ._clock import TEST_EPOCH as TEST_EPOCH
from ._clock import trio_wall_clock as trio_wall_clock
from ._nodes import FailNode as FailNode
from ._nodes import FakeJob as FakeJob
from ._nodes import SleepNode as SleepNode
from ._nodes import register_test_nodes as register_test_nodes
