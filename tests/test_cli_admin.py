"""The admin commands against a running server: main(argv) -> int, run in a thread
while the server runs in the test's trio loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from hookline.cli import main
from tests.conftest import StoreFactory
from tests.http.conftest import STANDARD, Server, running_server, wait_until

GREET = """\
key: greet
trigger: {type: webhook, path: greet, mode: sync}
nodes:
  - {key: out, type: end, output: {hello: "{{$context.data.name}}"}}
"""


@pytest.fixture
async def server(make_store: StoreFactory) -> AsyncIterator[Server]:
    async with running_server(STANDARD, store=make_store()) as running:
        yield running


async def run(
    server: Server, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Run ``hookline ARGV --url <server>`` and return its status, stdout and stderr."""
    capsys.readouterr()
    status = await trio.to_thread.run_sync(main, [*argv, "--url", server.url])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def run_json(server: Server, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = await run(server, capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


async def test_workflows_list_show_and_toggle(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = await run(server, capsys, "workflows", "list")
    assert status == 0
    assert "orders" in out
    assert "POST,PUT /api/webhooks/orders/{id}" in out

    status, out, _ = await run(server, capsys, "workflows", "show", "steps")
    assert status == 0
    assert "key: steps" in out

    assert (await run(server, capsys, "workflows", "disable", "orders"))[0] == 0
    assert not server.engine.workflows["orders"].enabled
    listed = await run_json(server, capsys, "workflows", "list")
    assert {w["key"]: w["enabled"] for w in listed["workflows"]}["orders"] is False


async def test_workflows_apply_puts_files_and_reports_invalid_ones(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = tmp_path / "greet.yaml"
    good.write_text(GREET)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GREET.replace("key: greet", "key: bad").replace("type: end", "type: warp"))

    status, out, _ = await run(server, capsys, "workflows", "apply", str(good))
    assert status == 0
    assert "applied greet" in out
    assert "greet" in server.engine.workflows

    status, _, err = await run(server, capsys, "workflows", "apply", str(bad))
    assert status == 1
    assert "422" in err
    assert "nodes[0].type" in err
    assert "bad" not in server.engine.workflows


async def test_executions_list_show_draws_the_tree(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    await server.client.post("/api/webhooks/fails", json={})

    listed = await run_json(server, capsys, "executions", "list", "--status", "failed")
    assert [e["workflow"] for e in listed["executions"]] == ["fails"]

    status, out, _ = await run(server, capsys, "executions", "show", ok["execution_id"])
    assert status == 0
    lines = out.splitlines()
    assert ok["execution_id"] in lines[0]
    # Nodes in tree order, each with its status; branches as labels; a not-run node.
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in (
            "first set succeeded",
            "big condition succeeded",
            "then",
            "large set not_run",
            "else",
            "small set succeeded",
        )
    ]
    assert order == sorted(order)
    assert " ms" in out  # each finished job's timing

    status, out, _ = await run(server, capsys, "executions", "list", "--workflow", "steps")
    assert status == 0
    assert ok["execution_id"] in out


async def test_replay_retry_cancel(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    first = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()

    replayed = await run_json(server, capsys, "executions", "replay", first["execution_id"])
    assert replayed["execution_id"] != first["execution_id"]
    await wait_until(lambda: server.engine.pending() == 0)

    status, _, err = await run(server, capsys, "executions", "retry", first["execution_id"])
    assert status == 1
    assert "409" in err
    status, _, err = await run(server, capsys, "executions", "cancel", first["execution_id"])
    assert status == 1
    assert "409" in err
    status, _, err = await run(server, capsys, "executions", "show", "01NOPE")
    assert status == 1
    assert "404" in err


async def test_retry_names_the_execution_it_queued_again(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    # A retry continues the failed execution under its own id (the API answers that
    # id); the message must not call it a new one.
    failed = (await server.client.post("/api/webhooks/fails", json={})).json()
    await wait_until(lambda: server.engine.pending() == 0)
    status, out, err = await run(server, capsys, "executions", "retry", failed["execution_id"])
    assert status == 0, err
    assert out.strip() == f"retry: execution {failed['execution_id']} queued again"
    status, out, err = await run(server, capsys, "executions", "replay", failed["execution_id"])
    assert status == 0, err
    assert out.startswith("replay: new execution ")
    assert failed["execution_id"] not in out


async def test_deliveries_list_and_show(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    await server.client.post("/api/webhooks/nowhere", json={})
    await server.client.post(
        "/api/webhooks/orders/1", json={"n": 1}, headers={"authorization": "Bearer s3"}
    )
    await server.engine.store.flush()

    rejected = await run_json(server, capsys, "deliveries", "list", "--verdict", "rejected")
    (only,) = rejected["deliveries"]
    assert only["path"] == "/api/webhooks/nowhere"

    status, out, _ = await run(server, capsys, "deliveries", "list")
    assert status == 0
    assert "rejected" in out
    assert "accepted" in out

    accepted = await run_json(server, capsys, "deliveries", "list", "--verdict", "accepted")
    status, out, _ = await run(
        server, capsys, "deliveries", "show", accepted["deliveries"][0]["id"]
    )
    assert status == 0
    assert "POST /api/webhooks/orders/1" in out
    assert "authorization: [redacted]" in out
    assert '{"n":1}' in out.replace(" ", "")


async def test_the_admin_key_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_server(STANDARD, admin_keys=["k-cli"]) as server:
        status, _, err = await run(server, capsys, "executions", "list")
        assert status == 1
        assert "401" in err
        monkeypatch.setenv("HOOKLINE_ADMIN_KEY", "k-cli")
        status, _, _ = await run(server, capsys, "executions", "list")
        assert status == 0


def test_an_unreachable_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["executions", "list", "--url", "http://127.0.0.1:9"])
    assert status == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
