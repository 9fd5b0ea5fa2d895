"""The OpenAPI document: valid, complete, and true of the live server (schemathesis)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import trio
from openapi_spec_validator import validate

from hookline.engine._engine import Engine
from hookline.http._app import create_app
from hookline.http._openapi import openapi_document
from hookline.store._store import MemoryStore
from tests.conftest import StoreFactory
from tests.http.conftest import ACKED, FAILS, ORDERS, STEPS, Server, running_server


def test_the_document_is_valid_openapi() -> None:
    validate(openapi_document())  # raises on any violation


def test_every_api_route_is_described() -> None:
    # One backend is enough: the engine never starts, so its store is never opened.
    app = create_app(Engine(MemoryStore()))
    described = openapi_document()["paths"]
    routes = {
        re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/ui/")
    }

    # Parameter names differ in places (<execution_id> is {id}); compare shapes.
    def shape(path: str) -> str:
        return re.sub(r"\{[a-z_]+\}", "{}", path)

    assert {shape(r) for r in routes} == {shape(p) for p in described}


async def test_the_server_serves_the_document(server: Server) -> None:
    response = await server.client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document()


def _schemathesis() -> str | None:
    beside = Path(sys.executable).parent / "schemathesis"
    return str(beside) if beside.exists() else shutil.which("schemathesis")


@pytest.mark.skipif(_schemathesis() is None, reason="schemathesis is not installed")
async def test_schemathesis_finds_no_server_error(tmp_path: Path, make_store: StoreFactory) -> None:
    # Webhook routes are left out: their 5xx answers are the contract (500 for a failed
    # sync execution, 503 for a disabled workflow), not server errors.
    async with running_server([ORDERS, ACKED, STEPS, FAILS], store=make_store()) as server:
        await server.client.post("/api/webhooks/steps", json={"n": 1})
        command = [
            str(_schemathesis()),
            "run",
            f"{server.url}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--exclude-path-regex",
            "webhooks",
            "--max-examples",
            "5",
            "--phases",
            "examples,fuzzing",
            "--seed",
            "7",
            "--no-shrink",
            "--workers",
            "1",
            "--request-timeout",
            "5",
        ]
        with trio.fail_after(120):
            result = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path
            )
    output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 0, output[-6000:]
