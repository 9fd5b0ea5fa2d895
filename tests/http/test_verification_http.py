"""Request verification through a real server: every scheme, ``ip_allow``, trusted proxies.

Senders sign with :func:`hookline._signing.sign`, the same code ``hookline send`` uses.
A valid request is accepted (202); a wrong signature or credential is 403, a missing one
401; a refused request never starts an execution and is recorded with its reason, its
secret headers redacted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hookline._signing import sign
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflows
from hookline.http._client_ip import IPNetwork
from hookline.http._serve import serve
from hookline.store._records import DeliveryRecord
from hookline.store._store import MemoryStore, Store
from tests.conftest import StoreFactory
from tests.http.conftest import Server, assert_problem, workflows


@asynccontextmanager
async def serving(
    texts: Iterable[str],
    *,
    client: Mapping[str, Any] | None = None,
    store: Store | None = None,
    **serve_options: Any,
) -> AsyncIterator[Server]:
    """Like ``running_server``, with :func:`serve`'s options (trusted proxies, TLS,
    limits) and the client's (``verify`` for TLS); ``store`` defaults to a new
    in-memory one."""
    store = MemoryStore() if store is None else store
    async with open_engine(workflows(*texts), store=store) as engine:
        async with trio.open_nursery() as nursery:
            options = {"bind": "127.0.0.1:0", **serve_options}
            urls = await nursery.start(partial(serve, engine, **options))
            async with httpx.AsyncClient(base_url=urls[0], timeout=10.0, **(client or {})) as http:
                yield Server(engine, urls[0], http)
            nursery.cancel_scope.cancel()


async def deliveries(server: Server, workflow: str) -> list[DeliveryRecord]:
    await server.engine.store.flush()
    page = await server.engine.store.list_deliveries(workflow=workflow)
    return sorted(page.items, key=lambda d: d.received_at)


async def executions(server: Server, workflow: str) -> int:
    await server.engine.store.flush()
    return len((await server.engine.store.list_executions(workflow=workflow)).items)


def hook(key: str, verify: str = "", extra: str = "") -> str:
    """A workflow at ``/api/webhooks/<key>`` with a ``verify`` entry (flow YAML)."""
    checks = f"\n  verify:\n    - {verify}" if verify else ""
    return f"""
key: {key}
trigger:
  type: webhook
  path: {key}{checks}{extra}
nodes:
  - {{key: done, type: set, values: {{ok: true}}}}
"""


SECRET = "s3cr3t-Value-98765"
WRONG = "not-the-secret-at-all"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HMAC_OPTIONS = {
    "header": "X-Signature",
    "algorithm": "sha512",
    "encoding": "base64",
    "prefix": "sha512=",
    "signed": "{timestamp}.{body}",
    "timestamp_header": "X-Timestamp",
}


class Scheme:
    """One ``verify`` scheme as a workflow configures it and a sender signs for it."""

    def __init__(
        self,
        name: str,
        verify: str,
        *,
        secret: str = SECRET,
        wrong: str = WRONG,
        options: Mapping[str, str] | None = None,
        content_type: str = JSON,
        body: bytes = b'{"event": "ping", "n": 1}',
        challenge: str | None = None,
    ) -> None:
        self.name = name
        self.key = name.replace("_", "-")
        self.verify = verify
        self.secret = secret
        self.wrong = wrong
        self.options = dict(options or {})
        self.content_type = content_type
        self.body = body
        self.challenge = challenge

    def __repr__(self) -> str:
        return self.name

    def signed(self, base_url: str, secret: str) -> tuple[str, dict[str, str]]:
        url = f"{base_url}/api/webhooks/{self.key}"
        done = sign(
            self.name,
            secret=secret,
            body=self.body,
            url=url,
            content_type=self.content_type,
            options=self.options,
        )
        return done.url, {"content-type": self.content_type, **done.headers}


SCHEMES = [
    Scheme("github", f"github: {{secret: {SECRET}}}"),
    Scheme("gitlab", f"gitlab: {{secrets: [old-token, {SECRET}]}}"),
    Scheme("stripe", f"stripe: {{secret: {SECRET}}}"),
    Scheme("slack", f"slack: {{secret: {SECRET}}}", content_type=FORM, body=b"text=hi&user=u1"),
    Scheme(
        "standard_webhooks",
        f"standard_webhooks: {{secret: {WHSEC}}}",
        secret=WHSEC,
        wrong="whsec_" + "QUJD" * 8,
    ),
    Scheme("shopify", f"shopify: {{secret: {SECRET}}}"),
    Scheme(
        "twilio",
        f"twilio: {{secret: {SECRET}}}",
        content_type=FORM,
        body=b"CallSid=CA123&From=%2B15550001111&Body=hello+there",
    ),
    Scheme(
        "hmac",
        "hmac: {secret: " + SECRET + ", header: X-Signature, algorithm: sha512, "
        "encoding: base64, prefix: 'sha512=', signed: '{timestamp}.{body}', "
        "timestamp_header: X-Timestamp}",
        options=HMAC_OPTIONS,
    ),
    Scheme(
        "basic",
        f"basic: {{users: {{hooks: {SECRET}}}}}",
        options={"username": "hooks"},
        challenge="Basic",
    ),
    Scheme("bearer", f"bearer: {{secret: {SECRET}}}", challenge="Bearer"),
    Scheme(
        "header",
        f"header: {{name: X-Webhook-Token, secret: {SECRET}}}",
        options={"name": "X-Webhook-Token"},
    ),
    Scheme(
        "jwt",
        f"jwt: {{secret: {SECRET}-at-least-32-bytes-long!!, algorithms: [HS256]}}",
        secret=f"{SECRET}-at-least-32-bytes-long!!",
        wrong=f"{WRONG}-at-least-32-bytes-long!!",
        challenge="Bearer",
    ),
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=repr)
async def test_valid_is_accepted_wrong_is_403_missing_is_401(
    scheme: Scheme,
    caplog: pytest.LogCaptureFixture,
    make_store: StoreFactory,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving([hook(scheme.key, scheme.verify)], store=make_store()) as server:
        url, headers = scheme.signed(server.url, scheme.secret)
        valid = await server.client.post(url, content=scheme.body, headers=headers)
        wrong_url, wrong_headers = scheme.signed(server.url, scheme.wrong)
        wrong = await server.client.post(wrong_url, content=scheme.body, headers=wrong_headers)
        missing = await server.client.post(
            url, content=scheme.body, headers={"content-type": scheme.content_type}
        )
        tampered = await server.client.post(url, content=scheme.body + b" ", headers=headers)
        records = await deliveries(server, scheme.key)
        started = await executions(server, scheme.key)

    assert valid.status_code == 202, valid.text
    assert_problem(wrong, 403)
    missing_problem = assert_problem(missing, 401)
    if scheme.challenge is None:
        assert "www-authenticate" not in missing.headers
    else:
        assert missing.headers["www-authenticate"].startswith(scheme.challenge)
    # Credential schemes do not sign the body; every other scheme does.
    if scheme.name in {"gitlab", "basic", "bearer", "header", "jwt"}:
        assert tampered.status_code == 202
    else:
        assert_problem(tampered, 403)
    assert started == (1 if tampered.status_code == 403 else 2)
    assert [(d.verdict, d.status) for d in records] == [
        ("accepted", 202),
        ("rejected", 403),
        ("rejected", 401),
        ("accepted" if tampered.status_code == 202 else "rejected", tampered.status_code),
    ]
    assert records[2].reason == missing_problem["detail"]
    # No stored header and no log line holds a credential or a signature.
    secrets = [value for name, value in headers.items() if name != "content-type"]
    secrets += [value for name, value in wrong_headers.items() if name != "content-type"]
    secrets = [s for s in secrets if not s.isdigit() and not s.startswith("msg_")]
    assert secrets
    for record in records:
        stored = repr(record.headers)
        assert not any(secret in stored for secret in secrets), stored
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged
    assert not any(secret in logged for secret in secrets)


async def test_a_rotated_secret_still_verifies(make_store: StoreFactory) -> None:
    verify = f"github: {{secrets: [{SECRET}, next-secret]}}"
    async with serving([hook("rotated", verify)], store=make_store()) as server:
        answers = []
        for secret in (SECRET, "next-secret", "retired-secret"):
            body = b'{"rotated": true}'
            signed = sign("github", secret=secret, body=body)
            answers.append(
                await server.client.post(
                    "/api/webhooks/rotated", content=body, headers=dict(signed.headers)
                )
            )
    assert [a.status_code for a in answers] == [202, 202, 403]


async def test_jwt_claims_become_context_jwt(make_store: StoreFactory) -> None:
    key = "a-shared-jwt-key-that-is-32-bytes!!"
    text = f"""
key: claims
trigger:
  type: webhook
  path: claims
  mode: sync
  verify:
    - jwt: {{secret: "{key}", algorithms: [HS256], audience: hookline}}
nodes:
  - key: out
    type: end
    output: {{sub: "{{{{$context.jwt.sub}}}}", aud: "{{{{$context.jwt.aud}}}}"}}
"""
    async with serving([text], store=make_store()) as server:
        body = b'{"hello": "world"}'
        signed = sign(
            "jwt", secret=key, body=body, options={"audience": "hookline", "subject": "device-7"}
        )
        answer = await server.client.post(
            "/api/webhooks/claims", content=body, headers={**signed.headers, "content-type": JSON}
        )
        other = sign("jwt", secret=key, body=body, options={"audience": "someone-else"})
        refused = await server.client.post(
            "/api/webhooks/claims", content=body, headers=dict(other.headers)
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"] == {"sub": "device-7", "aud": "hookline"}
    assert_problem(refused, 403)


async def test_configured_secret_headers_are_redacted_in_records_and_context(
    make_store: StoreFactory,
) -> None:
    verify = f"header: {{name: X-Webhook-Token, secret: {SECRET}}}"
    async with serving([hook("custom", verify)], store=make_store()) as server:
        accepted = await server.client.post(
            "/api/webhooks/custom", json={"a": 1}, headers={"X-Webhook-Token": SECRET}
        )
        await server.client.post(
            "/api/webhooks/custom", json={"a": 1}, headers={"X-Webhook-Token": WRONG}
        )
        records = await deliveries(server, "custom")
        execution = await server.engine.store.get_execution(accepted.json()["execution_id"])

    assert [d.headers["x-webhook-token"] for d in records] == ["[redacted]", "[redacted]"]
    assert execution is not None
    assert execution.context["headers"]["x-webhook-token"] == "[redacted]"
    assert SECRET not in repr(execution.context)


async def test_verification_runs_on_the_raw_bytes_as_sent(make_store: StoreFactory) -> None:
    # Re-serialising this JSON would change its spacing and key order, and the signature.
    body = b'{ "b": 1,\n  "a": [1, 2.50, "\\u00e9"] }'
    async with serving(
        [hook("raw", f"github: {{secret: {SECRET}}}")], store=make_store()
    ) as server:
        signed = sign("github", secret=SECRET, body=body)
        answer = await server.client.post(
            "/api/webhooks/raw", content=body, headers={**signed.headers, "content-type": JSON}
        )
    assert answer.status_code == 202, answer.text


async def test_a_stale_stripe_timestamp_is_403(make_store: StoreFactory) -> None:
    async with serving(
        [hook("stale", f"stripe: {{secret: {SECRET}}}")], store=make_store()
    ) as server:
        body = b'{"id": "evt_1"}'
        signed = sign("stripe", secret=SECRET, body=body, timestamp=1_600_000_000)
        answer = await server.client.post(
            "/api/webhooks/stale", content=body, headers=dict(signed.headers)
        )
    assert assert_problem(answer, 403)["detail"] == "the request timestamp is too old"


# -- ip_allow and trusted proxies ---------------------------------------------------------


def allowing(*networks: str) -> str:
    listed = ", ".join(f'"{network}"' for network in networks)
    return hook("guarded", extra=f"\n  ip_allow: [{listed}]")


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        (("127.0.0.1",), 202),
        (("127.0.0.0/8",), 202),
        (("10.0.0.0/8", "127.0.0.0/31"), 202),
        (("::ffff:127.0.0.1",), 202),
        (("10.0.0.0/8",), 403),
        (("::1",), 403),
        (("127.0.0.2",), 403),
    ],
)
async def test_ip_allow_admits_listed_v4_addresses_and_networks(
    allow: Sequence[str],
    expected: int,
    make_store: StoreFactory,
) -> None:
    async with serving([allowing(*allow)], store=make_store()) as server:
        answer = await server.client.post("/api/webhooks/guarded", json={"x": 1})
        records = await deliveries(server, "guarded")
        started = await executions(server, "guarded")
    assert answer.status_code == expected, answer.text
    assert started == (1 if expected == 202 else 0)
    assert records[0].remote_addr == "127.0.0.1"
    if expected == 403:
        assert_problem(answer, 403)
        assert records[0].reason == "the client address is not allowed to call this webhook"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this host")
@pytest.mark.parametrize(
    ("allow", "expected"), [(("::1",), 202), (("::/127",), 202), (("fe80::/10", "127.0.0.1"), 403)]
)
async def test_ip_allow_admits_listed_v6_addresses_and_networks(
    allow: Sequence[str],
    expected: int,
    make_store: StoreFactory,
) -> None:
    async with serving([allowing(*allow)], bind="[::1]:0", store=make_store()) as server:
        answer = await server.client.post("/api/webhooks/guarded", json={"x": 1})
        records = await deliveries(server, "guarded")
    assert answer.status_code == expected, answer.text
    assert records[0].remote_addr == "::1"


def proxies(*networks: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network) for network in networks)


@pytest.mark.parametrize(
    ("trusted", "forwarded", "client", "expected"),
    [
        # Untrusted peer: a spoofed X-Forwarded-For is ignored.
        ((), "203.0.113.9", "127.0.0.1", 403),
        (("10.0.0.0/8",), "203.0.113.9", "127.0.0.1", 403),
        # Trusted peer: the client it names is believed.
        (("127.0.0.1/32",), "203.0.113.9", "203.0.113.9", 202),
        (("127.0.0.1/32",), "198.51.100.1", "198.51.100.1", 403),
        # A chain: trusted hops are peeled from the right, the first untrusted is the client.
        (("127.0.0.1/32", "10.0.0.0/8"), "203.0.113.9, 10.1.1.1, 10.2.2.2", "203.0.113.9", 202),
        # A spoofed entry left of an untrusted hop does not count.
        (("127.0.0.1/32",), "203.0.113.9, 198.51.100.1", "198.51.100.1", 403),
        (("127.0.0.1/32",), "2001:db8::7", "2001:db8::7", 202),
    ],
)
async def test_trusted_proxy_chains_name_the_client(
    trusted: Sequence[str],
    forwarded: str,
    client: str,
    expected: int,
    make_store: StoreFactory,
) -> None:
    allow = allowing("203.0.113.0/24", "2001:db8::/32")
    async with serving([allow], trusted_proxies=proxies(*trusted), store=make_store()) as server:
        answer = await server.client.post(
            "/api/webhooks/guarded", json={"x": 1}, headers={"x-forwarded-for": forwarded}
        )
        records = await deliveries(server, "guarded")
    assert answer.status_code == expected, answer.text
    assert records[0].remote_addr == client


async def test_remote_addr_in_context_is_the_resolved_client(make_store: StoreFactory) -> None:
    text = """
key: who
trigger: {type: webhook, path: who, mode: sync}
nodes:
  - {key: out, type: end, output: "{{$context.remote_addr}}"}
"""
    async with serving(
        [text], trusted_proxies=proxies("127.0.0.0/8"), store=make_store()
    ) as server:
        forwarded = await server.client.post(
            "/api/webhooks/who", headers={"forwarded": 'for="[2001:db8::9]:4711";proto=https'}
        )
        direct = await server.client.post("/api/webhooks/who")
    assert forwarded.json()["output"] == "2001:db8::9"
    assert direct.json()["output"] == "127.0.0.1"


async def test_twilio_behind_a_trusted_proxy_verifies_the_public_url(
    make_store: StoreFactory,
) -> None:
    public = "https://hooks.example.com/api/webhooks/twilio?tenant=a"
    body = b"CallSid=CA1&Body=hi"
    signed = sign("twilio", secret=SECRET, body=body, url=public, content_type=FORM)
    headers = {
        **signed.headers,
        "content-type": FORM,
        "x-forwarded-proto": "https",
        "x-forwarded-host": "hooks.example.com",
        "x-forwarded-for": "203.0.113.9",
    }
    workflow = hook("twilio", f"twilio: {{secret: {SECRET}}}")
    async with serving(
        [workflow], trusted_proxies=proxies("127.0.0.1/32"), store=make_store()
    ) as server:
        behind = await server.client.post(
            "/api/webhooks/twilio?tenant=a", content=body, headers=headers
        )
    async with serving([workflow], store=make_store()) as server:
        # Not a trusted proxy: its forwarded host cannot vouch for the URL Twilio signed.
        untrusted = await server.client.post(
            "/api/webhooks/twilio?tenant=a", content=body, headers=headers
        )
    assert behind.status_code == 202, behind.text
    assert_problem(untrusted, 403)


async def test_ip_is_checked_before_the_signature(make_store: StoreFactory) -> None:
    workflow = hook("both", f"github: {{secret: {SECRET}}}", extra='\n  ip_allow: ["10.0.0.0/8"]')
    async with serving([workflow], store=make_store()) as server:
        unsigned = await server.client.post("/api/webhooks/both", json={})
    # A 401 would tell an outsider which credential to bring.
    assert_problem(unsigned, 403)


def test_bad_verify_options_are_refused_at_load_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "a-good.yaml").write_text(hook("good", f"github: {{secret: {SECRET}}}"))
    (tmp_path / "b-bad.yaml").write_text(hook("bad", "github: {secret: 42}"))
    (tmp_path / "c-unset.yaml").write_text(hook("unset", "stripe: {secret: env:NO_SUCH_VAR_X}"))

    result = load_workflows(tmp_path, env={})

    assert [w.key for w in result.workflows] == ["good"]
    assert len(result.workflows[0].trigger.verification.checks) == 1
    bad, unset = result.errors
    assert bad.source.endswith("b-bad.yaml")
    assert bad.path == "trigger.verify[0].github.secret"
    assert unset.path.startswith("trigger.verify[0].stripe")
    assert "NO_SUCH_VAR_X" in str(unset)
