"""The providers' signature schemes: published vectors and each rule of the reference file
(``shared/reference/webhook-signatures.md``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from hookline.errors import DefinitionError, Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verifier, compile_verifiers

NOW = 1_700_000_000


def verification(scheme: str, **options: Any) -> Verification:
    return compile_verifiers([Verifier(scheme, options)], source="t.yaml", path="verify")


def request(headers: dict[str, str], body: bytes = b"{}", **more: Any) -> SignedRequest:
    return SignedRequest(
        method="POST", url="https://hooks.example.com/x", headers=headers, body=body, **more
    )


def mac_hex(key: str | bytes, content: bytes, digest: str = "sha256") -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, content, digest).hexdigest()


def mac_b64(key: str | bytes, content: bytes, digest: str = "sha256") -> str:
    raw = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hmac.new(raw, content, digest).digest()).decode()


# -- GitHub ---------------------------------------------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_published_example() -> None:
    check = verification("github", secret=GITHUB_SECRET)
    check.verify(request({"x-hub-signature-256": GITHUB_SIGNATURE}, GITHUB_BODY), NOW)


def test_github_uppercase_hex_is_the_same_signature() -> None:
    check = verification("github", secret=GITHUB_SECRET)
    header = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    check.verify(request({"x-hub-signature-256": header}, GITHUB_BODY), NOW)


@pytest.mark.parametrize(
    ("secret", "body"),
    [("another secret", GITHUB_BODY), (GITHUB_SECRET, b"Hello, World?")],
    ids=["wrong-secret", "tampered-body"],
)
def test_github_refuses_wrong_secret_or_tampered_body(secret: str, body: bytes) -> None:
    check = verification("github", secret=secret)
    with pytest.raises(Forbidden, match="does not match"):
        check.verify(request({"x-hub-signature-256": GITHUB_SIGNATURE}, body), NOW)


def test_github_accepts_any_rotated_secret() -> None:
    check = verification("github", secrets=["old one", GITHUB_SECRET])
    check.verify(request({"x-hub-signature-256": GITHUB_SIGNATURE}, GITHUB_BODY), NOW)


def test_github_missing_signature_is_401() -> None:
    check = verification("github", secret=GITHUB_SECRET)
    with pytest.raises(Unauthenticated, match="X-Hub-Signature-256"):
        check.verify(request({}, GITHUB_BODY), NOW)


@pytest.mark.parametrize(
    "header", ["757107ea0e", "sha1=757107", "sha256=zz", "sha256=", "sha256=abc"]
)
def test_github_malformed_signature_is_403(header: str) -> None:
    check = verification("github", secret=GITHUB_SECRET)
    with pytest.raises(Forbidden):
        check.verify(request({"x-hub-signature-256": header}, GITHUB_BODY), NOW)


def test_github_sha1_only_when_configured() -> None:
    sha1 = {"x-hub-signature": "sha1=" + mac_hex(GITHUB_SECRET, GITHUB_BODY, "sha1")}
    with pytest.raises(Unauthenticated):
        verification("github", secret=GITHUB_SECRET).verify(request(sha1, GITHUB_BODY), NOW)
    legacy = verification("github", secret=GITHUB_SECRET, legacy_sha1=True)
    legacy.verify(request(sha1, GITHUB_BODY), NOW)
    with pytest.raises(Forbidden):
        legacy.verify(request(sha1, b"tampered"), NOW)


def test_github_sha256_wins_over_sha1_when_both_are_sent() -> None:
    legacy = verification("github", secret=GITHUB_SECRET, legacy_sha1=True)
    headers = {
        "x-hub-signature": "sha1=" + mac_hex(GITHUB_SECRET, GITHUB_BODY, "sha1"),
        "x-hub-signature-256": "sha256=" + "00" * 32,
    }
    with pytest.raises(Forbidden):
        legacy.verify(request(headers, GITHUB_BODY), NOW)


# -- Stripe ---------------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_secret_0123456789"


def stripe_header(t: int, body: bytes, *secrets: str) -> str:
    signatures = ",".join(f"v1={mac_hex(s, f'{t}.'.encode() + body)}" for s in secrets)
    return f"t={t},{signatures}"


def test_stripe_signs_with_the_whsec_secret_verbatim() -> None:
    body = b'{"id": "evt_1", "object": "event"}'
    check = verification("stripe", secret=STRIPE_SECRET)
    check.verify(request({"stripe-signature": stripe_header(NOW, body, STRIPE_SECRET)}, body), NOW)
    # Decoding the secret as Standard Webhooks does would be a different key.
    decoded = base64.b64decode("test_secret_0123456789" + "==")
    wrong = f"t={NOW},v1={mac_hex(decoded, f'{NOW}.'.encode() + body)}"
    with pytest.raises(Forbidden):
        check.verify(request({"stripe-signature": wrong}, body), NOW)


def test_stripe_any_of_several_v1_signatures_may_match_and_v0_is_ignored() -> None:
    body = b'{"id": "evt_2"}'
    header = stripe_header(NOW, body, "whsec_rolled_old", STRIPE_SECRET)
    check = verification("stripe", secret=STRIPE_SECRET)
    check.verify(request({"stripe-signature": header + ",v0=deadbeef"}, body), NOW)
    only_v0 = f"t={NOW},v0={mac_hex(STRIPE_SECRET, f'{NOW}.'.encode() + body)}"
    with pytest.raises(Forbidden):
        check.verify(request({"stripe-signature": only_v0}, body), NOW)


def test_stripe_rotated_secrets() -> None:
    body = b"{}"
    check = verification("stripe", secrets=["whsec_new", STRIPE_SECRET])
    check.verify(request({"stripe-signature": stripe_header(NOW, body, STRIPE_SECRET)}, body), NOW)


@pytest.mark.parametrize(
    ("age", "passes"), [(300, True), (301, False), (-3600, True)], ids=["at", "past", "future"]
)
def test_stripe_refuses_only_old_timestamps(age: int, passes: bool) -> None:
    body = b'{"id": "evt_3"}'
    check = verification("stripe", secret=STRIPE_SECRET)
    signed = request({"stripe-signature": stripe_header(NOW - age, body, STRIPE_SECRET)}, body)
    if passes:
        check.verify(signed, NOW)
    else:
        with pytest.raises(Forbidden, match="too old"):
            check.verify(signed, NOW)


def test_stripe_tolerance_is_configurable() -> None:
    body = b"{}"
    check = verification("stripe", secret=STRIPE_SECRET, tolerance="10m")
    check.verify(
        request({"stripe-signature": stripe_header(NOW - 600, body, STRIPE_SECRET)}, body), NOW
    )


def test_stripe_tampered_body_and_wrong_secret() -> None:
    header = stripe_header(NOW, b'{"amount": 1}', STRIPE_SECRET)
    with pytest.raises(Forbidden, match="does not match"):
        verification("stripe", secret=STRIPE_SECRET).verify(
            request({"stripe-signature": header}, b'{"amount": 9}'), NOW
        )
    with pytest.raises(Forbidden, match="does not match"):
        verification("stripe", secret="whsec_other").verify(
            request({"stripe-signature": header}, b'{"amount": 1}'), NOW
        )


def test_stripe_missing_header_is_401() -> None:
    with pytest.raises(Unauthenticated, match="Stripe-Signature"):
        verification("stripe", secret=STRIPE_SECRET).verify(request({}), NOW)


@pytest.mark.parametrize(
    "header", ["garbage", f"t={NOW}", "v1=abcd", f"t=soon,v1={'0' * 64}", f"t={NOW},v1=xyz"]
)
def test_stripe_malformed_header_is_403(header: str) -> None:
    with pytest.raises(Forbidden):
        verification("stripe", secret=STRIPE_SECRET).verify(
            request({"stripe-signature": header}), NOW
        )


# -- Slack ----------------------------------------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
    b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def slack_headers(
    timestamp: int = SLACK_TIMESTAMP, signature: str = SLACK_SIGNATURE
) -> dict[str, str]:
    return {"x-slack-signature": signature, "x-slack-request-timestamp": str(timestamp)}


def test_slack_published_example() -> None:
    check = verification("slack", secret=SLACK_SECRET)
    check.verify(request(slack_headers(), SLACK_BODY), SLACK_TIMESTAMP)


@pytest.mark.parametrize(
    ("offset", "passes"),
    [(300, True), (-300, True), (301, False), (-301, False)],
    ids=["old-at-bound", "future-at-bound", "stale", "future"],
)
def test_slack_tolerance_both_ways(offset: int, passes: bool) -> None:
    check = verification("slack", secret=SLACK_SECRET)
    signed = request(slack_headers(), SLACK_BODY)
    if passes:
        check.verify(signed, SLACK_TIMESTAMP + offset)
    else:
        with pytest.raises(Forbidden, match="timestamp"):
            check.verify(signed, SLACK_TIMESTAMP + offset)


def test_slack_timestamp_is_signed() -> None:
    check = verification("slack", secret=SLACK_SECRET)
    moved = request(slack_headers(SLACK_TIMESTAMP + 1), SLACK_BODY)
    with pytest.raises(Forbidden, match="does not match"):
        check.verify(moved, SLACK_TIMESTAMP)


def test_slack_wrong_secret_tampered_body_rotation() -> None:
    with pytest.raises(Forbidden):
        verification("slack", secret="0" * 32).verify(
            request(slack_headers(), SLACK_BODY), SLACK_TIMESTAMP
        )
    with pytest.raises(Forbidden):
        verification("slack", secret=SLACK_SECRET).verify(
            request(slack_headers(), SLACK_BODY + b"&x=1"), SLACK_TIMESTAMP
        )
    verification("slack", secrets=["0" * 32, SLACK_SECRET]).verify(
        request(slack_headers(), SLACK_BODY), SLACK_TIMESTAMP
    )


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_slack_missing_header_is_401(missing: str) -> None:
    headers = slack_headers()
    del headers[missing]
    with pytest.raises(Unauthenticated):
        verification("slack", secret=SLACK_SECRET).verify(
            request(headers, SLACK_BODY), SLACK_TIMESTAMP
        )


@pytest.mark.parametrize(
    "headers",
    [
        slack_headers(signature="a2114d57b4"),
        slack_headers(signature="v0=nothex"),
        {**slack_headers(), "x-slack-request-timestamp": "yesterday"},
    ],
    ids=["no-version", "not-hex", "timestamp"],
)
def test_slack_malformed_header_is_403(headers: dict[str, str]) -> None:
    with pytest.raises(Forbidden):
        verification("slack", secret=SLACK_SECRET).verify(
            request(headers, SLACK_BODY), SLACK_TIMESTAMP
        )


# -- Shopify --------------------------------------------------------------------------

SHOPIFY_SECRET = "shpss_0123456789abcdef"


def test_shopify_base64_signature_and_rotation() -> None:
    body = b'{"id": 820982911946154508}'
    header = {"x-shopify-hmac-sha256": mac_b64(SHOPIFY_SECRET, body)}
    verification("shopify", secret=SHOPIFY_SECRET).verify(request(header, body), NOW)
    verification("shopify", secrets=["shpss_new", SHOPIFY_SECRET]).verify(
        request(header, body), NOW
    )
    with pytest.raises(Forbidden):
        verification("shopify", secret="shpss_new").verify(request(header, body), NOW)
    with pytest.raises(Forbidden):
        verification("shopify", secret=SHOPIFY_SECRET).verify(request(header, body + b" "), NOW)


def test_shopify_missing_and_malformed() -> None:
    check = verification("shopify", secret=SHOPIFY_SECRET)
    with pytest.raises(Unauthenticated, match="X-Shopify-Hmac-Sha256"):
        check.verify(request({}), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(request({"x-shopify-hmac-sha256": "not base64!"}), NOW)


# -- Standard Webhooks ----------------------------------------------------------------

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sw_headers(
    prefix: str = "webhook-", signature: str = SW_SIGNATURE, timestamp: int = SW_TIMESTAMP
) -> dict[str, str]:
    return {
        f"{prefix}id": SW_ID,
        f"{prefix}timestamp": str(timestamp),
        f"{prefix}signature": signature,
    }


@pytest.mark.parametrize("prefix", ["webhook-", "svix-"])
def test_standard_webhooks_published_example_under_both_header_names(prefix: str) -> None:
    check = verification("standard_webhooks", secret=SW_SECRET)
    check.verify(request(sw_headers(prefix), SW_BODY), SW_TIMESTAMP)


def test_standard_webhooks_secret_padding_and_prefix_are_tolerated() -> None:
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    unpadded = "whsec_" + base64.b64encode(key + b"!").decode().rstrip("=")
    content = f"{SW_ID}.{SW_TIMESTAMP}.".encode() + SW_BODY
    signature = "v1," + mac_b64(key + b"!", content)
    check = verification("standard_webhooks", secret=unpadded)
    check.verify(request(sw_headers(signature=signature), SW_BODY), SW_TIMESTAMP)
    bare = verification("standard_webhooks", secret="MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    bare.verify(request(sw_headers(), SW_BODY), SW_TIMESTAMP)


def test_standard_webhooks_several_signatures_unknown_versions_ignored() -> None:
    check = verification("standard_webhooks", secret=SW_SECRET)
    header = f"v1a,{'A' * 86}== v1,AAAA {SW_SIGNATURE} v2,zzz"
    check.verify(request(sw_headers(signature=header), SW_BODY), SW_TIMESTAMP)
    only_unknown = f"v1a,{SW_SIGNATURE.removeprefix('v1,')}"
    with pytest.raises(Forbidden):
        check.verify(request(sw_headers(signature=only_unknown), SW_BODY), SW_TIMESTAMP)


def test_standard_webhooks_rotation_wrong_secret_tampering() -> None:
    other = "whsec_" + base64.b64encode(b"another key, 24 bytes!!!").decode()
    verification("standard_webhooks", secrets=[other, SW_SECRET]).verify(
        request(sw_headers(), SW_BODY), SW_TIMESTAMP
    )
    with pytest.raises(Forbidden):
        verification("standard_webhooks", secret=other).verify(
            request(sw_headers(), SW_BODY), SW_TIMESTAMP
        )
    check = verification("standard_webhooks", secret=SW_SECRET)
    for headers, body in [
        (sw_headers(), b'{"test": 2432232315}'),
        ({**sw_headers(), "webhook-id": "msg_other"}, SW_BODY),
        (sw_headers(timestamp=SW_TIMESTAMP + 1), SW_BODY),
    ]:
        with pytest.raises(Forbidden, match="does not match"):
            check.verify(request(headers, body), SW_TIMESTAMP)


@pytest.mark.parametrize(
    ("offset", "passes"),
    [(300, True), (-300, True), (301, False), (-301, False)],
    ids=["old-at-bound", "future-at-bound", "stale", "future"],
)
def test_standard_webhooks_tolerance_both_ways(offset: int, passes: bool) -> None:
    check = verification("standard_webhooks", secret=SW_SECRET)
    signed = request(sw_headers(), SW_BODY)
    if passes:
        check.verify(signed, SW_TIMESTAMP + offset)
    else:
        with pytest.raises(Forbidden, match="timestamp"):
            check.verify(signed, SW_TIMESTAMP + offset)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_header_is_401(missing: str) -> None:
    headers = sw_headers()
    del headers[missing]
    with pytest.raises(Unauthenticated, match=missing):
        verification("standard_webhooks", secret=SW_SECRET).verify(
            request(headers, SW_BODY), SW_TIMESTAMP
        )


@pytest.mark.parametrize(
    "headers",
    [
        sw_headers(signature="g0hM9SsE"),
        sw_headers(signature="v1,!!!"),
        {**sw_headers(), "webhook-timestamp": "2021-02-25T15:02:10Z"},
    ],
    ids=["no-version", "not-base64", "timestamp"],
)
def test_standard_webhooks_malformed_is_403(headers: dict[str, str]) -> None:
    with pytest.raises(Forbidden):
        verification("standard_webhooks", secret=SW_SECRET).verify(
            request(headers, SW_BODY), SW_TIMESTAMP
        )


def test_standard_webhooks_secret_that_is_not_base64_is_refused_at_load() -> None:
    with pytest.raises(DefinitionError, match=r"verify\[0\]\.standard_webhooks\.secret"):
        verification("standard_webhooks", secret="whsec_not*base64")


# -- Twilio ---------------------------------------------------------------------------
# Vectors from Twilio's own library tests (auth token 12345).

TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = (
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
)


def twilio_request(
    url: str,
    signature: str,
    form: tuple[tuple[str, str], ...] | None = TWILIO_PARAMS,
    body: bytes = b"",
) -> SignedRequest:
    return SignedRequest(
        method="POST", url=url, headers={"x-twilio-signature": signature}, body=body, form=form
    )


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # Signed with the default port added, received without it.
        (TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (TWILIO_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        # Signed without the port, received with one.
        (TWILIO_URL.replace(".com", ".com:1234"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (
            TWILIO_URL.replace(".com", ".com:1234").replace("https", "http"),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
    ],
    ids=["plain", "adds-https-port", "adds-http-port", "removes-port", "keeps-port"],
)
def test_twilio_published_examples_with_and_without_port(url: str, signature: str) -> None:
    verification("twilio", secret=TWILIO_TOKEN).verify(twilio_request(url, signature), NOW)


def test_twilio_repeated_parameters_sorted_by_value() -> None:
    form = (("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"))
    request_ = twilio_request(TWILIO_URL, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", form)
    verification("twilio", secret=TWILIO_TOKEN).verify(request_, NOW)


def test_twilio_json_body_is_signed_through_body_sha256() -> None:
    body = b'{"property": "value", "boolean": true}'
    url = TWILIO_URL + "&bodySHA256=" + hashlib.sha256(body).hexdigest()
    check = verification("twilio", secret=TWILIO_TOKEN)
    check.verify(twilio_request(url, "a9nBmqA0ju/hNViExpshrM61xv4=", None, body), NOW)
    with pytest.raises(Forbidden, match="does not match"):
        check.verify(twilio_request(url, "a9nBmqA0ju/hNViExpshrM61xv4=", None, body + b" "), NOW)


def test_twilio_refuses_changed_params_url_or_token() -> None:
    check = verification("twilio", secret=TWILIO_TOKEN)
    changed = (*TWILIO_PARAMS[:-1], ("To", "+18005551213"))
    for bad in [
        twilio_request(TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", changed),
        twilio_request(TWILIO_URL.replace("myapp", "other"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        twilio_request(TWILIO_URL.replace("https", "http"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ]:
        with pytest.raises(Forbidden):
            check.verify(bad, NOW)
    with pytest.raises(Forbidden):
        verification("twilio", secret="54321").verify(
            twilio_request(TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), NOW
        )
    verification("twilio", secrets=["54321", TWILIO_TOKEN]).verify(
        twilio_request(TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), NOW
    )


def test_twilio_missing_and_malformed() -> None:
    check = verification("twilio", secret=TWILIO_TOKEN)
    with pytest.raises(Unauthenticated, match="X-Twilio-Signature"):
        check.verify(SignedRequest("POST", TWILIO_URL, {}, b"", TWILIO_PARAMS), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(twilio_request(TWILIO_URL, "%%%"), NOW)
    with pytest.raises(Forbidden):
        check.verify(twilio_request("https://[broken/x", "RSOYDt4T1cUTdK1PDd93/VVr8B8="), NOW)


def test_twilio_refuses_an_unsigned_body() -> None:
    # Without bodySHA256 in the URL, only form parameters are signed: a JSON body is not.
    body = b'{"property": "value"}'
    signed = twilio_request(TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", None, body)
    with pytest.raises(Forbidden):
        verification("twilio", secret=TWILIO_TOKEN).verify(signed, NOW)
