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
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from aiosmtpd.controller import Controller

from hookline._signing import sign

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


def github_push(ref: str, delivery: str) -> tuple[bytes, dict[str, str]]:
    body = {
        "ref": ref,
        "after": "abc123",
        "repository": {"id": 42, "full_name": "acme/app"},
        "pusher": {"name": "ada"},
        "commits": [{}, {}],
    }
    raw = json.dumps(body).encode()
    signed = sign("github", secret=SECRETS["GITHUB_WEBHOOK_SECRET"], body=raw)
    headers = {
        **signed.headers,
        "content-type": "application/json",
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
