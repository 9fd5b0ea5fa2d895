"""``trigger.cors``: browsers on the listed origins may call a webhook (a preflight gets
204 with the ``Access-Control-*`` headers, answers carry ``Access-Control-Allow-Origin``);
other origins get no CORS headers; a workflow without ``cors`` answers as before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError
from tests.http.conftest import Server, running_server

FORM = """
key: signup
trigger:
  path: signup
  methods: [POST, PUT]
  cors:
    origins: ["https://app.example.com", "http://localhost:5173"]
    headers: [Content-Type, X-Request-Id]
    methods: [POST]
    max_age: 10m
  verify:
    - bearer: {secret: s3cret}
nodes:
  - {key: ok, type: set, values: {email: "{{$context.data.email}}"}}
"""
ANYONE = """
key: beacon
trigger: {path: beacon, cors: {origins: ["*"]}}
nodes:
  - {key: ok, type: set, values: {n: 1}}
"""
PLAIN = """
key: plain
trigger: {path: plain}
nodes:
  - {key: ok, type: set, values: {n: 1}}
"""
APP = "https://app.example.com"
TOKEN = {"authorization": "Bearer s3cret"}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server([FORM, ANYONE, PLAIN]) as running:
        yield running


def cors_headers(headers: object) -> dict[str, str]:
    assert hasattr(headers, "items")
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_a_preflight_from_a_listed_origin_gets_the_policy(server: Server) -> None:
    answer = await server.client.options(
        "/api/webhooks/signup",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert answer.status_code == 204
    assert cors_headers(answer.headers) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "content-type, x-request-id",
        "access-control-max-age": "600",
    }
    assert answer.headers["vary"] == "Origin"
    assert answer.content == b""


async def test_a_preflight_from_another_origin_gets_no_cors_headers(server: Server) -> None:
    answer = await server.client.options(
        "/api/webhooks/signup",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert answer.status_code == 204
    assert cors_headers(answer.headers) == {}


async def test_answers_to_a_listed_origin_carry_allow_origin(server: Server) -> None:
    accepted = await server.client.post(
        "/api/webhooks/signup", json={"email": "a@b.c"}, headers={"origin": APP, **TOKEN}
    )
    refused = await server.client.post(
        "/api/webhooks/signup", json={}, headers={"origin": "http://localhost:5173"}
    )
    assert accepted.status_code == 202
    assert accepted.headers["access-control-allow-origin"] == APP
    assert accepted.headers["vary"] == "Origin"
    # A page can read why it was refused, too.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_answers_to_other_origins_carry_no_cors_headers(server: Server) -> None:
    answer = await server.client.post(
        "/api/webhooks/signup",
        json={"email": "a@b.c"},
        headers={"origin": "https://evil.example", **TOKEN},
    )
    assert answer.status_code == 202
    assert cors_headers(answer.headers) == {}


async def test_any_origin(server: Server) -> None:
    preflight = await server.client.options(
        "/api/webhooks/beacon",
        headers={"origin": "https://x.example", "access-control-request-method": "POST"},
    )
    answer = await server.client.post(
        "/api/webhooks/beacon", json={}, headers={"origin": "https://x.example"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    assert answer.headers["access-control-allow-origin"] == "*"


async def test_without_cors_nothing_changes(server: Server) -> None:
    preflight = await server.client.options(
        "/api/webhooks/plain",
        headers={"origin": APP, "access-control-request-method": "POST"},
    )
    answer = await server.client.post("/api/webhooks/plain", json={}, headers={"origin": APP})
    assert preflight.status_code == 405
    assert preflight.headers["allow"] == "POST"
    assert answer.status_code == 202
    assert cors_headers(answer.headers) == {}
    assert "vary" not in answer.headers


@pytest.mark.parametrize(
    ("cors", "field", "expected"),
    [
        ("{origins: []}", "trigger.cors.origins", "non-empty list"),
        ("{origins: ['https://a.example/path']}", "trigger.cors.origins[0]", "an origin"),
        ("{origins: ['*'], methods: [DELETE]}", "trigger.cors.methods[0]", "trigger's methods"),
        ("{origins: ['*'], headers: ['bad header']}", "trigger.cors.headers[0]", "header name"),
        ("{origins: ['*'], max_age: soon}", "trigger.cors.max_age", ""),
        ("{origins: ['*'], credentials: true}", "trigger.cors.credentials", ""),
        ("[a]", "trigger.cors", "mapping"),
    ],
)
def test_a_bad_policy_is_a_load_error_naming_the_field(
    cors: str, field: str, expected: str
) -> None:
    text = f"key: w\ntrigger: {{path: w, cors: {cors}}}\nnodes: [{{key: a, type: end}}]\n"
    with pytest.raises(DefinitionError) as info:
        load_workflow_text(text, source="w.yaml")
    assert field in str(info.value)
    assert expected in str(info.value)
