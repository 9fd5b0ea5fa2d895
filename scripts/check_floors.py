"""Fail when an installed package is older than the floor pyproject.toml gives it.

The floors sit past known CVEs (docs/security.md, section 11). A venv made before a
floor was raised, or a lock that lags behind pyproject.toml, would keep the old version
quietly; `make test` runs this first so that shows as a failure naming the package.

    python scripts/check_floors.py [--extra test] [--pyproject path]

Exit 0 when every requirement (those whose markers apply here) is installed at or past
its floor; 1 with one line per package otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version


def requirements(pyproject: Path, extras: list[str]) -> list[Requirement]:
    """The project's requirements and those of ``extras`` that apply to this Python."""
    project = tomllib.loads(pyproject.read_text())["project"]
    texts = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        texts.extend(optional[extra])
    found = [Requirement(text) for text in texts]
    # hookline[test] and the like name the project itself: its floors are listed already.
    return [
        req
        for req in found
        if req.name != project["name"] and (req.marker is None or req.marker.evaluate())
    ]


def problems(reqs: list[Requirement]) -> list[str]:
    """One line per requirement that is missing or installed below its specifier."""
    lines = []
    for req in reqs:
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            lines.append(f"{req.name}: not installed (wanted {req.specifier or 'any'})")
            continue
        if req.specifier and not req.specifier.contains(Version(installed), prereleases=True):
            lines.append(f"{req.name}: {installed} installed, wanted {req.specifier}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="also check an extra")
    parser.add_argument(
        "--pyproject", type=Path, default=Path(__file__).resolve().parent.parent / "pyproject.toml"
    )
    args = parser.parse_args(argv)
    lines = problems(requirements(args.pyproject, args.extra))
    for line in lines:
        sys.stderr.write(f"check_floors: {line}\n")
    if lines:
        sys.stderr.write(
            "check_floors: a package is older than its floor in pyproject.toml; "
            "run `make lock` if the lock lags, then reinstall (rm -rf .venv && make test)\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
