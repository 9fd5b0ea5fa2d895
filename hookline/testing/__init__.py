"""Helpers for testing workflows and node types, for hookline's tests and yours.

``register_test_nodes()`` adds two node types (``sleep`` and ``fail``) for tests that
need a slow or failing node; ``FakeJob`` runs one node's config without an engine;
``MemoryStore`` is the store that needs no threads, so trio's ``autojump_clock`` works.
"""

from ..store._store import MemoryStore as MemoryStore
from ._nodes import FailNode as FailNode
from ._nodes import FakeJob as FakeJob
from ._nodes import SleepNode as SleepNode
from ._nodes import register_test_nodes as register_test_nodes
