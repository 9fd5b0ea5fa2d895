"""The commands beside the scenarios: ``prepare``, ``cleanup``, ``compare``, ``locust``.

Each takes its own arguments (``python -m benchmarks prepare --help``) and returns the
exit status: 0 done, 1 failed (compare: a regression), 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._code_targets import code_targets
from ._compare import P99_THRESHOLD, REQS_THRESHOLD, compare_files
from ._flow import flow
from ._hostile import hostile
from ._prepare import PrepareError, cleanup, prepare, prepared_path

__all__ = ["COMMANDS", "redacted"]

Command = Callable[[Sequence[str], Path], int]


def redacted(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of ``--key`` replaced: a command line written into the
    results must not carry the admin key."""
    shown: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            shown.append("$HOOKLINE_ADMIN_KEY")
            hide = False
        elif arg == "--key":
            shown.append(arg)
            hide = True
        elif arg.startswith("--key="):
            shown.append("--key=$HOOKLINE_ADMIN_KEY")
        else:
            shown.append(arg)
    return shown


def _target_parser(prog: str, description: str, results: Path) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {prog}", description=description)
    parser.add_argument("--target", required=True, help="base URL of the deployed hookline")
    parser.add_argument(
        "--key",
        default=os.environ.get("HOOKLINE_ADMIN_KEY"),
        help="an admin key of the target (default: $HOOKLINE_ADMIN_KEY)",
    )
    parser.add_argument("--results", type=Path, default=results, help="the results folder")
    return parser


def _prepare(argv: Sequence[str], results: Path) -> int:
    parser = _target_parser(
        "prepare",
        "Deploy the benchmark workflows on a running hookline through its admin API, "
        "under bench-... keys, signed with a secret generated now and kept in the "
        "results folder; --target runs from this folder use it. Nothing on the server "
        "restarts.",
        results,
    )
    args = parser.parse_args(argv)
    try:
        prepared, refused = prepare(args.target, args.key, args.results)
    except PrepareError as exc:
        print(f"prepare failed: {exc}", file=sys.stderr)
        return 1
    for key, path in prepared.workflows.items():
        print(f"deployed {key} at /api/webhooks/{path}")
    for line in refused:
        print(f"skipped {line} (its scenario will be skipped)")
    print(f"secret and keys kept in {prepared_path(args.results, args.target)}")
    print(
        f"next: python -m benchmarks hookline-async-ingest --target {prepared.target}; "
        f"then python -m benchmarks cleanup --target {prepared.target}"
    )
    return 0


def _cleanup(argv: Sequence[str], results: Path) -> int:
    parser = _target_parser(
        "cleanup",
        "Delete the bench-... workflows from the hookline and forget their secret.",
        results,
    )
    args = parser.parse_args(argv)
    try:
        deleted = cleanup(args.target, args.key, args.results)
    except PrepareError as exc:
        print(f"cleanup failed: {exc}", file=sys.stderr)
        return 1
    print(f"deleted {', '.join(deleted)}" if deleted else "nothing to delete")
    return 0


def _compare(argv: Sequence[str], results: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks compare",
        description="Each scenario's change from OLD to NEW, weighed against the noise of "
        "the runs (the range of their --rounds). Exit 1 when a figure regressed: the "
        "ranges are apart and req/s fell by more than --threshold percent or p99 rose "
        "by more than --latency-threshold percent; 2 for unreadable input.",
    )
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument(
        "--threshold", type=float, default=REQS_THRESHOLD, help="req/s drop in %% (10)"
    )
    parser.add_argument(
        "--latency-threshold", type=float, default=P99_THRESHOLD, help="p99 rise in %% (25)"
    )
    args = parser.parse_args(argv)
    try:
        table, regressed = compare_files(
            args.old,
            args.new,
            threshold=args.threshold,
            latency_threshold=args.latency_threshold,
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(table)
    return 1 if regressed else 0


def _locust(argv: Sequence[str], results: Path) -> int:
    from ._locust import main

    return main(argv, results)


COMMANDS: dict[str, tuple[str, Command]] = {
    "prepare": ("deploy the benchmark workflows on --target (admin API)", _prepare),
    "cleanup": ("remove them from --target", _cleanup),
    "compare": ("OLD.json NEW.json: each scenario's change beside the noise", _compare),
    "locust": ("export|run|merge: a scenario as a Locust test over many machines", _locust),
    "hostile": ("issue 13: refused 1 MB requests vs the disk, a ReDoS vs /healthz", hostile),
    "code": ("the code node's targets: req/s, memory bombs, p99 while scripts spin", code_targets),
    "flow": ("issue 17: waits against delays, throttle precision, debounce, batch", flow),
}
