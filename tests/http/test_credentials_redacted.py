"""Credentials ``verify`` consumed never reach ``$context`` or a stored record.

Issue 13, finding 9: a request's real ``Authorization``, ``X-Api-Key`` and query-string
credentials reached ``$context`` and were stored in execution records (a node that
echoes or forwards ``$context.headers`` copied them into job outputs too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from hookline.errors import Unauthenticated
from hookline.verify import Verification
from hookline.verify._signed import SignedRequest
from tests.http.conftest import running_server

TOKEN = "s3cret-bearer-token"
API_KEY = "s3cret-api-key"
QUERY_TOKEN = "s3cret-query-token"

ECHO = """
key: echo{n}
trigger:
  type: webhook
  path: echo{n}
  mode: sync
  verify: [{{bearer: {{secret: {token}}}}}, {{header: {{name: X-Api-Key, secret: {key}}}}}]
  {extra}
nodes:
  - key: answer
    type: response
    body:
      auth: "{{{{$context.headers.authorization}}}}"
      key: "{{{{$context.headers.x-api-key}}}}"
      other: "{{{{$context.headers.x-other}}}}"
      token: "{{{{$context.query.token}}}}"
"""


def echo(n: int, extra: str = "") -> str:
    return ECHO.format(n=n, token=TOKEN, key=API_KEY, extra=extra)


@attrs.frozen
class QueryToken:
    """A scheme that reads its credential from ``?token=`` and says so in
    ``secret_query``, as any scheme may."""

    secret_headers: frozenset[str] = frozenset()
    secret_query: frozenset[str] = frozenset({"token"})

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        if f"token={QUERY_TOKEN}" not in request.url:
            raise Unauthenticated("no token")
        return None


HEADERS = {"authorization": f"Bearer {TOKEN}", "x-api-key": API_KEY, "x-other": "kept"}


async def test_consumed_headers_read_redacted_in_context_and_records() -> None:
    async with running_server([echo(1)]) as server:
        response = await server.client.post("/api/webhooks/echo1", json={}, headers=HEADERS)
        assert response.status_code == 200, response.text
        assert response.json()["auth"] == "[redacted]"
        assert response.json()["key"] == "[redacted]"
        assert response.json()["other"] == "kept"
        store = server.engine.store
        [execution] = (await store.list_executions(workflow="echo1")).items
        [delivery] = (await store.list_deliveries(workflow="echo1")).items
        jobs = await store.list_jobs(execution.id)
        stored = repr((execution, delivery, jobs))
        assert TOKEN not in stored
        assert API_KEY not in stored
        # A refused request keeps nothing either.
        wrong = {**HEADERS, "x-api-key": "wrong-" + API_KEY}
        refused = await server.client.post("/api/webhooks/echo1", json={}, headers=wrong)
        assert refused.status_code == 403
        records = (await store.list_deliveries(workflow="echo1", verdict="rejected")).items
        assert API_KEY not in repr(records)


async def test_expose_credentials_keeps_them() -> None:
    async with running_server([echo(2, "expose_credentials: true")]) as server:
        response = await server.client.post("/api/webhooks/echo2", json={}, headers=HEADERS)
        assert response.status_code == 200, response.text
        assert response.json()["auth"] == f"Bearer {TOKEN}"
        assert response.json()["key"] == API_KEY


@pytest.mark.parametrize("expose", [False, True])
async def test_a_query_credential_a_scheme_declares_is_redacted(expose: bool) -> None:
    async with running_server([echo(3)]) as server:
        workflow = server.engine.workflows["echo3"]
        trigger = attrs.evolve(
            workflow.trigger,
            verification=Verification(checks=(QueryToken(),)),
            expose_credentials=expose,
        )
        await server.engine.apply([attrs.evolve(workflow, trigger=trigger)])
        response = await server.client.post(
            f"/api/webhooks/echo3?token={QUERY_TOKEN}&page=2", json={}
        )
        assert response.status_code == 200, response.text
        assert response.json()["token"] == (QUERY_TOKEN if expose else "[redacted]")
        [execution] = (await server.engine.store.list_executions(workflow="echo3")).items
        assert (QUERY_TOKEN in repr(execution)) is expose
        assert execution.context["query"]["page"] == "2"
