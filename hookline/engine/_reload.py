"""Hot reload: what a reloaded workflows folder changes, and the task that watches it.

:func:`plan_reload` decides, without I/O, which workflows a freshly loaded folder
makes current: every valid file's workflow; for a file that no longer validates, the
version loaded before keeps serving (its error is reported, nothing is retired); a
file that is gone retires its workflow, as the admin API's delete does. A file whose
text did not change keeps the very object already running, so touching it (or the
admin API writing the file it just applied) starts no new supervisor.

:func:`watch_workflows` carries the plan out whenever the folder changes
(``watchfiles``, on trio through anyio) and :func:`reload_on_hangup` on SIGHUP.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

from ..errors import DefinitionError
from ._definition import Workflow
from ._loader import WORKFLOW_SUFFIXES, LoadResult

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "ReloadPlan",
    "invalid_sources",
    "keep_reloaded",
    "plan_reload",
    "reload_on_hangup",
    "watch_workflows",
]

log = logging.getLogger("hookline.engine")

#: How long the watcher groups changes before it reloads (milliseconds): an editor's
#: save (write a temporary file, rename it) is one reload, well inside the 2 s promised.
DEBOUNCE_MS = 300


@attrs.frozen
class ReloadPlan:
    """The workflows to apply after a reload, and which of them are kept from before
    because their file no longer validates (key -> the file's errors)."""

    workflows: tuple[Workflow, ...]
    kept: Mapping[str, tuple[DefinitionError, ...]]


def plan_reload(current: Mapping[str, Workflow], result: LoadResult) -> ReloadPlan:
    """The workflows a reload makes current, from those running now (``current``, by
    key) and the folder just loaded (``result``)."""
    failed = invalid_sources(result.errors)
    wanted: dict[str, Workflow] = {}
    for workflow in result.workflows:
        old = current.get(workflow.key)
        same = old is not None and old.text == workflow.text and old.source == workflow.source
        wanted[workflow.key] = old if same and old is not None else workflow
    kept: dict[str, tuple[DefinitionError, ...]] = {}
    for key, old in current.items():
        errors = failed.get(old.source)
        if errors is not None and key not in wanted:
            wanted[key] = old
            kept[key] = errors
    return ReloadPlan(workflows=tuple(wanted.values()), kept=kept)


def invalid_sources(errors: tuple[DefinitionError, ...]) -> dict[str, tuple[DefinitionError, ...]]:
    """The errors of a load, by the file they are about."""
    found: dict[str, tuple[DefinitionError, ...]] = {}
    for error in errors:
        found[error.source] = (*found.get(error.source, ()), error)
    return found


def _is_definition(_change: object, path: str) -> bool:
    name = Path(path).name
    # The admin API writes ".<name>.tmp" first, editors leave "~" and ".swp" files.
    return not name.startswith(".") and name.endswith(WORKFLOW_SUFFIXES)


async def watch_workflows(
    engine: Engine, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Reload ``engine``'s workflows folder whenever a definition file in it is added,
    changed or removed, until cancelled. Does nothing (but wait) without a folder."""
    from watchfiles import awatch  # imported here: only a serving process watches

    folder = engine.folder
    if folder is None or not folder.is_dir():
        task_status.started()
        await trio.sleep_forever()
        return
    # awatch waits for changes in a thread that trio cannot interrupt: it checks this
    # event every step (50 ms), so setting it first makes cancellation prompt.
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_set_when_cancelled, stop)
        task_status.started()
        async for _changes in awatch(
            folder, watch_filter=_is_definition, debounce=DEBOUNCE_MS, stop_event=stop
        ):
            await _reload(engine, "the folder changed")
        nursery.cancel_scope.cancel()


async def _set_when_cancelled(stop: trio.Event) -> None:
    try:
        await trio.sleep_forever()
    finally:
        stop.set()


async def reload_on_hangup(
    engine: Engine, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Reload ``engine``'s workflows folder at each SIGHUP, until cancelled."""
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        async for _signum in signals:
            await _reload(engine, "SIGHUP")


async def _reload(engine: Engine, why: str) -> None:
    errors = await engine.reload()
    log.info(
        "workflows reloaded (%s): %d loaded, %d invalid files",
        why,
        len(engine.workflows),
        len(errors),
    )


async def keep_reloaded(
    engine: Engine, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
) -> None:
    """Watch the folder and SIGHUP both; started with the scope that stops them."""
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_workflows, engine)
        await nursery.start(reload_on_hangup, engine)
        task_status.started(nursery.cancel_scope)
