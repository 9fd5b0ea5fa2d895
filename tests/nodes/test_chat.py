"""The chat node against a loopback receiver that checks each platform's documented
request shape and, for DingTalk's and Feishu's signed robots, the signature computed
as their documentation's own sample code computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hookline.definition import Fields
from hookline.engine._job import RunningJob
from hookline.errors import AddressRefused, DefinitionError, NodeError
from hookline.nodes._base import NodeServices, NodeSpec
from hookline.nodes._registry import parse_node
from hookline.nodes._transport import new_http_client
from tests.nodes._receiver import Receiver, Reply, Request, json_reply, receiver

SECRET = "SEC0123456789abcdef"


def parse(**fields: Any) -> NodeSpec:
    return parse_node(Fields({"key": "notify", "type": "chat", **fields}, source="w.yaml"))


async def run(spec: NodeSpec, services: NodeServices, **context: Any) -> Any:
    job = RunningJob("ex-1", spec, {"context": context}, services=services)
    return (await spec.config.run(job)).output


@pytest.fixture
def robot() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
async def services() -> AsyncIterator[NodeServices]:
    async with new_http_client(["127.0.0.1"]) as client:
        yield NodeServices(http=client, http_allow_hosts=("127.0.0.1",))


# -- the receivers' checks, written from each platform's documentation --------------------


def dingtalk_robot(request: Request) -> Reply:
    """DingTalk's custom robot: timestamp (ms, within an hour) and sign in the query."""
    timestamp = request.query["timestamp"][0]
    # DingTalk's sample: hmac(secret, "{timestamp}\n{secret}"), base64, then URL-quoted.
    string_to_sign = f"{timestamp}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), string_to_sign, hashlib.sha256).digest())
    if abs(time.time() * 1000 - int(timestamp)) > 3600_000:
        return json_reply(200, {"errcode": 310000, "errmsg": "timestamp expired"})
    if request.query["sign"][0] != expected.decode():
        return json_reply(200, {"errcode": 310000, "errmsg": "sign not match"})
    if request.headers["content-type"] != "application/json":
        return json_reply(200, {"errcode": 40035, "errmsg": "content type"})
    return json_reply(200, {"errcode": 0, "errmsg": "ok"})


def feishu_bot(request: Request) -> Reply:
    """Feishu's custom bot: timestamp (s) and sign in the JSON body."""
    body = request.json()
    # Feishu's sample: hmac keyed with "{timestamp}\n{secret}", of nothing, base64.
    string_to_sign = f"{body['timestamp']}\n{SECRET}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    if body["sign"] != base64.b64encode(hmac_code).decode("utf-8"):
        return json_reply(200, {"code": 19021, "msg": "sign match fail", "data": {}})
    if abs(time.time() - int(body["timestamp"])) > 3600:
        return json_reply(200, {"code": 19021, "msg": "timestamp expired", "data": {}})
    return json_reply(200, {"code": 0, "msg": "success", "data": {}})


# -- signed robots --------------------------------------------------------------------------


async def test_dingtalk_signed_robot_text(robot: Receiver, services: NodeServices) -> None:
    robot.answer = dingtalk_robot
    spec = parse(
        provider="dingtalk",
        url=robot.url("/robot/send?access_token=tok"),
        secret=SECRET,
        text="order {{$context.data.id}} failed",
    )
    output = await run(spec, services, data={"id": 7})
    [request] = robot.requests
    assert request.path == "/robot/send"
    assert request.query["access_token"] == ["tok"]
    assert request.json() == {"msgtype": "text", "text": {"content": "order 7 failed"}}
    assert output["data"] == {"errcode": 0, "errmsg": "ok"}


async def test_dingtalk_markdown_takes_its_title_from_the_first_line(
    robot: Receiver, services: NodeServices
) -> None:
    robot.answer = dingtalk_robot
    spec = parse(
        provider="dingtalk",
        url=robot.url("/robot/send?access_token=tok"),
        secret=SECRET,
        markdown="## Deploy done\n\n**acme/app** is live",
    )
    await run(spec, services)
    assert robot.requests[0].json() == {
        "msgtype": "markdown",
        "markdown": {"title": "Deploy done", "text": "## Deploy done\n\n**acme/app** is live"},
    }


async def test_a_wrong_dingtalk_secret_fails_the_job(
    robot: Receiver, services: NodeServices
) -> None:
    robot.answer = dingtalk_robot
    spec = parse(provider="dingtalk", url=robot.url("/robot/send"), secret="SECwrong", text="hi")
    with pytest.raises(NodeError, match="310000 sign not match") as info:
        await run(spec, services)
    assert "127.0.0.1" not in str(info.value)  # the URL is the credential: never shown


async def test_feishu_signed_bot_text_and_card(robot: Receiver, services: NodeServices) -> None:
    robot.answer = feishu_bot
    url = robot.url("/open-apis/bot/v2/hook/abc")
    text = parse(provider="feishu", url=url, secret=SECRET, text="hello")
    card = parse(provider="feishu", url=url, secret=SECRET, markdown="**bold**")
    await run(text, services)
    await run(card, services)
    first, second = (request.json() for request in robot.requests)
    assert {k: first[k] for k in ("msg_type", "content")} == {
        "msg_type": "text",
        "content": {"text": "hello"},
    }
    assert second["msg_type"] == "interactive"
    assert second["card"] == {
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**bold**"}}]
    }


async def test_a_wrong_feishu_secret_fails_the_job(robot: Receiver, services: NodeServices) -> None:
    robot.answer = feishu_bot
    spec = parse(provider="feishu", url=robot.url("/hook"), secret="nope", text="hi")
    with pytest.raises(NodeError, match="19021 sign match fail"):
        await run(spec, services)


# -- unsigned webhooks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "kind", "expected", "reply"),
    [
        ("slack", "text", {"text": "hi *there*"}, (200, "text/html", b"ok")),
        (
            "slack",
            "markdown",
            {
                "text": "hi *there*",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi *there*"}}],
            },
            (200, "text/html", b"ok"),
        ),
        ("discord", "markdown", {"content": "hi *there*"}, (204, "text/plain", b"")),
        ("wecom", "text", {"msgtype": "text", "text": {"content": "hi *there*"}}, None),
        ("wecom", "markdown", {"msgtype": "markdown", "markdown": {"content": "hi *there*"}}, None),
    ],
)
async def test_each_platform_gets_its_documented_body(
    robot: Receiver,
    services: NodeServices,
    provider: str,
    kind: str,
    expected: dict[str, Any],
    reply: Reply | None,
) -> None:
    robot.answer = lambda request: reply or json_reply(200, {"errcode": 0, "errmsg": "ok"})
    await run(parse(provider=provider, url=robot.url("/hook"), **{kind: "hi *there*"}), services)
    [request] = robot.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == expected


async def test_teams_gets_an_adaptive_card(robot: Receiver, services: NodeServices) -> None:
    robot.answer = lambda request: (202, "text/plain", b"1")
    await run(parse(provider="teams", url=robot.url("/workflows/x"), text="Build **ok**"), services)
    [attachment] = robot.requests[0].json()["attachments"]
    assert robot.requests[0].json()["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"] == [{"type": "TextBlock", "text": "Build **ok**", "wrap": True}]


async def test_payload_is_sent_as_written_and_still_signed(
    robot: Receiver, services: NodeServices
) -> None:
    robot.answer = feishu_bot
    payload = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "{{$context.data.t}}"}}}}
    spec = parse(provider="feishu", url=robot.url("/hook"), secret=SECRET, payload=payload)
    await run(spec, services, data={"t": "Release"})
    body = robot.requests[0].json()
    assert body["content"] == {"post": {"zh_cn": {"title": "Release"}}}
    assert body["msg_type"] == "post"


async def test_a_refusal_in_the_body_fails_unless_ignore_fail(
    robot: Receiver, services: NodeServices
) -> None:
    robot.answer = lambda request: json_reply(
        200, {"errcode": 93000, "errmsg": "invalid webhook url"}
    )
    with pytest.raises(NodeError, match="93000 invalid webhook url"):
        await run(
            parse(provider="wecom", url=robot.url("/cgi-bin/webhook/send"), text="x"), services
        )
    ignored = parse(provider="wecom", url=robot.url("/w"), text="x", ignore_fail=True)
    assert (await run(ignored, services))["data"]["errcode"] == 93000


async def test_retries_are_the_http_nodes(robot: Receiver, services: NodeServices) -> None:
    replies = iter([(429, "text/plain", b"slow down"), (200, "text/plain", b"ok")])
    robot.answer = lambda request: next(replies)
    spec = parse(
        provider="slack",
        url=robot.url("/services/T/B/X"),
        text="x",
        retry={"attempts": 2, "backoff": "0s"},
    )
    assert (await run(spec, services))["status"] == 200
    assert len(robot.requests) == 2
    # One message, one key: the receiver can tell the retry from a second message.
    assert (
        robot.requests[0].headers["idempotency-key"] == robot.requests[1].headers["idempotency-key"]
    )


async def test_the_address_guard_applies(robot: Receiver) -> None:
    async with new_http_client([]) as client:
        guarded = NodeServices(http=client, http_allow_hosts=())
        with pytest.raises(AddressRefused):
            await run(parse(provider="slack", url=robot.url("/hook"), text="x"), guarded)
    assert robot.requests == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"provider": "irc", "url": "http://x", "text": "a"}, "provider"),
        ({"provider": "slack", "url": "http://x"}, "text"),
        ({"provider": "slack", "url": "http://x", "text": "a", "markdown": "b"}, "markdown"),
        ({"provider": "slack", "url": "http://x", "text": "a", "secret": "s"}, "secret"),
        ({"provider": "slack", "url": "http://x", "payload": "text"}, "payload"),
    ],
)
def test_bad_fields_are_load_errors_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError, match=f"nodes.*{field}|{field}"):
        parse(**fields)


def test_url_quoting_of_the_dingtalk_sign() -> None:
    # DingTalk's sample URL-quotes the base64 sign; httpx's query encoding must agree.
    from hookline.nodes._chat import dingtalk_sign

    sign = dingtalk_sign(SECRET, 1_700_000_000_000)
    assert urllib.parse.unquote_plus(urllib.parse.quote_plus(sign)) == sign
