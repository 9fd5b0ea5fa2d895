"""The generic ``hmac`` scheme and the shared-credential schemes (gitlab, basic, bearer,
header)."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest

from hookline.errors import Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verifier, compile_verifiers

NOW = 1_700_000_000
SECRET = "generic-shared-secret"


def verification(scheme: str, **options: Any) -> Verification:
    return compile_verifiers([Verifier(scheme, options)], source="t.yaml", path="verify")


def request(headers: dict[str, str], body: bytes = b'{"n": 1}') -> SignedRequest:
    return SignedRequest(method="POST", url="https://h.example/x", headers=headers, body=body)


def mac(content: bytes, digest: str = "sha256", key: str = SECRET) -> bytes:
    return hmac.new(key.encode(), content, digest).digest()


# -- hmac -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_algorithms_and_encodings(algorithm: str, encoding: str) -> None:
    body = b'{"event": "ping"}'
    raw = mac(body, algorithm)
    text = raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()
    check = verification(
        "hmac", secret=SECRET, header="X-Signature", algorithm=algorithm, encoding=encoding
    )
    check.verify(request({"x-signature": text}, body), NOW)
    with pytest.raises(Forbidden, match="does not match"):
        check.verify(request({"x-signature": text}, body + b"\n"), NOW)


def test_hmac_prefix_is_required_when_configured() -> None:
    body = b"payload"
    check = verification("hmac", secret=SECRET, header="X-Sig", prefix="sha256=")
    check.verify(request({"x-sig": "sha256=" + mac(body).hex()}, body), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(request({"x-sig": mac(body).hex()}, body), NOW)


def signed_headers(timestamp: int, ident: str = "evt_1", body: bytes = b"{}") -> dict[str, str]:
    signature = mac(f"{timestamp}:{ident}:".encode() + body).hex()
    return {"x-sig": signature, "x-time": str(timestamp), "x-id": ident}


def timed(**more: Any) -> Verification:
    return verification(
        "hmac",
        secret=SECRET,
        header="X-Sig",
        signed="{timestamp}:{id}:{body}",
        timestamp_header="X-Time",
        id_header="X-Id",
        **more,
    )


def test_hmac_signed_template_covers_timestamp_and_id() -> None:
    check = timed()
    check.verify(request(signed_headers(NOW), b"{}"), NOW)
    for name, value in [("x-time", str(NOW + 1)), ("x-id", "evt_2")]:
        with pytest.raises(Forbidden, match="does not match"):
            check.verify(request({**signed_headers(NOW), name: value}, b"{}"), NOW)


@pytest.mark.parametrize(
    ("offset", "passes"),
    [(300, True), (-300, True), (301, False), (-301, False)],
    ids=["old-at-bound", "future-at-bound", "stale", "future"],
)
def test_hmac_timestamp_window(offset: int, passes: bool) -> None:
    signed = request(signed_headers(NOW), b"{}")
    if passes:
        timed().verify(signed, NOW + offset)
    else:
        with pytest.raises(Forbidden, match="timestamp"):
            timed().verify(signed, NOW + offset)


def test_hmac_tolerance_option() -> None:
    timed(tolerance="1h").verify(request(signed_headers(NOW), b"{}"), NOW + 3600)


@pytest.mark.parametrize("missing", ["x-sig", "x-time", "x-id"])
def test_hmac_missing_header_is_401(missing: str) -> None:
    headers = signed_headers(NOW)
    del headers[missing]
    with pytest.raises(Unauthenticated):
        timed().verify(request(headers, b"{}"), NOW)


def test_hmac_rotated_secrets_and_wrong_secret() -> None:
    body = b"x"
    header = {"x-sig": mac(body).hex()}
    verification("hmac", secrets=["new", SECRET], header="X-Sig").verify(request(header, body), NOW)
    with pytest.raises(Forbidden):
        verification("hmac", secret="new", header="X-Sig").verify(request(header, body), NOW)


def test_hmac_malformed_timestamp_or_signature_is_403() -> None:
    with pytest.raises(Forbidden):
        timed().verify(request({**signed_headers(NOW), "x-time": "now"}, b"{}"), NOW)
    with pytest.raises(Forbidden):
        timed().verify(request({**signed_headers(NOW), "x-sig": "zz"}, b"{}"), NOW)


# -- gitlab, header, bearer -----------------------------------------------------------


def test_gitlab_token() -> None:
    check = verification("gitlab", secrets=["old-token", "new-token"])
    check.verify(request({"x-gitlab-token": "new-token"}), NOW)
    check.verify(request({"x-gitlab-token": "old-token"}), NOW)
    with pytest.raises(Forbidden):
        check.verify(request({"x-gitlab-token": "new-toke"}), NOW)
    with pytest.raises(Unauthenticated, match="X-Gitlab-Token"):
        check.verify(request({}), NOW)
    assert check.secret_headers == {"x-gitlab-token"}


def test_shared_header_matches_in_any_case() -> None:
    check = verification("header", name="X-Webhook-Token", secret="s3cret")
    check.verify(request({"x-webhook-token": "s3cret"}), NOW)
    with pytest.raises(Forbidden):
        check.verify(request({"x-webhook-token": "S3CRET"}), NOW)
    with pytest.raises(Unauthenticated, match="X-Webhook-Token"):
        check.verify(request({"x-other": "s3cret"}), NOW)
    with pytest.raises(Unauthenticated):
        check.verify(request({"x-webhook-token": ""}), NOW)


def test_bearer() -> None:
    check = verification("bearer", secrets=["tok-1", "tok-2"])
    check.verify(request({"authorization": "Bearer tok-2"}), NOW)
    check.verify(request({"authorization": "bearer tok-1"}), NOW)
    with pytest.raises(Forbidden):
        check.verify(request({"authorization": "Bearer tok-3"}), NOW)
    with pytest.raises(Unauthenticated) as missing:
        check.verify(request({}), NOW)
    assert missing.value.challenge is not None
    assert missing.value.challenge.startswith("Bearer")
    with pytest.raises(Unauthenticated):
        check.verify(request({"authorization": "Basic dG9rLTI="}), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(request({"authorization": "Bearer "}), NOW)


# -- basic ----------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_single_user() -> None:
    check = verification("basic", username="crm", password="p:a:ss")
    check.verify(request(basic("crm", "p:a:ss")), NOW)
    for user, password in [("crm", "wrong"), ("other", "p:a:ss"), ("CRM", "p:a:ss")]:
        with pytest.raises(Forbidden):
            check.verify(request(basic(user, password)), NOW)


def test_basic_users_map() -> None:
    check = verification("basic", users={"alice": "a-pass", "bob": "b-pass"})
    check.verify(request(basic("alice", "a-pass")), NOW)
    check.verify(request(basic("bob", "b-pass")), NOW)
    with pytest.raises(Forbidden):
        check.verify(request(basic("alice", "b-pass")), NOW)


def test_basic_missing_is_401_with_challenge_and_malformed_is_403() -> None:
    check = verification("basic", username="u", password="p")
    with pytest.raises(Unauthenticated) as missing:
        check.verify(request({}), NOW)
    assert missing.value.challenge is not None
    assert missing.value.challenge.startswith("Basic")
    for header in ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()]:
        with pytest.raises(Forbidden, match="malformed"):
            check.verify(request({"authorization": header}), NOW)
