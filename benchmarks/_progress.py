"""Progress bars while measuring: one for the whole run, one per timed phase.

The load generators block (wrk is a subprocess, the built-in ones run their own trio
loop), so a small thread moves each phase's bar by the clock.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

__all__ = ["RunProgress"]


class RunProgress:
    """A rich :class:`Progress` with an overall bar of ``steps`` and timed phase bars."""

    def __init__(self, console: Console, steps: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TextColumn("{task.fields[unit]}"),
            console=console,
            transient=True,
        )
        self._overall = self.progress.add_task("benchmarks", total=max(steps, 1), unit="")
        self._steps = steps
        self._done = 0
        self._update_overall()

    @property
    def console(self) -> Console:
        return self.progress.console

    @property
    def live(self) -> bool:
        """Bars are drawn on a terminal only; in a CI log each step prints one line."""
        return self.progress.console.is_terminal

    def __enter__(self) -> RunProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def _update_overall(self) -> None:
        self.progress.update(
            self._overall, completed=self._done, unit=f"{self._done}/{self._steps} scenarios"
        )

    def step_done(self) -> None:
        self._done += 1
        self._update_overall()

    @contextlib.contextmanager
    def timed(self, label: str, seconds: float) -> Iterator[None]:
        """A bar filling over ``seconds`` while the block runs (removed after)."""
        if not self.live:
            yield
            return
        total = max(seconds, 0.1)
        task: TaskID = self.progress.add_task(label, total=total, unit=f"0/{seconds:.0f} s")
        stop = threading.Event()
        start = time.monotonic()

        def tick() -> None:
            while not stop.wait(0.25):
                elapsed = time.monotonic() - start
                self.progress.update(
                    task, completed=min(total, elapsed), unit=f"{elapsed:.0f}/{seconds:.0f} s"
                )

        thread = threading.Thread(target=tick, name="bench-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.progress.remove_task(task)
