"""``hookline test`` and ``hookline deliveries export``: recorded deliveries run again
through a workflow file on a virtual clock, outside nodes answered, differences shown."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from hookline.cli import main
from tests.http.conftest import running_server

EXAMPLES = Path(__file__).parent.parent / "examples"
FORM = EXAMPLES / "workflows" / "form-submission.yaml"
CASES = EXAMPLES / "testing" / "form-submission.cases.jsonl"
MOCKS = EXAMPLES / "testing" / "mocks.yaml"
EXPECT = EXAMPLES / "testing" / "form-submission.expect.yaml"


def in_plain_thread(function: Callable[[list[str]], int], argv: list[str]) -> int:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(function(argv)))
    thread.start()
    thread.join()
    return result[0]


async def hookline_in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``hookline ARGV`` from a trio test: in a thread of its own, not one of trio's
    (``hookline test`` runs trio itself, on a virtual clock)."""
    capsys.readouterr()
    status = await trio.to_thread.run_sync(in_plain_thread, main, list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def hookline(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_example_cases_pass_against_their_recording(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = hookline(capsys, "test", str(FORM), str(CASES))
    assert status == 0, out
    assert "3 passed, 0 failed" in out


def test_mocks_and_expectations_override_the_recording(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = hookline(capsys, "test", str(FORM), str(CASES), "--mocks", str(MOCKS))
    assert status == 1
    assert "FAIL no-owner-yet" in out
    assert '-"failed"\n+"succeeded"' in out  # the mocked mail now goes out

    status, out = hookline(
        capsys, "test", str(FORM), str(CASES), "--mocks", str(MOCKS), "--expect", str(EXPECT)
    )
    assert status == 0, out


def test_catches_a_deliberate_regression_in_the_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The change under test forgets to count the new assignment.
    changed = tmp_path / "form-submission.yaml"
    text = FORM.read_text()
    assert "(owner.assigned || 0) + 1" in text
    changed.write_text(text.replace("(owner.assigned || 0) + 1", "(owner.assigned || 0)"))

    status, out = hookline(capsys, "test", str(changed), str(CASES))

    assert status == 1
    assert "FAIL ada-assigned-to-grace" in out
    assert "--- expected writes\n+++ got writes" in out
    assert '-      "assigned": 3\n+      "assigned": 2' in out
    assert "2 passed, 1 failed" in out


def test_a_changed_answer_is_a_difference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    changed = tmp_path / "form-submission.yaml"
    changed.write_text(FORM.read_text().replace("status: 422", "status: 400"))
    status, out = hookline(capsys, "test", str(changed), str(CASES), "-q")
    assert status == 1
    assert "FAIL invalid-email\n--- expected answer" in out
    assert '-  "status": 422\n+  "status": 400' in out
    assert "ok   " not in out  # -q: failures only


DELAYED = """\
key: reminder
timeout: 3h
trigger: {type: webhook, path: remind}
nodes:
  - {key: wait, type: delay, duration: 2h}
  - key: ping
    type: http
    url: https://chat.example.com/hooks/1
    method: POST
    json: {text: "{{$context.data.text}}"}
  - {key: done, type: end, output: {at: "{{$system.now}}", ping: "{{$nodes.ping.status}}"}}
"""


def test_delays_take_no_time_and_unanswered_nodes_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workflow = tmp_path / "reminder.yaml"
    workflow.write_text(DELAYED)
    case = {
        "id": "two-hours-later",
        "received_at": 1_767_225_600,
        "data": {"text": "stand-up"},
        "jobs": [{"node": "ping", "output": {"status": 200}}],
        "status": "succeeded",
        "output": {"at": "2026-01-01T02:00:00.000Z", "ping": 200},
    }
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(case) + "\n" + json.dumps({**case, "id": "no-ping", "jobs": []}))

    status, out = hookline(capsys, "test", str(workflow), str(cases))

    assert status == 1
    assert "ok   two-hours-later" in out  # two virtual hours, $system.now moved with them
    assert "FAIL no-ping" in out
    assert "no recorded answer for http node 'ping'" in out
    assert "note: http node 'ping' had no answer" in out


def test_a_bad_case_line_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "a", "data": {}}\n{"id": "b", "context": 3}\n')
    status, out = hookline(capsys, "test", str(FORM), str(cases))
    assert status == 1
    assert f"{cases}:2: context: expected an object" in out


QUOTE = """\
key: quote
trigger: {type: webhook, path: quote, mode: sync}
nodes:
  - key: price
    type: http
    method: POST
    url: "{{$context.data.prices}}"
    json: {item: "{{$context.data.item}}"}
  - key: saved
    type: create
    collection: quotes
    values: {item: "{{$context.data.item}}", total: "{{$nodes.price.data.output.total}}"}
  - {key: reply, type: response, status: 200, body: {total: "{{$nodes.saved.total}}"}}
"""

PRICES = """\
key: prices
trigger: {type: webhook, path: prices, mode: sync}
nodes:
  - {key: out, type: end, output: {total: 42}}
"""


async def test_export_recorded_deliveries_then_test_a_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    async with running_server((QUOTE, PRICES), http_allow_hosts=["127.0.0.1"]) as server:
        prices = f"{server.url}/api/webhooks/prices"
        for item in ("tea", "cake"):
            answer = await server.client.post(
                "/api/webhooks/quote", json={"item": item, "prices": prices}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"total": 42}

        capsys.readouterr()
        argv = ["deliveries", "export", "--workflow", "quote", "--url", server.url]
        # Its own thread, not one of trio's: the export runs trio (a virtual clock).
        status = await trio.to_thread.run_sync(in_plain_thread, main, argv)
        exported = capsys.readouterr().out
    assert status == 0
    lines = [json.loads(line) for line in exported.splitlines()]
    assert [case["context"]["data"]["item"] for case in lines] == ["tea", "cake"]
    tea = lines[0]
    assert tea["answer"] == {"status": 200}
    assert tea["status"] == "succeeded"
    assert {job["node"] for job in tea["jobs"]} == {"price", "saved"}
    assert tea["writes"] == [
        {
            "node": "saved",
            "type": "create",
            "collection": "quotes",
            "values": {"item": "tea", "total": 42},
        }
    ]

    cases = tmp_path / "cases.jsonl"
    cases.write_text(exported)
    workflow = tmp_path / "quote.yaml"
    workflow.write_text(QUOTE)
    # The server is gone: the http node is answered from the recording.
    status, out = await hookline_in_thread(capsys, "test", str(workflow), str(cases))
    assert status == 0, out

    workflow.write_text(QUOTE.replace('item: "{{$context.data.item}}", total', "item: x, total"))
    status, out = await hookline_in_thread(capsys, "test", str(workflow), str(cases))
    assert status == 1
    assert '-      "item": "tea",\n+      "item": "x",' in out
    assert "0 passed, 2 failed" in out


LOOPED = """\
key: fan-out
trigger: {type: webhook, path: fan-out, mode: sync}
nodes:
  - key: each
    type: loop
    items: "{{$context.data.ids}}"
    body:
      - key: lookup
        type: http
        url: "https://api.example.com/items/{{$scopes.each.item}}"
      - key: label
        type: code
        code: "return nodes.lookup.data.name.toUpperCase();"
  - {key: out, type: end, output: "{{$nodes.each}}"}
"""


def test_loop_iterations_are_answered_by_scope_and_code_runs_unless_answered(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workflow = tmp_path / "fan-out.yaml"
    workflow.write_text(LOOPED)
    jobs = [
        {"node": "lookup", "scope": f"each[{i}]", "output": {"data": {"name": name}}}
        for i, name in enumerate(["tea", "cake"])
    ]
    case = {"id": "two", "data": {"ids": [7, 8]}, "jobs": jobs, "status": "succeeded"}
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(case) + "\n")
    status, out = hookline(capsys, "test", str(workflow), str(cases))
    assert status == 0, out

    # With --answer-code the code node needs a recorded answer too: none here.
    status, out = hookline(capsys, "test", str(workflow), str(cases), "--answer-code")
    assert status == 1
    assert "no recorded answer for code node 'label' (scope each[0])" in out


def test_a_workflow_that_does_not_load_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(FORM.read_text().replace("type: condition", "type: conditon"))
    status, out = hookline(capsys, "test", str(broken), str(CASES))
    assert status == 2
    assert "nodes[1].type: expected a node type" in out
