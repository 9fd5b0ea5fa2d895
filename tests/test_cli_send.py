"""``hookline send``: signs as each provider does, against a real hookline server.

The command runs in a worker thread (it is synchronous) while the server runs in the
test's trio loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from hookline.cli import main
from tests.http.test_verification_http import deliveries, hook, serving

SECRET = "cli-send-secret"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOOKS = [
    hook("github", f"github: {{secret: {SECRET}}}"),
    hook("stripe", f"stripe: {{secret: {SECRET}}}"),
    hook("slack", f"slack: {{secret: {SECRET}}}"),
    hook("standard-webhooks", f"standard_webhooks: {{secret: {WHSEC}}}"),
    hook("shopify", f"shopify: {{secret: {SECRET}}}"),
    hook("twilio", f"twilio: {{secret: {SECRET}}}"),
    hook("hmac", f"hmac: {{secret: {SECRET}, header: X-Sig, prefix: 'v1='}}"),
    hook("basic", f"basic: {{username: ops, password: {SECRET}}}"),
    hook("header", f"header: {{name: X-Token, secret: {SECRET}}}"),
]


async def send(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, ["send", *argv])


@pytest.mark.parametrize(
    ("scheme", "path", "extra"),
    [
        ("github", "github", ()),
        ("stripe", "stripe", ()),
        ("slack", "slack", ()),
        ("shopify", "shopify", ()),
        ("twilio", "twilio", ()),
        ("twilio", "twilio?tenant=7", ("--content-type", "application/x-www-form-urlencoded")),
        ("hmac", "hmac", ("--option", "header=X-Sig", "--option", "prefix=v1=")),
        ("basic", "basic", ("--option", "username=ops")),
        ("header", "header", ("--option", "name=X-Token")),
    ],
)
async def test_send_signs_as_the_provider_does(
    scheme: str,
    path: str,
    extra: Sequence[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = tmp_path / "event.json"
    is_form = "application/x-www-form-urlencoded" in extra
    payload.write_bytes(b"From=%2B1555&Body=hi+there" if is_form else b'{"event": "push"}')
    async with serving(HOOKS) as server:
        url = f"{server.url}/api/webhooks/{path}"
        good = await send(
            url, "--scheme", scheme, "--secret", SECRET, "--data", f"@{payload}", *extra
        )
        accepted = capsys.readouterr().out
        bad = await send(
            url, "--scheme", scheme, "--secret", "wrong", "--data", f"@{payload}", *extra
        )
        refused = capsys.readouterr().out
        key = path.split("?", maxsplit=1)[0]
        records = await deliveries(server, key)

    assert good == 0
    assert accepted.startswith("202 Accepted\n")
    assert '"status":"queued"' in accepted
    assert bad == 1
    assert refused.startswith("403 Forbidden\n")
    assert "application/problem+json" not in refused  # the body is printed, not headers
    assert '"status":403' in refused
    assert [d.verdict for d in records] == ["accepted", "rejected"]
    assert records[0].body == payload.read_bytes()


async def test_send_standard_webhooks_with_inline_data_and_extra_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serving(HOOKS) as server:
        url = f"{server.url}/api/webhooks/standard-webhooks"
        status = await send(
            url,
            "--scheme",
            "standard_webhooks",
            "--secret",
            WHSEC,
            "--data",
            '{"type": "invoice.paid"}',
            "--header",
            "X-Trace: abc-123",
            "--method",
            "post",
        )
        (record,) = await deliveries(server, "standard-webhooks")
    assert status == 0
    assert record.headers["x-trace"] == "abc-123"
    assert record.headers["webhook-id"].startswith("msg_")
    assert record.headers["webhook-signature"] == "[redacted]"
    assert capsys.readouterr().out.startswith("202 ")


async def test_a_header_can_override_the_signature(capsys: pytest.CaptureFixture[str]) -> None:
    async with serving(HOOKS) as server:
        url = f"{server.url}/api/webhooks/github"
        status = await send(
            url,
            "--scheme",
            "github",
            "--secret",
            SECRET,
            "--data",
            "{}",
            "--header",
            "X-Hub-Signature-256: sha256=00",
        )
    assert status == 1
    assert capsys.readouterr().out.startswith("403 ")


async def test_no_answer_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        status = await send(
            f"http://127.0.0.1:{port}/api/webhooks/x", "--scheme", "github", "--secret", "s"
        )
    assert status == 1
    assert "no answer from" in capsys.readouterr().err


def test_a_missing_scheme_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["send", "http://127.0.0.1:9/x", "--scheme", "hmac", "--secret", "s"])
    assert status == 2
    assert "header" in capsys.readouterr().err


def test_an_unreadable_data_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    status = main(
        [
            "send",
            "http://127.0.0.1:9/x",
            "--scheme",
            "github",
            "--secret",
            "s",
            "--data",
            f"@{missing}",
        ]
    )
    assert status == 2
    assert "cannot read" in capsys.readouterr().err


AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CHAT_HOOKS = [
    """
key: wecom
trigger:
  path: wecom
  mode: sync
  verify: [{wecom: {token: tok, encoding_aes_key: AES_KEY, corp_id: ww1}}]
nodes:
  - {key: out, type: end, output: {text: "{{$context.data.xml.Content}}"}}
""".replace("AES_KEY", AES_KEY),
    """
key: feishu
trigger:
  path: feishu
  mode: sync
  verify: [{feishu: {verification_token: vt, encrypt_key: ek}}]
nodes:
  - {key: out, type: end, output: {type: "{{$context.data.header.event_type}}"}}
""",
    """
key: dingtalk
trigger:
  path: dingtalk
  mode: sync
  verify: [{dingtalk: {secret: SECding}}]
nodes:
  - {key: out, type: end, output: {text: "{{$context.data.text.content}}"}}
""",
]


@pytest.mark.parametrize(
    ("scheme", "secret", "data", "extra", "output"),
    [
        (
            "wecom",
            "tok",
            "<xml><Content>hi</Content></xml>",
            ("--option", f"encoding_aes_key={AES_KEY}", "--option", "corp_id=ww1"),
            '"output":{"text":"hi"}',
        ),
        (
            "feishu",
            "ek",
            '{"schema": "2.0", "header": {"token": "vt", "event_type": "im.chat.x"}}',
            (),
            '"output":{"type":"im.chat.x"}',
        ),
        ("dingtalk", "SECding", '{"text": {"content": "hi"}}', (), '"output":{"text":"hi"}'),
    ],
)
async def test_send_signs_and_encrypts_as_the_chat_platforms_do(
    scheme: str,
    secret: str,
    data: str,
    extra: Sequence[str],
    output: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serving(CHAT_HOOKS) as server:
        url = f"{server.url}/api/webhooks/{scheme}"
        good = await send(url, "--scheme", scheme, "--secret", secret, "--data", data, *extra)
        answered = capsys.readouterr().out
        bad = await send(url, "--scheme", scheme, "--secret", "wrong", "--data", data, *extra)
        refused = capsys.readouterr().out
    assert good == 0, answered
    assert answered.startswith("200 OK\n")
    assert output in answered
    assert bad == 1
    assert refused.startswith("403 Forbidden\n")
