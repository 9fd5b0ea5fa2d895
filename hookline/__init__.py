"""hookline: an actor-based webhook workflow engine on trio.

The public API; everything else lives in private modules and may change.

``import hookline`` loads the engine only: the HTTP server (``create_app``, ``serve``:
Quart, hypercorn) is imported the first time one of them is used.
"""

import typing as _typing

from . import errors as errors
from ._config import ServerConfig as ServerConfig
from ._config import load_config as load_config
from .definition import JSON as JSON
from .engine import Admission as Admission
from .engine import Delivery as Delivery
from .engine import Engine as Engine
from .engine import EngineStatistics as EngineStatistics
from .engine import ExecutionOutcome as ExecutionOutcome
from .engine import RestartPolicy as RestartPolicy
from .engine import Workflow as Workflow
from .engine import WorkflowStatistics as WorkflowStatistics
from .engine import load_workflow_data as load_workflow_data
from .engine import load_workflow_text as load_workflow_text
from .engine import load_workflows as load_workflows
from .engine import open_engine as open_engine
from .errors import HooklineError as HooklineError
from .nodes import NodeCall as NodeCall
from .store import Answer as Answer
from .store import MemoryStore as MemoryStore
from .store import Store as Store
from .store import open_store as open_store

__version__ = "0.1.0"

# Public names whose modules are imported on first use (they cost more than the engine).
_LAZY = {"create_app": ".http._app", "serve": ".http._serve"}

if _typing.TYPE_CHECKING:
    from .http._app import create_app as create_app
    from .http._serve import serve as serve
else:
    # Hidden from type checkers, which see the imports above (and flag any other name).
    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'hookline' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
