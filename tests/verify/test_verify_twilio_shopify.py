"""Twilio's SharedKey (HMAC-SHA256) signatures and Shopify's unprefixed headers.

Twilio vectors are twilio-python 9.13's own (``vectors/chat_platforms.json``, made by
``vectors/make_chat_vectors.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hookline.errors import Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verifier, compile_verifiers

TWILIO = json.loads((Path(__file__).parent / "vectors" / "chat_platforms.json").read_text())[
    "twilio"
]
NOW = 1_700_000_000
FORM = "application/x-www-form-urlencoded"


def verification(scheme: str, **options: Any) -> Verification:
    return compile_verifiers([Verifier(scheme, options)], source="t.yaml", path="verify")


def form_request(headers: dict[str, str], params: dict[str, str] | None = None) -> SignedRequest:
    params = TWILIO["form"]["params"] if params is None else params
    return SignedRequest(
        method="POST",
        url=TWILIO["form"]["url"],
        headers=headers,
        body=urlencode(params).encode(),
        form=tuple(params.items()),
    )


def sha256_headers(signature: str) -> dict[str, str]:
    return {
        "x-twilio-signature": signature,
        "x-twilio-webhooks-signature-settings": TWILIO["settings"],
    }


def test_twilio_sha256_form_signature_from_twilio_python() -> None:
    check = verification("twilio", secret=TWILIO["shared_key"])
    check.verify(form_request(sha256_headers(TWILIO["form"]["signature"])), NOW)


def test_twilio_sha256_json_body_signature_from_twilio_python() -> None:
    vector = TWILIO["json"]
    signed = SignedRequest(
        method="POST",
        url=vector["url"],
        headers={**sha256_headers(vector["signature"]), "content-type": "application/json"},
        body=vector["body"].encode(),
    )
    verification("twilio", secret=TWILIO["shared_key"]).verify(signed, NOW)


def test_one_secrets_list_holds_the_auth_token_and_the_shared_key() -> None:
    check = verification("twilio", secrets=[TWILIO["auth_token"], TWILIO["shared_key"]])
    check.verify(form_request(sha256_headers(TWILIO["form"]["signature"])), NOW)
    check.verify(form_request({"x-twilio-signature": TWILIO["sha1_form_signature"]}), NOW)


def test_twilio_the_algorithm_follows_the_settings_header() -> None:
    check = verification("twilio", secrets=[TWILIO["auth_token"], TWILIO["shared_key"]])
    # A SHA-256 signature without the header that names it is checked as SHA-1.
    with pytest.raises(Forbidden, match="does not match"):
        check.verify(form_request({"x-twilio-signature": TWILIO["form"]["signature"]}), NOW)
    lower = {**sha256_headers(TWILIO["form"]["signature"])}
    lower["x-twilio-webhooks-signature-settings"] = "key=k, algorithm=hmac_sha256"
    check.verify(form_request(lower), NOW)


def test_twilio_unknown_algorithm_is_refused() -> None:
    headers = sha256_headers(TWILIO["form"]["signature"])
    headers["x-twilio-webhooks-signature-settings"] = "key=k,algorithm=HMAC_SHA512"
    with pytest.raises(Forbidden, match="algorithm"):
        verification("twilio", secret=TWILIO["shared_key"]).verify(form_request(headers), NOW)


def test_twilio_sha256_wrong_key_and_tampered_params_are_403() -> None:
    headers = sha256_headers(TWILIO["form"]["signature"])
    with pytest.raises(Forbidden, match="does not match"):
        verification("twilio", secret="another").verify(form_request(headers), NOW)
    tampered = {**TWILIO["form"]["params"], "Digits": "9999"}
    with pytest.raises(Forbidden, match="does not match"):
        verification("twilio", secret=TWILIO["shared_key"]).verify(
            form_request(headers, tampered), NOW
        )


# -- Shopify ----------------------------------------------------------------------------


def shopify_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_shopify_accepts_the_unprefixed_header() -> None:
    body = b'{"id": 1}'
    check = verification("shopify", secret="hush")
    headers = {"shopify-hmac-sha256": shopify_signature("hush", body), "shopify-topic": "x"}
    check.verify(SignedRequest("POST", "https://h/x", headers, body), NOW)
    headers = {"shopify-hmac-sha256": shopify_signature("other", body)}
    with pytest.raises(Forbidden):
        check.verify(SignedRequest("POST", "https://h/x", headers, body), NOW)


def test_shopify_unprefixed_header_is_redacted_and_absence_is_401() -> None:
    check = verification("shopify", secret="hush")
    assert "shopify-hmac-sha256" in check.secret_headers
    with pytest.raises(Unauthenticated, match="X-Shopify-Hmac-Sha256"):
        check.verify(SignedRequest("POST", "https://h/x", {}, b"{}"), NOW)
