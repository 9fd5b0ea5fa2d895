"""The facts a run's figures depend on: cores, CPU, memory, file system, Python,
package and tool versions, the commit; and how much other work shared the cores."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import attrs

from ._spec import REPO_ROOT

__all__ = ["CoreUse", "machine_facts"]

PACKAGES = (
    "hookline",
    "trio",
    "hypercorn",
    "quart",
    "quart-trio",
    "h11",
    "werkzeug",
    "httpx",
    "msgpack",
    "matplotlib",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _file_system(path: Path) -> str | None:
    """The type of the file system holding ``path`` (durable commits cost what its
    fsync costs: on tmpfs they are free and the store figures mean little)."""
    best, kind = "", None
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine_facts(
    workdir: Path, *, wrk: str | None, node: str | None, node_red: str | None
) -> dict[str, object]:
    """What the figures depend on; ``workdir`` is where the SQLite files were written."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_total(),
        "platform": platform.platform(),
        "scratch_file_system": _file_system(workdir),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": wrk,
        "node": node,
        "node_red": node_red,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


@attrs.frozen
class CoreUse:
    """CPU seconds so far: of every core (``busy``, from /proc/stat) and of this run
    (``own``: this process and the servers and generators it waited for), at
    monotonic time ``at``."""

    at: float
    busy: float
    own: float

    @classmethod
    def now(cls) -> CoreUse:
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            busy = 0.0
        mine = os.times()
        own = mine.user + mine.system + mine.children_user + mine.children_system
        return cls(time.monotonic(), busy, own)

    def other_cores(self, earlier: CoreUse) -> float | None:
        """Cores kept busy by other work, on average, since ``earlier`` (None where
        /proc cannot tell). Servers still running are counted as other work."""
        wall = self.at - earlier.at
        if wall <= 0 or self.busy <= earlier.busy:
            return None
        other = (self.busy - earlier.busy) - (self.own - earlier.own)
        return round(max(other, 0.0) / wall, 2)
