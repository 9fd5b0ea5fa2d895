"""Bodies as senders send them, through the webhook route: XML (and its entities
refused with 400), GitHub's and Slack's ``payload`` forms. The ``echo`` workflow answers
with its ``$context``."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.http.conftest import Server, assert_problem


async def echo(server: Server, body: bytes, content_type: str) -> dict[str, Any]:
    answer = await server.client.post(
        "/api/webhooks/echo/a", content=body, headers={"content-type": content_type}
    )
    assert answer.status_code == 200, answer.text
    context: dict[str, Any] = answer.json()["output"]
    return context


async def test_xml_is_data(server: Server) -> None:
    body = b'<?xml version="1.0"?><note id="3"><to>Ada</to><body>hi</body></note>'
    context = await echo(server, body, "application/xml")
    assert context["data"] == {"note": {"@id": "3", "to": "Ada", "body": "hi"}}
    assert context["raw"] == body.decode()


async def test_xml_with_entities_is_refused(server: Server) -> None:
    bomb = b'<!DOCTYPE a [<!ENTITY b "bb"><!ENTITY c "&b;&b;&b;&b;&b;">]><a>&c;&c;</a>'
    answer = await server.client.post(
        "/api/webhooks/echo/a", content=bomb, headers={"content-type": "text/xml"}
    )
    problem = assert_problem(answer, 400)
    assert "entities" in problem["detail"]


async def test_slacks_interactive_payload_is_data_and_the_form_is_kept(server: Server) -> None:
    payload = {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"value": "ok"}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    context = await echo(server, body, "application/x-www-form-urlencoded")
    assert context["data"] == payload
    assert json.loads(context["form"]["payload"]) == payload
