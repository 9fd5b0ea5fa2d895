"""Properties over every signing scheme: valid requests verify for any body bytes; any
change to the body or to a signed header fails; and no input makes verification raise
anything but a 401 or a 403."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hookline._signing import sign
from hookline.errors import Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verifier, compile_verifiers

NOW = 1_700_000_000
URL = "https://hooks.example.com/api/webhooks/x?a=1"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

HMAC_OPTIONS = {
    "header": "X-Sig",
    "signed": "{id}:{timestamp}:{body}",
    "timestamp_header": "X-Time",
    "id_header": "X-Id",
    "encoding": "base64",
    "algorithm": "sha512",
    "prefix": "v=",
}

# scheme -> (verify options, options for the signer, headers whose value is signed)
CASES: dict[str, tuple[dict[str, Any], dict[str, str], tuple[str, ...]]] = {
    "github": ({"secret": "gh-secret"}, {}, ()),
    "stripe": ({"secret": "whsec_stripe"}, {}, ()),
    "slack": ({"secret": "slack-secret"}, {}, ("x-slack-request-timestamp",)),
    "shopify": ({"secret": "shop-secret"}, {}, ()),
    "standard_webhooks": ({"secret": SW_SECRET}, {}, ("webhook-id", "webhook-timestamp")),
    "twilio": ({"secret": "auth-token"}, {}, ()),
    "hmac": ({"secret": "h-secret", **HMAC_OPTIONS}, HMAC_OPTIONS, ("x-time", "x-id")),
}
SECRET_OF = {"standard_webhooks": SW_SECRET}

fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verification(scheme: str) -> Verification:
    options = CASES[scheme][0]
    return compile_verifiers([Verifier(scheme, options)], source="p.yaml", path="verify")


def signed_request(scheme: str, body: bytes) -> SignedRequest:
    options = CASES[scheme][1]
    secret = CASES[scheme][0]["secret"]
    signed = sign(
        scheme,
        secret=secret,
        body=body,
        url=URL,
        content_type="application/json",
        timestamp=NOW,
        message_id="msg_1",
        options=options,
    )
    headers = {name.lower(): value for name, value in signed.headers.items()}
    return SignedRequest(method="POST", url=signed.url, headers=headers, body=body)


schemes = st.sampled_from(sorted(CASES))


@fast
@given(scheme=schemes, body=st.binary(max_size=512))
def test_valid_requests_verify_for_any_body(scheme: str, body: bytes) -> None:
    verification(scheme).verify(signed_request(scheme, body), NOW)


@fast
@given(scheme=schemes, body=st.binary(max_size=256), other=st.binary(max_size=256))
def test_any_change_to_the_body_fails(scheme: str, body: bytes, other: bytes) -> None:
    assume(body != other)
    original = signed_request(scheme, body)
    changed = SignedRequest(original.method, original.url, original.headers, other)
    with pytest.raises(Forbidden):
        verification(scheme).verify(changed, NOW)


@fast
@given(
    scheme=st.sampled_from([s for s, case in sorted(CASES.items()) if case[2]]),
    data=st.data(),
    value=st.text(st.characters(codec="latin-1"), min_size=1, max_size=20),
)
def test_any_change_to_a_signed_header_fails(scheme: str, data: st.DataObject, value: str) -> None:
    name = data.draw(st.sampled_from(CASES[scheme][2]))
    original = signed_request(scheme, b'{"n": 1}')
    assume(value.strip() != original.headers[name].strip())
    changed = SignedRequest(
        original.method, original.url, {**original.headers, name: value}, original.body
    )
    with pytest.raises((Forbidden, Unauthenticated)):
        verification(scheme).verify(changed, NOW)


@fast
@given(
    url=st.sampled_from(
        [
            "https://evil.example.com/api/webhooks/x?a=1",
            URL + "&b=2",
            "http://hooks.example.com/api/webhooks/x?a=1",
        ]
    )
)
def test_twilio_signs_the_url(url: str) -> None:
    original = signed_request("twilio", b"{}")
    moved = SignedRequest(original.method, url, original.headers, original.body)
    with pytest.raises(Forbidden):
        verification("twilio").verify(moved, NOW)


ALL_SCHEMES: dict[str, dict[str, Any]] = {
    **{scheme: case[0] for scheme, case in CASES.items()},
    "gitlab": {"secret": "t"},
    "basic": {"username": "u", "password": "p"},
    "bearer": {"secret": "t"},
    "header": {"name": "X-Token", "secret": "t"},
    "jwt": {"secret": "j" * 64, "algorithms": ["HS256"]},
}
HEADER_NAMES = sorted(
    {
        "authorization",
        "x-hub-signature-256",
        "stripe-signature",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "x-shopify-hmac-sha256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-signature",
        "x-twilio-signature",
        "x-sig",
        "x-time",
        "x-id",
        "x-gitlab-token",
        "x-token",
    }
)


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(sorted(ALL_SCHEMES)),
    headers=st.dictionaries(
        st.sampled_from(HEADER_NAMES), st.text(st.characters(codec="latin-1"), max_size=80)
    ),
    body=st.binary(max_size=64),
    url=st.one_of(st.text(max_size=40), st.sampled_from([URL, "http://[", "https://h:99999/"])),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_any_input_gets_401_or_403_and_nothing_else(
    scheme: str, headers: dict[str, str], body: bytes, url: str, now: float
) -> None:
    check = compile_verifiers(
        [Verifier(scheme, ALL_SCHEMES[scheme])], source="p.yaml", path="verify"
    )
    with contextlib.suppress(Forbidden, Unauthenticated):
        check.verify(SignedRequest("POST", url, headers, body), now)
