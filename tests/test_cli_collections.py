"""``hookline collections list|records|import|export`` against a running server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from hookline.cli import main
from tests.conftest import StoreFactory
from tests.http.conftest import ORDERS, Server, running_server


@pytest.fixture
async def server(make_store: StoreFactory) -> AsyncIterator[Server]:
    async with running_server([ORDERS], store=make_store()) as running:
        yield running


async def run(server: Server, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    status = await trio.to_thread.run_sync(main, [*argv, "--url", server.url])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out


async def test_import_list_and_export_round_trip(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text("name,age\nAda,36\nGrace,45\n")
    out = await run(server, capsys, "collections", "import", "people", str(source))
    assert out.strip() == "imported 2 records into people"
    assert (await run(server, capsys, "collections", "list")).split() == ["people"]
    shown = await run(server, capsys, "collections", "records", "people")
    assert "Grace" in shown
    assert "Ada" in shown
    exported = await run(server, capsys, "collections", "export", "people")
    records = [json.loads(line) for line in exported.splitlines()]
    assert sorted((r["name"], r["age"]) for r in records) == [("Ada", 36), ("Grace", 45)]
    target = tmp_path / "copy.csv"
    await run(
        server, capsys, "collections", "export", "people", "--format", "csv", "-o", str(target)
    )
    lines = target.read_text().splitlines()
    assert lines[0] == "id,created_at,updated_at,name,age"
    assert len(lines) == 3
    again = await run(server, capsys, "collections", "import", "copies", str(target), "--json")
    assert json.loads(again)["imported"] == 2
