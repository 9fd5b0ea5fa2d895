"""Which definition an execution ran with, and how stored definition texts are keyed.

An execution records the version of its workflow's definition; the admin API and the
UI draw its node tree from that version, falling back to the current definition when
the stored one is gone or no longer loads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Literal

import attrs

from ..engine._definition import Workflow
from ..engine._engine import Engine
from ..engine._loader import load_workflow_text
from ..errors import DefinitionError
from ..nodes._call import NodeFunction
from ..store._records import ExecutionRecord

__all__ = ["RanWith", "definition_digest", "definition_format", "ran_with"]


def definition_digest(text: str) -> str:
    """The digest a definition text is stored under (as the engine saves it)."""
    return hashlib.sha256(text.encode()).hexdigest()


def definition_format(text: str) -> Literal["json", "yaml"]:
    """``json`` for a definition written as a JSON object, else ``yaml``."""
    if text.lstrip().startswith("{"):
        try:
            return "json" if isinstance(json.loads(text), dict) else "yaml"
        except ValueError:
            pass
    return "yaml"


@functools.lru_cache(maxsize=64)
def _load_version(
    key: str, version: int, text: str, nodes: tuple[tuple[str, NodeFunction], ...]
) -> Workflow | None:
    # Cached: a live execution page reloads every second. Stored text never changes
    # under a (key, version), and the text is part of the cache key anyway. ``nodes``:
    # the engine's own node types, as a key.
    suffix = definition_format(text)
    try:
        return load_workflow_text(
            text, source=f"{key}@{version}.{suffix}", env=os.environ, nodes=dict(nodes)
        )
    except DefinitionError:
        # Secrets it named may be gone, or node types unregistered since.
        return None


@attrs.frozen
class RanWith:
    """The definition an execution's node tree is drawn from.

    ``version`` is the stored version the execution ran with (None: not recorded, as
    for executions from before versions were kept). ``changed``: the workflow's current
    definition is another one. ``fallback``: that version could not be used (not
    stored, or it no longer loads), so ``workflow`` is the current definition.
    ``workflow`` is None when the workflow is gone and nothing else could be used.
    """

    workflow: Workflow | None
    version: int | None = None
    changed: bool = False
    fallback: bool = False


async def ran_with(engine: Engine, record: ExecutionRecord) -> RanWith:
    """The definition ``record`` ran with: its stored version when that still loads,
    else the workflow's current definition. Never raises for a bad stored version."""
    current = engine.workflows.get(record.workflow)
    version = record.workflow_version
    if version is None:
        return RanWith(current)
    stored = await engine.store.get_workflow_version(record.workflow, version)
    if stored is None:
        return RanWith(current, version, fallback=True)
    if current is not None and definition_digest(current.text) == stored.digest:
        return RanWith(current, version)
    nodes = tuple(sorted(engine.nodes.items()))
    loaded = _load_version(record.workflow, version, stored.source, nodes)
    if loaded is None:
        return RanWith(current, version, changed=True, fallback=True)
    return RanWith(loaded, version, changed=True)
