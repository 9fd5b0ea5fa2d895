"""The brief's five scenarios, run from examples/ through a real ``hookline serve``
process, with a real SMTP server and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
import shutil
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from aiosmtpd.controller import Controller

from hookline._signing import sign
from hookline.verify._wxcrypt import encrypt, message_key, signature

from ..conftest import postgres_schema_url
from ._server import EXAMPLE_ENV, ROOT, ServerProcess

SECRETS = EXAMPLE_ENV

# A test-only workflow that seeds the owners collection through the same server.
SEED = """
key: seed-owner
trigger: {type: webhook, path: test/owners, mode: sync}
nodes:
  - key: owner
    type: create
    collection: owners
    values: {name: "{{$context.data.name}}", assigned: 0}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request (the deploy, chat and
    alert endpoints of the examples)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.requests.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class Mailbox:
    """aiosmtpd handler keeping what arrives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: object, session: object, envelope: Any
    ) -> str:
        self.messages.append(envelope)
        return "250 OK"


class Examples:
    def __init__(self, server: ServerProcess, receiver: Receiver, mailbox: Mailbox) -> None:
        self.server = server
        self.receiver = receiver
        self.mailbox = mailbox
        self.client = httpx.AsyncClient(base_url=server.url, timeout=10)

    async def records(self, collection: str) -> list[dict[str, Any]]:
        answer = await self.client.get(f"/api/collections/{collection}/records?limit=500")
        assert answer.status_code == 200, answer.text
        records: list[dict[str, Any]] = answer.json()["records"]
        return records

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not await predicate():
                await trio.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgres"])
def examples(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Examples]:
    folder = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", folder)
    (folder / "workflows" / "seed-owner.yaml").write_text(SEED)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    receiver = Receiver()
    config = (folder / "hookline.yaml").read_text()
    config = config.replace("port: 2525", f"port: {smtp_port}")
    (folder / "hookline.yaml").write_text(config)
    env = {
        "DEPLOY_URL": f"{receiver.url}/deploy",
        "CHAT_WEBHOOK_URL": f"{receiver.url}/chat",
        "ALERT_URL": f"{receiver.url}/alert",
    }
    store: Path | str = tmp_path / "hookline.db"
    if request.param == "postgres":
        store = postgres_schema_url(request)
    server = ServerProcess(folder / "hookline.yaml", store, env=env)
    try:
        yield Examples(server, receiver, mailbox)
    finally:
        server.stop(signal.SIGTERM)
        smtp.stop()
        receiver.server.shutdown()


async def test_form_submission_creates_a_customer_assigns_owners_and_emails(
    examples: Examples,
) -> None:
    client = examples.client
    for name in ("Bea", "Al"):
        seeded = await client.post("/api/webhooks/test/owners", json={"name": name})
        assert seeded.status_code == 200, seeded.text
    first = await client.post(
        "/api/webhooks/forms/contact",
        json={"name": "Ada", "email": "ada@example.com", "message": "hi"},
    )
    second = await client.post(
        "/api/webhooks/forms/contact", json={"name": "Bob", "email": "bob@example.com"}
    )
    invalid = await client.post("/api/webhooks/forms/contact", json={"name": "", "email": "x"})

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    # Round-robin: the owner with the fewest customers, ties by name.
    assert first.json()["owner"] == "Al"
    assert second.json()["owner"] == "Bea"
    assert invalid.status_code == 422
    assert invalid.json() == {"errors": ["name is required", "email must be an address"]}
    customers = await examples.records("customers")
    assert {c["email"] for c in customers} == {"ada@example.com", "bob@example.com"}
    owners = {o["name"]: o["assigned"] for o in await examples.records("owners")}
    assert owners == {"Al": 1, "Bea": 1}

    async def mailed() -> bool:
        return len(examples.mailbox.messages) == 2

    await examples.wait_for(mailed)  # the mail goes out after the answer
    recipients = sorted(rcpt for m in examples.mailbox.messages for rcpt in m.rcpt_tos)
    assert recipients == ["ada@example.com", "bob@example.com"]
    (text,) = [m.content.decode() for m in examples.mailbox.messages if "Ada" in m.content.decode()]
    assert "Thanks, Ada" in text
    assert first.json()["customer"] in text


def slack_request(body: dict[str, Any], secret: str = SECRETS["SLACK_SIGNING_SECRET"]) -> Any:
    raw = json.dumps(body).encode()
    signed = sign("slack", secret=secret, body=raw, timestamp=int(time.time()))
    return raw, {**signed.headers, "content-type": "application/json"}


async def test_slack_challenge_mentions_and_approvals(examples: Examples) -> None:
    client = examples.client
    raw, headers = slack_request({"type": "url_verification", "challenge": "c-123"})
    challenge = await client.post("/api/webhooks/slack/events", content=raw, headers=headers)
    mention = {
        "type": "event_callback",
        "event_id": "Ev1",
        "event": {"type": "app_mention", "text": "<@U1> ship it", "user": "U2", "ts": "1.1"},
    }
    raw, headers = slack_request(mention)
    created = await client.post("/api/webhooks/slack/events", content=raw, headers=headers)
    retried = await client.post(
        "/api/webhooks/slack/events", content=raw, headers={**headers, "x-slack-retry-num": "1"}
    )
    approval = {
        "type": "event_callback",
        "event_id": "Ev2",
        "event": {
            "type": "reaction_added",
            "reaction": "white_check_mark",
            "user": "U3",
            "item": {"ts": "1.1"},
        },
    }
    raw, headers = slack_request(approval)
    approved = await client.post("/api/webhooks/slack/events", content=raw, headers=headers)
    raw, headers = slack_request(mention, secret="wrong")
    forged = await client.post("/api/webhooks/slack/events", content=raw, headers=headers)

    assert challenge.status_code == 200
    assert challenge.json() == {"challenge": "c-123"}
    assert created.status_code == 200
    assert retried.status_code == 200
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json() == created.json()
    assert approved.status_code == 200
    assert forged.status_code == 403
    (task,) = await examples.records("tasks")
    assert task["id"] == created.json()["task"]
    assert task["approved"] is True
    assert task["approved_by"] == "U3"


async def test_a_deploy_waits_for_its_approval_reaction_in_slack(examples: Examples) -> None:
    client = examples.client
    auth = {"authorization": f"Bearer {SECRETS['CRM_WEBHOOK_TOKEN']}"}
    requests = [
        {"service": "api", "version": "1.2", "message_ts": "1700.1"},
        {"service": "web", "version": "3.4", "message_ts": "1700.2"},
    ]
    for request in requests:
        asked = await client.post("/api/webhooks/deploys/request", json=request, headers=auth)
        assert asked.status_code == 202, asked.text

    async def both_waiting() -> bool:
        # An event is offered to the executions waiting when it comes: react once
        # both wait, as a person reacting to the posted message would.
        metrics = (await client.get("/metrics")).text
        return "hookline_events_waiting 2.0" in metrics

    await examples.wait_for(both_waiting, timeout=20)
    # Reactions arrive through the Slack events workflow, verified as Slack signs them.
    for event_id, reaction, ts in [
        ("Ev10", "white_check_mark", "1700.1"),
        ("Ev11", "-1", "1700.2"),
    ]:
        event = {
            "type": "event_callback",
            "event_id": event_id,
            "event": {
                "type": "reaction_added",
                "reaction": reaction,
                "user": "U9",
                "item": {"ts": ts},
            },
        }
        raw, headers = slack_request(event)
        answer = await client.post("/api/webhooks/slack/events", content=raw, headers=headers)
        assert answer.status_code == 200, answer.text

    async def both_answered() -> bool:
        return {"/deploy", "/chat"} <= set(examples.receiver.paths())

    try:
        await examples.wait_for(both_answered, timeout=20)
    except trio.TooSlowError:
        listed = (await client.get("/api/executions?workflow=deploy-approval")).json()
        raise AssertionError(f"{examples.receiver.paths()} {listed}") from None
    sent = dict(examples.receiver.requests)
    assert sent["/deploy"] == {"service": "api", "version": "1.2", "approved_by": "U9"}
    assert sent["/chat"] == {"text": "Deploy of web declined by U9"}


async def test_crm_sync_upserts_by_external_id(examples: Examples) -> None:
    client = examples.client
    auth = {"authorization": f"Bearer {SECRETS['CRM_WEBHOOK_TOKEN']}"}
    contact = {"id": "crm-7", "name": "Ada", "email": "ada@example.com", "company": {"name": "A"}}
    first = await client.post("/api/webhooks/crm/contacts", json=contact, headers=auth)
    changed = {**contact, "name": "Ada Lovelace"}
    second = await client.put("/api/webhooks/crm/contacts", json=changed, headers=auth)
    refused = await client.post("/api/webhooks/crm/contacts", json=contact)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert refused.status_code == 401
    (record,) = await examples.records("contacts")
    assert record["name"] == "Ada Lovelace"
    assert record["company"] == "A"


async def test_crm_sync_debounced_makes_one_upsert_per_burst_with_its_last_edit(
    examples: Examples,
) -> None:
    client = examples.client
    auth = {"authorization": f"Bearer {SECRETS['CRM_WEBHOOK_TOKEN']}"}
    path = "/api/webhooks/crm/contacts/updated"
    answers = []
    for n in range(6):  # six edits of one record within moments, one of another
        edit = {"id": "crm-9", "name": f"Grace v{n}", "company": {"name": "Navy"}}
        answers.append(await client.post(path, json=edit, headers=auth))
    other = {"id": "crm-10", "name": "Alan", "company": {"name": "NPL"}}
    answers.append(await client.post(path, json=other, headers=auth))
    assert [answer.status_code for answer in answers] == [202] * 7

    async def synced() -> bool:
        names = {r["external_id"]: r["name"] for r in await examples.records("contacts")}
        return names.get("crm-9") == "Grace v5" and names.get("crm-10") == "Alan"

    await examples.wait_for(synced, timeout=20)
    ids = [answer.json()["execution_id"] for answer in answers]

    async def status(execution_id: str) -> tuple[str, str | None]:
        found = (await client.get(f"/api/executions/{execution_id}")).json()
        return found["status"], found.get("error")

    async def all_ended() -> bool:
        statuses = [(await status(i))[0] for i in ids]
        return all(found in ("succeeded", "cancelled") for found in statuses)

    await examples.wait_for(all_ended, timeout=20)
    outcomes = [await status(i) for i in ids]
    assert [s for s, _ in outcomes] == ["cancelled"] * 5 + ["succeeded"] * 2
    for n, (_, error) in enumerate(outcomes[:5]):  # each names the edit that replaced it
        assert error == f"superseded by execution {ids[n + 1]} (debounce)"


def github_push(ref: str, delivery: str, *, form: bool = False) -> tuple[bytes, dict[str, str]]:
    body = {
        "ref": ref,
        "after": "abc123",
        "repository": {"id": 42, "full_name": "acme/app"},
        "pusher": {"name": "ada"},
        "commits": [{}, {}],
    }
    raw = json.dumps(body).encode()
    content_type = "application/json"
    if form:  # a hook made with content_type: form, GitHub's default
        raw = urllib.parse.urlencode({"payload": raw.decode()}).encode()
        content_type = "application/x-www-form-urlencoded"
    signed = sign("github", secret=SECRETS["GITHUB_WEBHOOK_SECRET"], body=raw)
    headers = {
        **signed.headers,
        "content-type": content_type,
        "x-github-event": "push",
        "x-github-delivery": delivery,
    }
    return raw, headers


async def test_github_push_to_main_deploys_and_notifies(examples: Examples) -> None:
    client = examples.client
    raw, headers = github_push("refs/heads/main", "d-1")
    accepted = await client.post("/api/webhooks/github/app", content=raw, headers=headers)
    redelivered = await client.post("/api/webhooks/github/app", content=raw, headers=headers)
    raw, headers = github_push("refs/heads/feature", "d-2")
    other = await client.post("/api/webhooks/github/app", content=raw, headers=headers)
    forged = await client.post(
        "/api/webhooks/github/app",
        content=raw + b" ",
        headers={**headers, "x-github-delivery": "d-3"},
    )

    assert accepted.status_code == 202
    assert accepted.headers["x-accepted-by"] == "hookline"
    assert redelivered.headers["idempotent-replayed"] == "true"
    assert other.status_code == 202
    assert forged.status_code == 403

    async def both_done() -> bool:
        ids = [accepted.json()["execution"], other.json()["execution"]]
        records = [(await client.get(f"/api/executions/{i}")).json() for i in ids]
        return all(r["status"] == "succeeded" for r in records)

    await examples.wait_for(both_done)
    assert sorted(examples.receiver.paths()) == ["/chat", "/deploy"]
    deploy = dict(examples.receiver.requests)["/deploy"]
    assert deploy == {"repository": "acme/app", "commit": "abc123"}


async def test_a_signature_checked_by_the_seeds_script_in_a_code_node(examples: Examples) -> None:
    raw = json.dumps({"ref": "refs/heads/main", "after": "abc123"}, separators=(",", ":"))
    digest = hmac.new(b"your-webhook-secret", raw.encode(), "sha256").hexdigest()
    url = "/api/webhooks/script-signed/acme"
    headers = {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}
    signed = await examples.client.post(url, content=raw, headers=headers)
    forged = await examples.client.post(
        url, content=raw, headers={**headers, "x-hub-signature-256": "sha256=" + "0" * 64}
    )
    assert signed.status_code == 200
    assert signed.json() == {"verified": True, "branch": "main", "provider": "acme"}
    assert forged.status_code == 500
    record = (await examples.client.get(forged.headers["location"])).json()
    assert record["status"] == "failed"
    assert "Error: Invalid signature (line 5, column" in json.dumps(record)


async def test_github_form_delivery_deploys_like_the_json_one(examples: Examples) -> None:
    raw, headers = github_push("refs/heads/main", "d-form", form=True)
    accepted = await examples.client.post("/api/webhooks/github/app", content=raw, headers=headers)
    assert accepted.status_code == 202

    async def done() -> bool:
        record = await examples.client.get(f"/api/executions/{accepted.json()['execution']}")
        return bool(record.json()["status"] == "succeeded")

    await examples.wait_for(done)
    assert sorted(examples.receiver.paths()) == ["/chat", "/deploy"]
    deploy = dict(examples.receiver.requests)["/deploy"]
    assert deploy == {"repository": "acme/app", "commit": "abc123"}


async def test_gitlab_failed_pipeline_notifies(examples: Examples) -> None:
    event = {
        "object_kind": "pipeline",
        "object_attributes": {"id": 9, "status": "failed", "ref": "main"},
        "project": {"default_branch": "main", "path_with_namespace": "acme/app"},
    }
    headers = {"x-gitlab-token": SECRETS["GITLAB_WEBHOOK_TOKEN"], "x-gitlab-event": "Pipeline Hook"}
    answer = await examples.client.post(
        "/api/webhooks/gitlab/pipelines", json=event, headers=headers
    )
    assert answer.status_code == 202

    async def notified() -> bool:
        return examples.receiver.paths() == ["/chat"]

    await examples.wait_for(notified)
    assert examples.receiver.requests[0][1] == {"text": "pipeline 9 of acme/app failed"}


async def test_iot_readings_are_stored_in_order_per_device_and_alert(examples: Examples) -> None:
    client = examples.client
    headers = {"x-device-token": SECRETS["IOT_DEVICE_TOKEN"]}
    devices = [f"dev-{n}" for n in range(5)]

    async def send(device: str) -> None:
        for seq in range(12):
            temperature = 90 if (device, seq) == ("dev-3", 7) else 20 + seq
            reading = {"seq": seq, "temperature": temperature, "at": f"t{seq}"}
            answer = await client.post(f"/api/webhooks/iot/{device}", json=reading, headers=headers)
            assert answer.status_code == 202

    async with trio.open_nursery() as nursery:
        for device in devices:
            nursery.start_soon(send, device)

    async def all_stored() -> bool:
        return len(await examples.records("readings")) == 60

    await examples.wait_for(all_stored, timeout=20)
    readings = await examples.records("readings")
    # Records come newest first; per device, creation order must be arrival order.
    for device in devices:
        seqs = [r["seq"] for r in reversed(readings) if r["device"] == device]
        assert seqs == list(range(12))

    async def alerted() -> bool:
        return examples.receiver.paths() == ["/alert"]

    await examples.wait_for(alerted)
    assert examples.receiver.requests[0][1] == {"device": "dev-3", "temperature": 90}


async def test_iot_readings_batched_per_device_are_stored_once_each(examples: Examples) -> None:
    client = examples.client
    headers = {"x-device-token": SECRETS["IOT_DEVICE_TOKEN"]}
    plan = [("dev-a", seq) for seq in range(55)] + [("dev-b", seq) for seq in range(3)]
    ids: dict[tuple[str, int], str] = {}
    for device, seq in plan:  # dev-a fills a batch of 50; the rest wait for the timeout
        reading = {"seq": seq, "temperature": 20, "at": f"t{seq}"}
        answer = await client.post(
            f"/api/webhooks/iot-batched/{device}", json=reading, headers=headers
        )
        assert answer.status_code == 202
        ids[device, seq] = answer.json()["execution_id"]

    async def summarised() -> bool:
        return len(await examples.records("reading_batches")) == 3

    await examples.wait_for(summarised, timeout=30)
    batches = sorted(
        (r["device"], r["first_seq"], r["last_seq"])
        for r in await examples.records("reading_batches")
    )
    assert batches == [("dev-a", 0, 49), ("dev-a", 50, 54), ("dev-b", 0, 2)]
    stored = sorted((r["device"], r["seq"]) for r in await examples.records("batched_readings"))
    assert stored == sorted(plan)  # each reading once
    batch = (await client.get(f"/api/executions/{ids['dev-a', 0]}")).json()
    assert [entry["execution_id"] for entry in batch["batch"]] == [
        ids["dev-a", s] for s in range(50)
    ]
    member = (await client.get(f"/api/executions/{ids['dev-a', 7]}")).json()
    assert member["output"] == {"batched_into": ids["dev-a", 0]}


# -- chat platforms: WeCom, DingTalk and Feishu ---------------------------------------


def wecom_url_check(url: str, echo: str) -> str:
    """The GET WeCom sends when a callback URL is saved (as wechatpy's tests build it)."""
    key = message_key(SECRETS["WECOM_ENCODING_AES_KEY"])
    echostr = encrypt(key, echo.encode(), SECRETS["WECOM_CORP_ID"])
    stamp, nonce = str(int(time.time())), "1372623149"
    query = {
        "msg_signature": signature(SECRETS["WECOM_TOKEN"], stamp, nonce, echostr),
        "timestamp": stamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    return f"{url}?{urllib.parse.urlencode(query)}"


async def test_wecom_url_check_and_a_deploy_request(examples: Examples) -> None:
    client = examples.client
    url = f"{examples.server.url}/api/webhooks/wecom/app"
    checked = await client.get(wecom_url_check(url, "echo-5150"))
    message = (
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[lisi]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[deploy main]]></Content><MsgId>7301</MsgId><AgentID>1000002</AgentID>"
        "</xml>"
    ).format(corp=SECRETS["WECOM_CORP_ID"])
    options = {
        "encoding_aes_key": SECRETS["WECOM_ENCODING_AES_KEY"],
        "corp_id": SECRETS["WECOM_CORP_ID"],
    }
    token = SECRETS["WECOM_TOKEN"]
    signed = sign("wecom", secret=token, body=message.encode(), url=url, options=options)
    headers = {"content-type": "text/xml"}
    received = await client.post(signed.url, content=signed.body, headers=headers)
    forged = sign("wecom", secret="not-the-token", body=message.encode(), url=url, options=options)
    refused = await client.post(forged.url, content=forged.body, headers=headers)

    assert checked.status_code == 200
    assert checked.text == "echo-5150"
    assert received.status_code == 200, received.text
    assert received.content == b""
    assert refused.status_code == 403
    (stored,) = await examples.records("wecom_messages")
    assert {k: stored[k] for k in ("from", "type", "text")} == {
        "from": "lisi",
        "type": "text",
        "text": "deploy main",
    }

    async def deployed() -> bool:
        return examples.receiver.paths() == ["/deploy"]

    await examples.wait_for(deployed)
    assert examples.receiver.requests[0][1] == {"request": "deploy main", "requested_by": "lisi"}


async def test_dingtalk_robot_files_a_task_and_replies(examples: Examples) -> None:
    body = json.dumps(
        {
            "msgtype": "text",
            "msgId": "msgX1",
            "text": {"content": "renew the TLS certificate"},
            "senderNick": "Wang",
            "conversationId": "cid-1",
        }
    ).encode()
    secret = SECRETS["DINGTALK_APP_SECRET"]
    url = "/api/webhooks/dingtalk/robot"
    signed = sign("dingtalk", secret=secret, body=body)
    stale = sign("dingtalk", secret=secret, body=body, timestamp=int(time.time()) - 2 * 3600)
    wrong = sign("dingtalk", secret="another-secret", body=body)
    answers = [
        await examples.client.post(
            url, content=body, headers={**s.headers, "content-type": "application/json"}
        )
        for s in (signed, stale, wrong)
    ]

    assert [a.status_code for a in answers] == [200, 403, 403]
    (task,) = await examples.records("tasks")
    assert task["text"] == "renew the TLS certificate"
    assert answers[0].json() == {
        "msgtype": "text",
        "text": {"content": f"Task {task['id']} filed for Wang"},
    }


async def test_feishu_challenge_and_a_message_forwarded(examples: Examples) -> None:
    client = examples.client
    token, key = SECRETS["FEISHU_VERIFICATION_TOKEN"], SECRETS["FEISHU_ENCRYPT_KEY"]
    url = "/api/webhooks/feishu/events"
    challenge = {"challenge": "c-777", "token": token, "type": "url_verification"}
    event = {
        "schema": "2.0",
        "header": {"event_id": "ev-1", "event_type": "im.message.receive_v1", "token": token},
        "event": {"message": {"chat_id": "oc_1", "content": '{"text":"hello"}'}},
    }

    async def post(payload: dict[str, Any], encrypt_key: str = key) -> httpx.Response:
        signed = sign("feishu", secret=encrypt_key, body=json.dumps(payload).encode())
        assert signed.body is not None
        headers = {**signed.headers, "content-type": "application/json"}
        return await client.post(url, content=signed.body, headers=headers)

    checked = await post(challenge)
    accepted = await post(event)
    refused = await post(event, encrypt_key="another-key")

    assert checked.status_code == 200
    assert checked.json() == {"challenge": "c-777"}
    assert accepted.status_code == 202
    assert refused.status_code == 403

    async def forwarded() -> bool:
        return examples.receiver.paths() == ["/chat"]

    await examples.wait_for(forwarded)
    assert examples.receiver.requests[0][1] == {"content": '{"text":"hello"}', "chat": "oc_1"}
