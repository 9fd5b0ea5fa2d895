"""The store: the store actor (the only writer), its records and its backends."""

from ._backend import StoreBackend as StoreBackend
from ._memory import MemoryBackend as MemoryBackend
from ._records import Answer as Answer
from ._records import DeliveryRecord as DeliveryRecord
from ._records import ExecutionRecord as ExecutionRecord
from ._records import IdempotencyRecord as IdempotencyRecord
from ._records import JobRecord as JobRecord
from ._records import Page as Page
from ._records import WorkflowRecord as WorkflowRecord
from ._sqlite import SQLiteBackend as SQLiteBackend
from ._store import MemoryStore as MemoryStore
from ._store import Store as Store
from ._store import StoreStatistics as StoreStatistics
from ._store import open_store as open_store
