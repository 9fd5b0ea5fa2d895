"""``hookline test``: run recorded (or written) cases through a workflow file, on a
virtual clock, with outside nodes answered, and say what came out otherwise.

Each case runs in an engine of its own, in this process, with an in-memory store:
delays take no time (trio's ``MockClock`` jumps ahead whenever everything waits), no
request leaves the machine. See ``docs/testing-workflows.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import trio
import trio.testing

from .definition import parse_yaml
from .engine._test_cases import Difference, TestCase, compare, format_differences, parse_case
from .engine._test_cases import recorded as parse_recorded
from .engine._test_run import (
    CODE_TYPES,
    COLLECTION_READS,
    COLLECTION_WRITES,
    OUTSIDE_TYPES,
    Recorded,
    Recording,
    TestRunResult,
    context_delivery,
    load_for_test,
    run_delivery,
)

__all__ = ["CaseOutcome", "TestEnv", "read_cases", "run_cases", "test_command"]


class TestEnv(Mapping[str, str]):
    """The environment of a test run: the process's variables, and for any other name
    a stand-in (``test-env-NAME``), so that a workflow naming secrets CI does not have
    (``env:GITHUB_SECRET``) still loads."""

    __test__ = False  # not a pytest class

    def __init__(self, base: Mapping[str, str] | None = None) -> None:
        self.base = dict(os.environ if base is None else base)

    def __getitem__(self, name: str) -> str:
        return self.base.get(name, f"test-env-{name}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)


@attrs.frozen
class CaseOutcome:
    """One case's run and how it differs from what was expected."""

    case: TestCase
    result: TestRunResult
    differences: tuple[Difference, ...]


def read_cases(path: Path, expectations: Mapping[str, Mapping[str, Any]]) -> list[TestCase]:
    """The cases of a JSON lines file, each with its expectations (by case id) applied
    over what it recorded. Raises ValueError naming the line that is wrong."""
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{where}: not JSON: {exc}") from None
        case = parse_case(value, where)
        override = expectations.get(case.id)
        if override is not None:
            case = attrs.evolve(case, expected={**case.expected, **override})
        cases.append(case)
    return cases


def read_expectations(path: Path) -> dict[str, Mapping[str, Any]]:
    """``cases: {<case id>: {status, output, answer, error, writes}}`` of a YAML file."""
    document = parse_yaml(path.read_text(), source=str(path))
    cases = document.get("cases") if isinstance(document, Mapping) else None
    if not isinstance(cases, Mapping):
        raise ValueError(f"{path}: expected 'cases:' mapping case ids to what they should give")
    found: dict[str, Mapping[str, Any]] = {}
    for case_id, expected in cases.items():
        if not isinstance(expected, Mapping):
            raise ValueError(f"{path}: cases.{case_id}: expected an object")
        found[str(case_id)] = expected
    return found


def read_mocks(path: Path) -> dict[str, Recorded]:
    """``mocks: {<node key>: {output: ...} | {error: "..."}}`` of a YAML file."""
    document = parse_yaml(path.read_text(), source=str(path))
    mocks = document.get("mocks") if isinstance(document, Mapping) else None
    if not isinstance(mocks, Mapping):
        raise ValueError(f"{path}: expected 'mocks:' mapping node keys to {{output: ...}}")
    found = {}
    for node, answer in mocks.items():
        if not isinstance(answer, Mapping):
            raise ValueError(f"{path}: mocks.{node}: expected {{output: ...}} or {{error: ...}}")
        found[str(node)] = parse_recorded(answer, f"{path}: mocks.{node}")
    return found


async def run_cases(
    text: str,
    source: str,
    cases: Sequence[TestCase],
    *,
    mocks: Mapping[str, Recorded] | None = None,
    answer: frozenset[str] = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS,
    env: Mapping[str, str] | None = None,
) -> list[CaseOutcome]:
    """Run each case through definition ``text``, one after another, and compare.
    Node types in ``answer`` are answered from the case's recording (or ``mocks``),
    ``code`` nodes run unless it names them. Raises
    :class:`~hookline.errors.DefinitionError` when the text does not load."""
    env = TestEnv() if env is None else env
    live = CODE_TYPES - answer
    outcomes = []
    for case in cases:
        recording = Recording(case.jobs, mocks, live=live)
        workflow = load_for_test(
            text, recording, source=source, env=env, answer=answer | CODE_TYPES
        )
        delivery = context_delivery(workflow.key, case.context, case.received_at)
        result = await run_delivery(workflow, recording, delivery, env=env)
        outcomes.append(CaseOutcome(case, result, tuple(compare(case, result))))
    return outcomes


def run_on_virtual_clock(
    text: str,
    source: str,
    cases: Sequence[TestCase],
    **options: Any,
) -> list[CaseOutcome]:
    """:func:`run_cases` in a trio run of its own whose clock jumps over every wait."""

    async def main() -> list[CaseOutcome]:
        return await run_cases(text, source, cases, **options)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@click.command("test")
@click.argument("workflow_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("cases_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--expect",
    "expect_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML 'cases: {id: {status, output, answer, writes}}' overriding the recording.",
)
@click.option(
    "--mocks",
    "mocks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML 'mocks: {node key: {output: ...}}' answering nodes in every case.",
)
@click.option(
    "--answer-code",
    is_flag=True,
    help="Answer code nodes from the recording too, instead of running them.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print failing cases only.")
def test_command(
    *,
    workflow_file: Path,
    cases_file: Path,
    expect_file: Path | None,
    mocks_file: Path | None,
    answer_code: bool,
    quiet: bool,
) -> None:
    """Run CASES_FILE (JSON lines: see `hookline deliveries export`) through
    WORKFLOW_FILE on a virtual clock; exit 1 if any case gives another answer, output,
    error or collection writes than recorded or expected."""
    try:
        expectations = read_expectations(expect_file) if expect_file is not None else {}
        mocks = read_mocks(mocks_file) if mocks_file is not None else {}
        cases = read_cases(cases_file, expectations)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    answer = OUTSIDE_TYPES | COLLECTION_WRITES | COLLECTION_READS
    if answer_code:
        answer |= {"code"}
    outcomes = run_on_virtual_clock(
        workflow_file.read_text(), str(workflow_file), cases, mocks=mocks, answer=answer
    )
    failed = [outcome for outcome in outcomes if outcome.differences]
    for outcome in outcomes:
        if outcome.differences:
            click.secho(f"FAIL {outcome.case.id}", fg="red", bold=True)
            click.echo(format_differences(outcome.differences))
            if outcome.result.error and all(d.field != "error" for d in outcome.differences):
                click.echo(f"  error: {outcome.result.error}")
            for call in outcome.result.calls:
                if call["from"] == "none":
                    click.echo(f"  note: {call['type']} node '{call['node']}' had no answer")
        elif not quiet:
            click.secho(f"ok   {outcome.case.id}", fg="green")
    summary = f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
    click.secho(summary, fg="red" if failed else "green", bold=True)
    if failed:
        raise click.exceptions.Exit(1)
