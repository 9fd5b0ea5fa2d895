"""HTTPS: ``server.certfile``/``server.keyfile`` served by hypercorn, checked with a trustme CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from hookline._cli_send import send_webhook
from hookline._signing import sign
from tests.conftest import StoreFactory
from tests.http.conftest import assert_problem
from tests.http.test_verification_http import deliveries, hook, serving

SECRET = "tls-webhook-secret"
GITHUB = hook("secure", f"github: {{secret: {SECRET}}}")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return {"certfile": str(certfile), "keyfile": str(keyfile)}


def root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return error


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_a_signed_webhook_over_https(
    ca: trustme.CA, tls_files: dict[str, str], make_store: StoreFactory
) -> None:
    client = {"verify": trusting(ca)}
    async with serving([GITHUB], client=client, **tls_files, store=make_store()) as server:
        body = b'{"ref": "refs/heads/main"}'
        signed = sign("github", secret=SECRET, body=body)
        accepted = await server.client.post(
            "/api/webhooks/secure", content=body, headers=dict(signed.headers)
        )
        forged = sign("github", secret="guess", body=body)
        refused = await server.client.post(
            "/api/webhooks/secure", content=body, headers=dict(forged.headers)
        )
        records = await deliveries(server, "secure")

    assert server.url.startswith("https://127.0.0.1:")
    assert accepted.status_code == 202, accepted.text
    assert_problem(refused, 403)
    assert [d.verdict for d in records] == ["accepted", "rejected"]


async def test_hookline_send_over_https(
    ca: trustme.CA, tls_files: dict[str, str], make_store: StoreFactory
) -> None:
    async with serving(
        [GITHUB], client={"verify": trusting(ca)}, **tls_files, store=make_store()
    ) as server:
        answer = await trio.to_thread.run_sync(
            lambda: send_webhook(
                f"{server.url}/api/webhooks/secure",
                scheme="github",
                secret=SECRET,
                body=b'{"via": "send"}',
                verify=trusting(ca),
            )
        )
    assert answer.status_code == 202, answer.text


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    ca: trustme.CA,
    tls_files: dict[str, str],
    make_store: StoreFactory,
) -> None:
    async with serving(
        [GITHUB], client={"verify": trusting(ca)}, **tls_files, store=make_store()
    ) as server:
        async with httpx.AsyncClient(verify=ssl.create_default_context()) as stranger:
            with pytest.raises(httpx.ConnectError) as failed:
                await stranger.post(f"{server.url}/api/webhooks/secure", content=b"{}")
            assert isinstance(root_cause(failed.value), ssl.SSLCertVerificationError)
        plain = server.url.replace("https://", "http://")
        async with httpx.AsyncClient() as cleartext:
            # Plain HTTP on the TLS port gets no webhook answer.
            with pytest.raises(httpx.HTTPError):
                await cleartext.post(f"{plain}/api/webhooks/secure", content=b"{}")
        records = await deliveries(server, "secure")
    assert records == []
