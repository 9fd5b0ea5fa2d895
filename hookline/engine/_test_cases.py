"""Test cases of ``hookline test``: what a case file holds, and how a run is judged.

A case is one JSON object per line (``hookline deliveries export`` writes them):

- ``id``: names the case (the recorded delivery's id);
- ``context``: the ``$context`` the execution started from (``data``, ``headers`` ...);
  a hand-written case may give ``data`` (and ``headers``, ``query``) instead;
- ``received_at``: unix seconds, where the run's clock starts (``$system.now``);
- ``jobs``: the recorded jobs of answered nodes: ``node``, ``scope``, ``status``,
  ``output``, ``error``;
- what to expect: ``answer`` (``{status, body?}``), ``status``, ``output``, ``error``
  and ``writes`` (the collection writes, each a node's rendered fields); a field left
  out is not compared.

Nothing here waits: :func:`compare` decides, :func:`format_differences` explains.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._test_run import Recorded, TestRunResult

__all__ = [
    "EXPECTED_FIELDS",
    "Difference",
    "TestCase",
    "answer_json",
    "case_from_records",
    "compare",
    "format_differences",
    "parse_case",
]

EXPECTED_FIELDS = ("answer", "status", "output", "error", "writes")
EXECUTION_PLACEHOLDER = "<execution>"


@attrs.frozen
class TestCase:
    """One parsed case: where it starts, the recorded answers, what to expect."""

    __test__ = False  # not a pytest class

    id: str
    context: Mapping[str, Any]
    received_at: float
    jobs: Mapping[tuple[str, str], Recorded]
    expected: Mapping[str, Any]
    execution_id: str | None = None


def parse_case(value: object, where: str) -> TestCase:
    """A case from one parsed line. Raises :class:`ValueError` naming ``where`` (the
    file and line) and the field that is wrong."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    case_id = value.get("id", where)
    if not isinstance(case_id, str | int):
        raise ValueError(f"{where}: id: expected a string")
    context = value.get("context")
    if context is None:
        context = {
            "data": value.get("data"),
            "headers": value.get("headers") or {},
            "query": value.get("query") or {},
            "method": value.get("method", "POST"),
        }
    if not isinstance(context, Mapping):
        raise ValueError(f"{where}: context: expected an object")
    received_at = value.get("received_at", 1_767_225_600.0)
    if not isinstance(received_at, int | float) or isinstance(received_at, bool):
        raise ValueError(f"{where}: received_at: expected unix seconds")
    jobs: dict[tuple[str, str], Recorded] = {}
    raw_jobs = value.get("jobs") or []
    if not isinstance(raw_jobs, list):
        raise ValueError(f"{where}: jobs: expected a list")
    for index, job in enumerate(raw_jobs):
        if not isinstance(job, Mapping) or not isinstance(job.get("node"), str):
            raise ValueError(f"{where}: jobs[{index}]: expected an object with a 'node'")
        jobs[(job["node"], str(job.get("scope") or ""))] = recorded(job, f"{where}: jobs[{index}]")
    expected = {name: value[name] for name in EXPECTED_FIELDS if name in value}
    if "answer" in expected and not isinstance(expected["answer"], Mapping):
        raise ValueError(f"{where}: answer: expected an object such as {{status: 202}}")
    execution_id = value.get("execution_id")
    return TestCase(
        id=str(case_id),
        context=context,
        received_at=float(received_at),
        jobs=jobs,
        expected=expected,
        execution_id=execution_id if isinstance(execution_id, str) else None,
    )


def recorded(value: Mapping[str, Any], where: str) -> Recorded:
    """A recorded or mocked answer: ``{output: ...}`` or ``{error: "..."}`` (or a
    job record's ``status``, ``output`` and ``error``)."""
    error = value.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"{where}: error: expected a string")
    status = value.get("status", "failed" if error is not None else "succeeded")
    if not isinstance(status, str):
        raise ValueError(f"{where}: status: expected a job status")
    return Recorded(status=status, output=value.get("output"), error=error)


def answer_json(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """An answer as cases hold it: its status, and its body (parsed when JSON)."""
    text = body.decode("utf-8", "replace")
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    parsed: Any = text
    if "json" in content_type:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    return {"status": status, "body": parsed}


def case_from_records(
    delivery: Mapping[str, Any], execution: Mapping[str, Any], answered: frozenset[str]
) -> dict[str, Any]:
    """A case from a delivery and its execution as the admin API shows them (the
    execution with its ``jobs``): its answered nodes' last attempts, and what it ended
    with."""
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    for job in execution.get("jobs") or []:
        if job.get("type") in answered and job.get("status") != "running":
            last[(job["node"], job.get("scope") or "")] = job
    jobs = [
        {
            "node": job["node"],
            "scope": job.get("scope") or "",
            "type": job.get("type"),
            "status": job.get("status"),
            "output": job.get("output"),
            "error": job.get("error"),
        }
        for job in last.values()
    ]
    case: dict[str, Any] = {
        "id": delivery["id"],
        "workflow": execution.get("workflow"),
        "version": execution.get("workflow_version"),
        "execution_id": execution.get("id"),
        "received_at": delivery.get("received_at"),
        "context": execution.get("context"),
        "jobs": jobs,
    }
    if delivery.get("status") is not None:
        case["answer"] = {"status": delivery["status"]}
    case["status"] = execution.get("status")
    case["output"] = execution.get("output")
    case["error"] = execution.get("error")
    return case


@attrs.frozen
class Difference:
    """One field of a case that came out otherwise than expected."""

    field: str
    expected: Any
    got: Any


def compare(case: TestCase, result: TestRunResult) -> list[Difference]:
    """The expected fields of ``case`` that ``result`` does not match. The execution's
    own id (recorded and new) reads ``<execution>`` on both sides."""
    got: dict[str, Any] = {
        "status": result.status,
        "output": result.output,
        "error": result.error,
        "writes": list(result.writes),
    }
    if result.answer is not None:
        got["answer"] = answer_json(result.answer.status, result.answer.headers, result.answer.body)
    else:
        got["answer"] = None
    differences = []
    for name in EXPECTED_FIELDS:
        if name not in case.expected:
            continue
        expected = _placeholders(case.expected[name], case.execution_id)
        actual = _placeholders(got[name], result.execution_id)
        if name == "answer" and isinstance(expected, Mapping) and isinstance(actual, Mapping):
            # Only the parts the case names: a recording knows the status alone.
            actual = {key: actual.get(key) for key in expected}
        if _canonical(expected) != _canonical(actual):
            differences.append(Difference(name, expected, actual))
    return differences


def _placeholders(value: Any, execution_id: str | None) -> Any:
    if not execution_id:
        return value
    text = json.dumps(value, ensure_ascii=False)
    return json.loads(text.replace(execution_id, EXECUTION_PLACEHOLDER))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def format_differences(differences: Sequence[Difference]) -> str:
    """A readable diff of each field: ``-`` lines expected, ``+`` lines got."""
    blocks = []
    for difference in differences:
        expected = _pretty(difference.expected)
        got = _pretty(difference.got)
        lines = difflib.unified_diff(
            expected, got, f"expected {difference.field}", f"got {difference.field}", lineterm=""
        )
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
