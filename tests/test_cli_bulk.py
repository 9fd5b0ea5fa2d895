"""``hookline bulk``: a dry run counts, a followed run reports its end, show and cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio

from hookline.cli import main
from hookline.testing import register_test_nodes
from tests.conftest import FLAKY_WORKFLOW, StoreFactory
from tests.http.conftest import Server, running_server

register_test_nodes()

FLAKY = FLAKY_WORKFLOW


@pytest.fixture
async def server(make_store: StoreFactory) -> AsyncIterator[Server]:
    async with running_server([FLAKY], store=make_store()) as running:
        yield running


async def run(
    server: Server, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    status = await trio.to_thread.run_sync(main, [*argv, "--url", server.url])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_dry_run_then_a_followed_replay_then_show(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in (-1, -2, 3):
        outcome = await server.engine.run("flaky", data={"n": n})
        assert outcome.status in ("failed", "succeeded")
    status, out, _ = await run(server, capsys, "bulk", "retry", "--status", "failed", "--dry-run")
    assert (status, out.strip()) == (0, "2 executions would be retried")
    status, out, err = await run(
        server, capsys, "bulk", "replay", "--error", "POSITIVE", "--wait", "--json"
    )
    shown = json.loads(out)
    assert status == 0, err
    assert (shown["state"], shown["done"], shown["total"]) == ("finished", 2, 2)
    status, out, _ = await run(server, capsys, "bulk", "show", shown["id"])
    assert out.strip() == f"bulk replay {shown['id']}: finished, 2/2 done, 0 failed"
    status, out, _ = await run(server, capsys, "bulk", "cancel", shown["id"])
    assert "finished" in out
