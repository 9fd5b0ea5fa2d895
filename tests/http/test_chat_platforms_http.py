"""WeCom, Feishu and DingTalk through a real server: the handshakes hookline answers
itself (recorded, no execution) and decrypted messages as ``$context.data``.

Requests are the platforms' SDK vectors (``tests/verify/vectors/chat_platforms.json``)
or signed by :func:`hookline._signing.sign`, the code behind ``hookline send``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hookline._signing import sign
from tests.conftest import StoreFactory
from tests.http.test_verification_http import deliveries, executions, serving

VECTORS = json.loads(
    (Path(__file__).parent.parent / "verify" / "vectors" / "chat_platforms.json").read_text()
)
WECOM = VECTORS["wecom"]
FEISHU = VECTORS["feishu"]


def echo_workflow(key: str, verify: str, output: str, methods: str = "[POST]") -> str:
    return f"""
key: {key}
trigger:
  type: webhook
  path: {key}
  mode: sync
  methods: {methods}
  verify:
    - {verify}
nodes:
  - key: out
    type: end
    output: {output}
"""


WECOM_HOOK = echo_workflow(
    "wecom",
    f"wecom: {{token: {WECOM['token']}, encoding_aes_key: {WECOM['encoding_aes_key']}, "
    f"corp_id: {WECOM['corp_id']}, tolerance: 3650d}}",
    '{content: "{{ $context.data.xml.Content }}", raw: "{{ $context.wecom }}"}',
    "[GET, POST]",
)
FEISHU_HOOK = echo_workflow(
    "feishu",
    f"feishu: {{verification_token: {FEISHU['verification_token']}, "
    f"encrypt_key: {FEISHU['encrypt_key']}, tolerance: 3650d}}",
    '{event: "{{ $context.data.header.event_type }}"}',
)


async def test_wecom_url_check_is_answered_recorded_and_starts_nothing(
    make_store: StoreFactory,
) -> None:
    async with serving([WECOM_HOOK], store=make_store()) as server:
        query = urlencode(WECOM["handshake"]["query"])
        answer = await server.client.get(f"/api/webhooks/wecom?{query}")
        wrong = dict(WECOM["handshake"]["query"], msg_signature="0" * 40)
        refused = await server.client.get(f"/api/webhooks/wecom?{urlencode(wrong)}")
        records = await deliveries(server, "wecom")
        started = await executions(server, "wecom")
    assert answer.status_code == 200
    assert answer.text == WECOM["handshake"]["answer"]
    assert answer.headers["content-type"].startswith("text/plain")
    assert refused.status_code == 403
    assert started == 0
    assert [(d.verdict, d.status) for d in records] == [("accepted", 200), ("rejected", 403)]
    assert records[0].reason == "answered WeCom's URL check (echostr)"
    assert records[0].execution_id is None


async def test_wecom_message_reaches_the_workflow_decrypted(make_store: StoreFactory) -> None:
    vector = WECOM["message"]
    async with serving([WECOM_HOOK], store=make_store()) as server:
        answer = await server.client.post(
            f"/api/webhooks/wecom?{urlencode(vector['query'])}",
            content=vector["body"].encode(),
            headers={"content-type": "text/xml"},
        )
    assert answer.status_code == 200, answer.text
    output: dict[str, Any] = answer.json()["output"]
    assert output == {"content": "部署 main", "raw": vector["decrypted"]}


async def test_feishu_challenge_is_answered_and_events_are_decrypted(
    make_store: StoreFactory,
) -> None:
    async with serving([FEISHU_HOOK], store=make_store()) as server:
        answers = {}
        for name in ("challenge_encrypted", "challenge_plain", "event_v2"):
            vector = FEISHU[name]
            answers[name] = await server.client.post(
                "/api/webhooks/feishu",
                content=vector["body"].encode(),
                headers={**vector["headers"], "content-type": "application/json"},
            )
        records = await deliveries(server, "feishu")
        started = await executions(server, "feishu")
    for name in ("challenge_encrypted", "challenge_plain"):
        assert answers[name].status_code == 200
        assert answers[name].json() == {"challenge": "ajls384kdjx98XX"}
    assert answers["event_v2"].json()["output"] == {"event": "im.message.receive_v1"}
    assert started == 1
    assert [d.reason for d in records[:2]] == ["answered Feishu's url_verification"] * 2
    assert records[2].headers["x-lark-signature"] == "[redacted]"


async def test_dingtalk_robot_signature(make_store: StoreFactory) -> None:
    hook = echo_workflow("dingtalk", "dingtalk: {secret: SECrobot}", "{ok: true}")
    body = b'{"msgtype": "text", "text": {"content": "hi"}}'
    async with serving([hook], store=make_store()) as server:
        good = sign("dingtalk", secret="SECrobot", body=body)
        stale = sign("dingtalk", secret="SECrobot", body=body, timestamp=int(time.time()) - 7200)
        answers = [
            await server.client.post(
                "/api/webhooks/dingtalk", content=body, headers=dict(s.headers)
            )
            for s in (good, stale)
        ]
        records = await deliveries(server, "dingtalk")
    assert [a.status_code for a in answers] == [200, 403]
    assert records[1].reason == "the request timestamp is too old"
    assert records[0].headers["sign"] == "[redacted]"


async def test_dingtalk_events_are_acknowledged_as_dingtalk_expects(
    make_store: StoreFactory,
) -> None:
    options = {"aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "app_key": "dingapp"}
    hook = f"""
key: events
trigger:
  path: events
  verify:
    - dingtalk_events: {{token: tok, aes_key: {options["aes_key"]}, app_key: dingapp}}
nodes:
  - {{key: out, type: end, output: {{type: "{{{{$context.data.EventType}}}}"}}}}
"""
    async with serving([hook], store=make_store()) as server:
        answers = []
        for event in ({"EventType": "check_url"}, {"EventType": "user_add_org"}):
            signed = sign(
                "dingtalk_events",
                secret="tok",
                body=json.dumps(event).encode(),
                url=f"{server.url}/api/webhooks/events",
                options=options,
            )
            answers.append(
                await server.client.post(
                    signed.url, content=signed.body, headers={"content-type": "application/json"}
                )
            )
        records = await deliveries(server, "events")
        await server.engine.store.flush()
        (execution,) = (await server.engine.store.list_executions(workflow="events")).items
    assert [a.status_code for a in answers] == [200, 200]
    for answer in answers:
        assert set(answer.json()) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert records[0].reason == "answered DingTalk's URL check (check_url)"
    assert records[0].execution_id is None
    assert execution.context["data"] == {"EventType": "user_add_org"}
    # The signature the scheme consumed from the query is not kept (issue 13, finding 9).
    assert execution.context["query"]["signature"] == "[redacted]"
