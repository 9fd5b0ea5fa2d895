"""The sms node against a loopback stand-in for Twilio's Messages API, which checks the
documented request: the path, HTTP basic authentication and the form fields."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hookline.definition import Fields
from hookline.engine._job import RunningJob
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeServices, NodeSpec
from hookline.nodes._registry import parse_node
from hookline.nodes._transport import new_http_client
from tests.nodes._receiver import Receiver, Reply, Request, json_reply, receiver

ACCOUNT = "AC00000000000000000000000000000001"
TOKEN = "auth-token-secret"


def parse(**fields: Any) -> NodeSpec:
    return parse_node(Fields({"key": "text", "type": "sms", **fields}, source="w.yaml"))


def twilio(request: Request) -> Reply:
    """Twilio's POST /2010-04-01/Accounts/{AccountSid}/Messages.json."""
    if request.path != f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
        return json_reply(404, {"code": 20404, "message": "not found", "status": 404})
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    if scheme != "Basic" or (user, password) not in {(ACCOUNT, TOKEN), ("SK1", "key-secret")}:
        return json_reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
    if request.headers["content-type"] != "application/x-www-form-urlencoded":
        return json_reply(400, {"code": 20001, "message": "bad content type", "status": 400})
    form = dict(urllib.parse.parse_qsl(request.body.decode()))
    if not form.get("To", "").startswith("+"):
        message = f"The 'To' number {form.get('To')} is not a valid phone number."
        return json_reply(400, {"code": 21211, "message": message, "status": 400})
    sender = {"from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid")}
    return json_reply(
        201, {"sid": "SM123", "status": "queued", "to": form["To"], "body": form["Body"], **sender}
    )


@pytest.fixture
def api() -> Iterator[Receiver]:
    with receiver() as server:
        server.answer = twilio
        yield server


@pytest.fixture
async def services() -> AsyncIterator[NodeServices]:
    async with new_http_client(["127.0.0.1"]) as client:
        yield NodeServices(http=client, http_allow_hosts=("127.0.0.1",))


async def run(spec: NodeSpec, services: NodeServices, **context: Any) -> Any:
    job = RunningJob("ex-1", spec, {"context": context}, services=services)
    return (await spec.config.run(job)).output


def message(api: Receiver, **fields: Any) -> NodeSpec:
    return parse(
        provider="twilio",
        api_base=api.url(""),
        **{"account": ACCOUNT, "token": TOKEN, "from": "+15005550006", **fields},
    )


async def test_a_message_is_sent_as_twilio_documents(api: Receiver, services: NodeServices) -> None:
    spec = message(api, to="{{$context.data.phone}}", body="Your code is {{$context.data.code}}")
    output = await run(spec, services, data={"phone": "+14155550100", "code": 4242})
    [request] = api.requests
    assert dict(urllib.parse.parse_qsl(request.body.decode())) == {
        "To": "+14155550100",
        "From": "+15005550006",
        "Body": "Your code is 4242",
    }
    assert output["status"] == 201
    assert output["data"]["sid"] == "SM123"


async def test_a_messaging_service_and_an_api_key(api: Receiver, services: NodeServices) -> None:
    spec = message(
        api, api_key="SK1", token="key-secret", to="+14155550100", body="hi", **{"from": "MG9"}
    )
    output = await run(spec, services)
    assert output["data"]["messaging_service_sid"] == "MG9"
    assert output["data"]["from"] is None


async def test_twilios_refusal_fails_the_job_with_its_message(
    api: Receiver, services: NodeServices
) -> None:
    with pytest.raises(NodeError, match="21211") as info:
        await run(message(api, to="0800", body="x"), services)
    assert TOKEN not in str(info.value)
    with pytest.raises(NodeError, match="401"):
        await run(message(api, token="wrong", to="+14155550100", body="x"), services)


@pytest.mark.parametrize("missing", ["account", "token", "from", "to", "body"])
def test_every_field_is_required(missing: str) -> None:
    fields = {"account": "a", "token": "t", "from": "f", "to": "+1", "body": "b"}
    del fields[missing]
    with pytest.raises(DefinitionError, match=missing):
        parse(provider="twilio", **fields)


def test_only_twilio_is_known() -> None:
    with pytest.raises(DefinitionError, match="provider"):
        parse(provider="nexmo", account="a", token="t", to="+1", body="b", **{"from": "f"})
