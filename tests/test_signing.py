"""``hookline send``'s signing: published vectors, and a round trip through verification
for every scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hookline._signing import SCHEMES, sign
from hookline.engine._loader import VERIFY_SCHEMES
from hookline.errors import Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verifier, compile_verifiers

NOW = 1_700_000_000
URL = "https://hooks.example.com/api/webhooks/t?x=1"


def test_github_published_example() -> None:
    signed = sign("github", secret="It's a Secret to Everybody", body=b"Hello, World!")
    digest = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signed.headers == {"X-Hub-Signature-256": f"sha256={digest}"}


def test_slack_published_example() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signed = sign(
        "slack", secret="8f742231b10e8888abcd99yyyzzz85a5", body=body, timestamp=1531420618
    )
    assert signed.headers["X-Slack-Signature"] == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )
    assert signed.headers["X-Slack-Request-Timestamp"] == "1531420618"


def test_standard_webhooks_published_example() -> None:
    signed = sign(
        "standard_webhooks",
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        body=b'{"test": 2432232314}',
        timestamp=1614265330,
        message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
    )
    assert signed.headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_twilio_published_examples() -> None:
    form = sign(
        "twilio",
        secret="12345",
        url="https://mycompany.com/myapp.php?foo=1&bar=2",
        body=b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&"
        b"From=%2B14158675309&To=%2B18005551212",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert form.headers == {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    assert form.url == "https://mycompany.com/myapp.php?foo=1&bar=2"
    json_body = sign(
        "twilio",
        secret="12345",
        url="https://mycompany.com/myapp.php?foo=1&bar=2",
        body=b'{"property": "value", "boolean": true}',
        content_type="application/json",
    )
    assert json_body.url.endswith(
        "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    )
    assert json_body.headers == {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}


def test_every_verify_scheme_can_be_signed() -> None:
    assert set(SCHEMES) == set(VERIFY_SCHEMES)


def es256_keys() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def round_trip_cases() -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(scheme, secret, verify options, signing options)."""
    private_pem, public_pem = es256_keys()
    hmac_options = {
        "header": "X-Signature",
        "algorithm": "sha1",
        "encoding": "base64",
        "prefix": "sha1=",
        "signed": "{timestamp}.{id}.{body}",
        "timestamp_header": "X-Timestamp",
        "id_header": "X-Delivery",
    }
    jwt_claims = {"audience": "hookline", "issuer": "tests"}
    return [
        ("github", "s", {"secret": "s"}, {}),
        ("gitlab", "s", {"secret": "s"}, {}),
        ("stripe", "whsec_abc", {"secret": "whsec_abc"}, {}),
        ("slack", "s", {"secret": "s"}, {}),
        ("standard_webhooks", "whsec_c2VjcmV0", {"secret": "whsec_c2VjcmV0"}, {}),
        ("shopify", "s", {"secret": "s"}, {}),
        ("twilio", "token", {"secret": "token"}, {}),
        ("twilio", "shared", {"secrets": ["token", "shared"]}, {"algorithm": "HMAC_SHA256"}),
        ("dingtalk", "SECabc", {"secret": "SECabc"}, {}),
        ("hmac", "s", {"secret": "s", **hmac_options}, hmac_options),
        ("basic", "pw", {"username": "crm", "password": "pw"}, {"username": "crm"}),
        ("bearer", "tok", {"secret": "tok"}, {}),
        ("header", "tok", {"name": "X-Token", "secret": "tok"}, {"name": "X-Token"}),
        ("jwt", "k" * 32, {"secret": "k" * 32, "algorithms": ["HS256"], **jwt_claims}, jwt_claims),
        (
            "jwt",
            private_pem,
            {"public_key": public_pem, "algorithms": ["ES256"]},
            {"algorithm": "ES256"},
        ),
    ]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_signed_requests_pass_verification_and_tampered_ones_do_not(content_type: str) -> None:
    body = b"a=1&b=two&b=three" if content_type.endswith("urlencoded") else b'{"a": [1, 2]}'
    form = (
        (("a", "1"), ("b", "two"), ("b", "three")) if content_type.endswith("urlencoded") else None
    )
    for scheme, secret, verify_options, options in round_trip_cases():
        signed = sign(
            scheme,
            secret=secret,
            body=body,
            url=URL,
            content_type=content_type,
            timestamp=NOW,
            options=options,
        )
        headers = {name.lower(): value for name, value in signed.headers.items()}
        verification = compile_verifiers(
            [Verifier(scheme, verify_options)], source="t.yaml", path="verify"
        )
        request = SignedRequest("POST", signed.url, headers, body, form)
        verified = verification.verify(request, NOW + 1)
        if scheme == "jwt":
            assert verified.claims is not None
        if scheme in {"gitlab", "basic", "bearer", "header", "jwt", "dingtalk"}:
            continue  # the body is not signed by these schemes
        tampered_form = None if form is None else (*form[:-1], ("b", "four"))
        tampered = SignedRequest("POST", signed.url, headers, body + b" ", tampered_form)
        with pytest.raises(Forbidden):
            verification.verify(tampered, NOW + 1)


def test_unknown_scheme_and_missing_option() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        sign("gitea", secret="s", body=b"")
    with pytest.raises(ValueError, match="header"):
        sign("hmac", secret="s", body=b"")


def test_twilio_sha256_matches_twilio_python() -> None:
    vectors = Path(__file__).parent / "verify" / "vectors" / "chat_platforms.json"
    twilio = json.loads(vectors.read_text())["twilio"]
    signed = sign(
        "twilio",
        secret=twilio["shared_key"],
        url=twilio["form"]["url"],
        body=urlencode(twilio["form"]["params"]).encode(),
        content_type="application/x-www-form-urlencoded",
        options={"algorithm": "HMAC_SHA256", "key": "webhooks_sharedkey_0123456789abcdef"},
    )
    assert signed.headers == {
        "X-Twilio-Signature": twilio["form"]["signature"],
        "X-Twilio-Webhooks-Signature-Settings": twilio["settings"],
    }


def test_dingtalk_signs_as_its_documentation_does() -> None:
    signed = sign("dingtalk", secret="this is secret", body=b"{}", timestamp=NOW)
    millis = str(NOW * 1000)
    # DingTalk's documented Python, verbatim but for the names.
    string_to_sign = f"{millis}\n{'this is secret'}"
    code = hmac.new(b"this is secret", string_to_sign.encode(), digestmod=hashlib.sha256).digest()
    assert signed.headers == {"timestamp": millis, "sign": base64.b64encode(code).decode()}


WECOM_OPTIONS = {
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "ww1234567890abcdef",
}


def test_wecom_encrypts_into_the_envelope_and_signs_in_the_query() -> None:
    message = b"<xml><MsgType>text</MsgType><Content>hello</Content></xml>"
    signed = sign(
        "wecom", secret="tok", body=message, url=URL, timestamp=NOW, options=WECOM_OPTIONS
    )
    assert signed.body is not None
    assert b"<Encrypt><![CDATA[" in signed.body
    assert message not in signed.body
    assert signed.content_type is not None
    assert signed.content_type.startswith("text/xml")
    assert "msg_signature=" in signed.url
    assert signed.url.startswith(URL + "&")
    check = compile_verifiers(
        [Verifier("wecom", {"token": "tok", **WECOM_OPTIONS})], source="t.yaml", path="verify"
    )
    verified = check.verify(SignedRequest("POST", signed.url, {}, signed.body), NOW + 1)
    assert verified.opened is not None
    assert verified.opened.data == {"xml": {"MsgType": "text", "Content": "hello"}}
    with pytest.raises(Forbidden):
        check.verify(SignedRequest("POST", signed.url, {}, signed.body.replace(b"A", b"B")), NOW)
    with pytest.raises(Unauthenticated):
        check.verify(SignedRequest("POST", URL, {}, signed.body), NOW)


def test_wecom_needs_its_key_and_corp_id() -> None:
    with pytest.raises(ValueError, match="encoding_aes_key"):
        sign("wecom", secret="tok", body=b"<xml/>", options={"corp_id": "c"})


def test_feishu_encrypts_and_signs_the_event() -> None:
    event = {"schema": "2.0", "header": {"token": "vt", "event_type": "x"}, "event": {"a": 1}}
    body = json.dumps(event).encode()
    signed = sign("feishu", secret="encrypt-key", body=body, url=URL, timestamp=NOW)
    assert signed.body is not None
    assert set(json.loads(signed.body)) == {"encrypt"}
    assert signed.content_type == "application/json"
    headers = {name.lower(): value for name, value in signed.headers.items()}
    check = compile_verifiers(
        [Verifier("feishu", {"verification_token": "vt", "encrypt_key": "encrypt-key"})],
        source="t.yaml",
        path="verify",
    )
    verified = check.verify(SignedRequest("POST", URL, headers, signed.body), NOW + 1)
    assert verified.opened is not None
    assert verified.opened.data == event
    with pytest.raises(Forbidden):
        check.verify(SignedRequest("POST", URL, headers, signed.body + b" "), NOW + 1)


def test_dingtalk_events_encrypts_the_event_and_signs_in_the_query() -> None:
    options = {"aes_key": WECOM_OPTIONS["encoding_aes_key"], "app_key": "dingapp"}
    event = {"EventType": "user_add_org", "UserId": ["u1"]}
    signed = sign(
        "dingtalk_events",
        secret="tok",
        body=json.dumps(event).encode(),
        url=URL,
        timestamp=NOW,
        options=options,
    )
    assert signed.body is not None
    assert set(json.loads(signed.body)) == {"encrypt"}
    assert f"timestamp={NOW * 1000}" in signed.url
    check = compile_verifiers(
        [Verifier("dingtalk_events", {"token": "tok", **options})], source="t.yaml", path="verify"
    )
    verified = check.verify(SignedRequest("POST", signed.url, {}, signed.body), NOW + 1)
    assert verified.opened is not None
    assert verified.opened.data == event
    assert verified.reply is not None
