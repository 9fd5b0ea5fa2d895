"""The ``jwt`` scheme: pinned algorithms, keys, time claims, audience, issuer, claims out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hookline.errors import DefinitionError, Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verifier, compile_verifiers

NOW = 1_700_000_000
SECRET = "a-jwt-hmac-secret-long-enough-for-hs512-which-wants-64-bytes-or-more"


def verification(**options: Any) -> Verification:
    return compile_verifiers([Verifier("jwt", options)], source="t.yaml", path="verify")


def bearer(token: str) -> SignedRequest:
    return SignedRequest("POST", "https://h.example/x", {"authorization": f"Bearer {token}"}, b"")


def token(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload = {"sub": "device-7", "iat": NOW, "exp": NOW + 60, **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hs256_by_hand(key: bytes, claims: dict[str, Any], alg: str = "HS256") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def pem_public(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_hs256_claims_are_returned() -> None:
    verified = verification(secret=SECRET, algorithms=["HS256"]).verify(bearer(token()), NOW)
    assert verified.claims is not None
    assert verified.claims["sub"] == "device-7"


def test_rotated_secrets() -> None:
    check = verification(secrets=["x" * 40, SECRET], algorithms=["HS256"])
    assert check.verify(bearer(token()), NOW).claims is not None
    with pytest.raises(Forbidden):
        verification(secret="x" * 40, algorithms=["HS256"]).verify(bearer(token()), NOW)


def test_rs256_and_es256_with_public_keys(rsa_key: Any, ec_key: Any) -> None:
    rs = verification(public_key=pem_public(rsa_key), algorithms=["RS256"])
    assert rs.verify(bearer(token(rsa_key, "RS256")), NOW).claims is not None
    es = verification(public_key=pem_public(ec_key), algorithms=["ES256"])
    assert es.verify(bearer(token(ec_key, "ES256")), NOW).claims is not None
    with pytest.raises(Forbidden):
        rs.verify(
            bearer(token(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")),
            NOW,
        )


def test_alg_none_is_refused() -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": "x", "exp": NOW + 60}).encode())
    unsigned = f"{header}.{body}."
    with pytest.raises(Forbidden):
        verification(secret=SECRET, algorithms=["HS256"]).verify(bearer(unsigned), NOW)


def test_unlisted_algorithm_is_refused() -> None:
    check = verification(secret=SECRET, algorithms=["HS256"])
    with pytest.raises(Forbidden):
        check.verify(bearer(token(algorithm="HS512")), NOW)


def test_algorithm_confusion_is_refused(rsa_key: Any) -> None:
    public = pem_public(rsa_key)
    # The attack: an HS256 token keyed with the public key the server knows.
    attack = hs256_by_hand(public.encode(), {"sub": "admin", "exp": NOW + 60})
    honest = hs256_by_hand(SECRET.encode(), {"sub": "admin", "exp": NOW + 60})
    verification(secret=SECRET, algorithms=["HS256"]).verify(bearer(honest), NOW)
    check = verification(public_key=public, algorithms=["RS256"])
    with pytest.raises(Forbidden):
        check.verify(bearer(attack), NOW)
    with pytest.raises(DefinitionError, match=r"verify\[0\]\.jwt\.algorithms"):
        verification(public_key=public, algorithms=["RS256", "HS256"])
    with pytest.raises(DefinitionError, match=r"verify\[0\]\.jwt\.secret"):
        verification(secret=public, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("claims", "at", "passes"),
    [
        ({"exp": NOW + 10}, NOW + 9, True),
        ({"exp": NOW + 10}, NOW + 10, False),
        ({"nbf": NOW + 10}, NOW + 10, True),
        ({"nbf": NOW + 10}, NOW + 9, False),
        ({"iat": NOW + 10}, NOW, False),
        ({"exp": "tomorrow"}, NOW, False),
    ],
    ids=["before-exp", "at-exp", "at-nbf", "before-nbf", "iat-future", "exp-not-number"],
)
def test_time_claims_use_the_given_now(claims: dict[str, Any], at: int, passes: bool) -> None:
    check = verification(secret=SECRET, algorithms=["HS256"])
    signed = bearer(token(**claims))
    if passes:
        check.verify(signed, at)
    else:
        with pytest.raises(Forbidden):
            check.verify(signed, at)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_signed_time_claim_that_is_no_number_is_refused(claim: str, number: str) -> None:
    # Issue 13, finding 9: a validly signed exp of NaN, Infinity or 1e400 gave 500.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "x", "exp": NOW + 60, "iat": NOW}
    text = json.dumps({**claims, claim: 0}).replace(f'"{claim}": 0', f'"{claim}": {number}')
    payload = b64url(text.encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    forged = f"{header}.{payload}.{b64url(signature.digest())}"
    check = verification(secret=SECRET, algorithms=["HS256"])
    with pytest.raises(Forbidden, match="not valid"):
        check.verify(bearer(forged), NOW)


def test_leeway_extends_the_window() -> None:
    check = verification(secret=SECRET, algorithms=["HS256"], leeway="30s")
    check.verify(bearer(token(exp=NOW + 10)), NOW + 39)
    with pytest.raises(Forbidden, match="expired"):
        check.verify(bearer(token(exp=NOW + 10)), NOW + 40)


def test_exp_is_required_by_default() -> None:
    no_exp = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
    with pytest.raises(Forbidden):
        verification(secret=SECRET, algorithms=["HS256"]).verify(bearer(no_exp), NOW)
    relaxed = verification(secret=SECRET, algorithms=["HS256"], require=[])
    relaxed.verify(bearer(no_exp), NOW)


def test_audience_and_issuer() -> None:
    check = verification(
        secret=SECRET, algorithms=["HS256"], audience="hookline", issuer=["a", "b"]
    )
    check.verify(bearer(token(aud="hookline", iss="b")), NOW)
    for claims in [{"aud": "other", "iss": "a"}, {"aud": "hookline", "iss": "c"}, {"iss": "a"}]:
        with pytest.raises(Forbidden):
            check.verify(bearer(token(**claims)), NOW)
    # A token meant for some audience is refused where none is configured.
    with pytest.raises(Forbidden):
        verification(secret=SECRET, algorithms=["HS256"]).verify(bearer(token(aud="x")), NOW)


def test_missing_token_is_401_and_garbage_is_403() -> None:
    check = verification(secret=SECRET, algorithms=["HS256"])
    with pytest.raises(Unauthenticated):
        check.verify(SignedRequest("POST", "https://h/x", {}, b""), NOW)
    for garbage in ["abc", "a.b.c", "é.é.é", token() + "x"]:
        with pytest.raises(Forbidden):
            check.verify(bearer(garbage), NOW)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"secret": SECRET}, "algorithms"),
        ({"secret": SECRET, "algorithms": ["none"]}, "algorithms[0]"),
        ({"secret": SECRET, "algorithms": []}, "algorithms"),
        ({"algorithms": ["RS256"]}, "public_key"),
        ({"public_key": "not a pem", "algorithms": ["RS256"]}, "public_key"),
        ({"secret": SECRET, "algorithms": ["RS256"]}, "secret"),
        ({"public_key": "x", "secret": SECRET, "algorithms": ["HS256"]}, "public_key"),
        ({"secret": SECRET, "algorithms": ["HS256"], "leeway": "soon"}, "leeway"),
    ],
)
def test_bad_options_are_refused_at_load(options: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        verification(**options)
    assert refused.value.path == f"verify[0].jwt.{field}"


def test_ec_key_for_rsa_algorithm_is_refused_at_load(ec_key: Any) -> None:
    with pytest.raises(DefinitionError, match="public_key"):
        verification(public_key=pem_public(ec_key), algorithms=["RS256"])
