"""DingTalk's outgoing robot, WeCom callbacks and Feishu events.

WeCom and Feishu vectors come from the platforms' own SDKs (``vectors/chat_platforms.json``,
made by ``vectors/make_chat_vectors.py``: wechatpy 1.8 encrypts and signs WeCom's, and
lark-oapi 1.7 accepts every Feishu request), plus each platform's published example.
DingTalk has no SDK for its robot's side; its signature is computed as DingTalk's
documentation writes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from hookline._signing import sign
from hookline.errors import DefinitionError, Forbidden, MalformedBody, Unauthenticated
from hookline.verify import SignedRequest, Verification, Verified, Verifier, compile_verifiers
from hookline.verify._feishu import feishu_decrypt
from hookline.verify._wxcrypt import decrypt, encrypt, message_key, signature

VECTORS = json.loads((Path(__file__).parent / "vectors" / "chat_platforms.json").read_text())
NOW = 1_700_000_000


def verification(scheme: str, **options: Any) -> Verification:
    return compile_verifiers([Verifier(scheme, options)], source="t.yaml", path="verify")


def request(
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    method: str = "POST",
    query: dict[str, str] | None = None,
) -> SignedRequest:
    url = "https://hooks.example.com/api/webhooks/chat"
    if query:
        url += "?" + urlencode(query)
    return SignedRequest(method=method, url=url, headers=headers or {}, body=body)


# -- DingTalk ---------------------------------------------------------------------------

DINGTALK_SECRET = "SECd5d8a6e6d84e4a1e9f6f52f3d9ef5f06"


def dingtalk_headers(millis: int, secret: str = DINGTALK_SECRET) -> dict[str, str]:
    # DingTalk's documented Python: hmac(secret, f"{timestamp}\n{secret}", sha256), base64.
    string_to_sign = f"{millis}\n{secret}"
    code = hmac.new(secret.encode(), string_to_sign.encode(), digestmod=hashlib.sha256).digest()
    return {"timestamp": str(millis), "sign": base64.b64encode(code).decode()}


def test_dingtalk_accepts_the_robot_signature_in_milliseconds() -> None:
    check = verification("dingtalk", secret=DINGTALK_SECRET)
    body = b'{"msgtype":"text","text":{"content":"deploy"}}'
    assert check.verify(request(dingtalk_headers(NOW * 1000 + 123), body), NOW) == Verified()


@pytest.mark.parametrize(
    ("offset", "passes"),
    [(-3600, True), (3600, True), (-3601, False), (3601, False)],
)
def test_dingtalk_tolerance_is_an_hour_either_way(offset: int, passes: bool) -> None:
    check = verification("dingtalk", secret=DINGTALK_SECRET)
    signed = request(dingtalk_headers((NOW + offset) * 1000))
    if passes:
        check.verify(signed, NOW)
    else:
        with pytest.raises(Forbidden, match="timestamp"):
            check.verify(signed, NOW)


def test_dingtalk_wrong_secret_is_403_and_a_rotated_one_passes() -> None:
    headers = dingtalk_headers(NOW * 1000, "another secret")
    with pytest.raises(Forbidden, match="does not match"):
        verification("dingtalk", secret=DINGTALK_SECRET).verify(request(headers), NOW)
    rotated = verification("dingtalk", secrets=[DINGTALK_SECRET, "another secret"])
    rotated.verify(request(headers), NOW)


def test_dingtalk_missing_headers_are_401_and_malformed_403() -> None:
    check = verification("dingtalk", secret=DINGTALK_SECRET)
    headers = dingtalk_headers(NOW * 1000)
    for missing in ("timestamp", "sign"):
        with pytest.raises(Unauthenticated):
            check.verify(request({k: v for k, v in headers.items() if k != missing}), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(request({**headers, "sign": "not base64!"}), NOW)
    with pytest.raises(Forbidden, match="malformed"):
        check.verify(request({**headers, "timestamp": "17e11"}), NOW)


def test_dingtalk_tolerance_is_configurable() -> None:
    check = verification("dingtalk", secret=DINGTALK_SECRET, tolerance="5m")
    with pytest.raises(Forbidden, match="too old"):
        check.verify(request(dingtalk_headers((NOW - 301) * 1000)), NOW)


# -- WeCom ------------------------------------------------------------------------------

WECOM = VECTORS["wecom"]


def wecom(**more: Any) -> Verification:
    options = {k: WECOM[k] for k in ("token", "encoding_aes_key", "corp_id")}
    return verification("wecom", **{**options, **more})


def test_wecom_published_sample_handshake() -> None:
    # WeCom's WXBizMsgCrypt sample: VerifyURL with these values gives 1616140317555161061.
    check = verification(
        "wecom",
        token="QDG6eK",
        encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        corp_id="wx5823bf96d3bd56c7",
    )
    query = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaB"
        "O+FZXvnaqQ==",
    }
    verified = check.verify(request(method="GET", query=query), 1409659589)
    assert verified.answer is not None
    assert verified.answer.body == b"1616140317555161061"


def test_wecom_handshake_is_answered_with_the_decrypted_echostr() -> None:
    vector = WECOM["handshake"]
    verified = wecom().verify(request(method="GET", query=vector["query"]), NOW)
    assert verified.answer is not None
    assert verified.answer.status == 200
    assert verified.answer.body == vector["answer"].encode()
    assert verified.answer.content_type.startswith("text/plain")
    assert verified.opened is None


def test_wecom_handshake_with_an_unescaped_plus_still_decrypts() -> None:
    vector = WECOM["handshake"]
    url = "https://h.example.com/x?" + "&".join(f"{k}={v}" for k, v in vector["query"].items())
    signed = SignedRequest(method="GET", url=url, headers={}, body=b"")
    verified = wecom().verify(signed, NOW)
    assert verified.answer is not None
    assert verified.answer.body == vector["answer"].encode()


def test_wecom_message_is_decrypted_into_data_and_raw_xml() -> None:
    vector = WECOM["message"]
    verified = wecom().verify(request(body=vector["body"].encode(), query=vector["query"]), NOW)
    assert verified.answer is None
    assert verified.opened is not None
    assert verified.opened.context == {"wecom": vector["decrypted"]}
    message = verified.opened.data["xml"]  # type: ignore[call-overload,index]
    assert message["MsgType"] == "text"
    assert message["Content"] == "部署 main"
    assert message["AgentID"] == "1000002"


def test_wecom_wrong_token_is_403() -> None:
    vector = WECOM["message"]
    with pytest.raises(Forbidden, match="does not match"):
        wecom(token="another").verify(
            request(body=vector["body"].encode(), query=vector["query"]), NOW
        )


def test_wecom_tampered_ciphertext_is_refused() -> None:
    vector = WECOM["message"]
    head, _, rest = vector["body"].partition("<Encrypt><![CDATA[")
    flipped = "B" if rest[10] != "B" else "C"
    body = f"{head}<Encrypt><![CDATA[{rest[:10]}{flipped}{rest[11:]}".encode()
    with pytest.raises(Forbidden, match="does not match"):
        wecom().verify(request(body=body, query=vector["query"]), NOW)


def test_wecom_ciphertext_signed_but_not_for_this_key_is_refused() -> None:
    # Signed with the right token, encrypted under another key: the signature holds
    # and decryption is what refuses it.
    other_key = message_key("A" * 42 + "E")
    encrypted = encrypt(other_key, b"<xml/>", WECOM["corp_id"])
    query = {"timestamp": str(NOW), "nonce": "1"}
    query["msg_signature"] = signature(WECOM["token"], str(NOW), "1", encrypted)
    body = f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode()
    with pytest.raises(Forbidden, match="does not decrypt"):
        wecom().verify(request(body=body, query=query), NOW)


def test_wecom_message_for_another_corp_is_refused() -> None:
    vector = WECOM["other_corp"]
    with pytest.raises(Forbidden, match="another receiver"):
        wecom().verify(request(body=vector["body"].encode(), query=vector["query"]), NOW)
    wecom(corp_id=[WECOM["corp_id"], "wwanothercorp0000"]).verify(
        request(body=vector["body"].encode(), query=vector["query"]), NOW
    )


def test_wecom_stale_timestamp_is_403() -> None:
    vector = WECOM["message"]
    signed = request(body=vector["body"].encode(), query=vector["query"])
    wecom().verify(signed, NOW + 3600)
    with pytest.raises(Forbidden, match="too old"):
        wecom().verify(signed, NOW + 3601)


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce", "echostr"])
def test_wecom_handshake_missing_parameter_is_401(missing: str) -> None:
    query = {k: v for k, v in WECOM["handshake"]["query"].items() if k != missing}
    with pytest.raises(Unauthenticated, match=missing):
        wecom().verify(request(method="GET", query=query), NOW)


def test_wecom_body_that_is_not_the_envelope_is_403() -> None:
    query = WECOM["message"]["query"]
    for body in (b"", b"{}", b"<xml><ToUserName>x</ToUserName></xml>"):
        with pytest.raises(Forbidden, match="Encrypt"):
            wecom().verify(request(body=body, query=query), NOW)


def test_wecom_decrypted_text_that_is_not_xml_is_a_malformed_body() -> None:
    key = message_key(WECOM["encoding_aes_key"])
    encrypted = encrypt(key, b"not xml", WECOM["corp_id"])
    query = {"timestamp": str(NOW), "nonce": "2"}
    query["msg_signature"] = signature(WECOM["token"], str(NOW), "2", encrypted)
    body = f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode()
    with pytest.raises(MalformedBody):
        wecom().verify(request(body=body, query=query), NOW)


def test_wxcrypt_round_trip_pads_to_32_byte_blocks() -> None:
    key = message_key(WECOM["encoding_aes_key"])
    for size in (0, 1, 11, 12, 27, 28, 100):
        encrypted = encrypt(key, b"m" * size, "corp")
        assert len(base64.b64decode(encrypted)) % 32 == 0
        assert decrypt(key, encrypted) == (b"m" * size, "corp")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"encoding_aes_key": "short", "corp_id": "c", "token": "t"}, "encoding_aes_key"),
        ({"encoding_aes_key": "A" * 43, "corp_id": "c"}, "token"),
        ({"encoding_aes_key": "A" * 43, "token": "t"}, "corp_id"),
        ({"encoding_aes_key": "A" * 43, "token": "", "corp_id": "c"}, "token"),
    ],
)
def test_wecom_bad_options_are_refused_at_load(options: dict[str, str], field: str) -> None:
    with pytest.raises(DefinitionError, match=rf"verify\[0\]\.wecom\.{field}"):
        verification("wecom", **options)


# -- Feishu -----------------------------------------------------------------------------

FEISHU = VECTORS["feishu"]


def feishu(**more: Any) -> Verification:
    options = {k: FEISHU[k] for k in ("verification_token", "encrypt_key")}
    return verification("feishu", **{**options, **more})


def feishu_request(name: str, **more_headers: str) -> SignedRequest:
    vector = FEISHU[name]
    headers = {k.lower(): v for k, v in vector["headers"].items()}
    return request({**headers, **more_headers}, vector["body"].encode())


def test_feishu_published_decryption_example() -> None:
    example = FEISHU["published_example"]
    assert feishu_decrypt(example["encrypt_key"], example["encrypt"]) == b"hello world"


@pytest.mark.parametrize("name", ["challenge_encrypted", "challenge_plain"])
def test_feishu_url_verification_is_answered_with_the_challenge(name: str) -> None:
    verified = feishu().verify(feishu_request(name), NOW)
    assert verified.answer is not None
    assert json.loads(verified.answer.body) == json.loads(FEISHU[name]["sdk_answer"])
    assert verified.answer.content_type == "application/json"


def test_feishu_url_verification_needs_no_signature_headers() -> None:
    vector = FEISHU["challenge_encrypted"]
    verified = feishu().verify(request({}, vector["body"].encode()), NOW)
    assert verified.answer is not None


@pytest.mark.parametrize(
    ("name", "plain"), [("event_v2", "event_v2_plain"), ("event_v1", "event_v1_plain")]
)
def test_feishu_encrypted_events_of_both_schemas_become_data(name: str, plain: str) -> None:
    verified = feishu().verify(feishu_request(name), NOW)
    assert verified.answer is None
    assert verified.opened is not None
    assert verified.opened.data == FEISHU[plain]


def test_feishu_wrong_encrypt_key_is_403() -> None:
    with pytest.raises(Forbidden, match="does not match"):
        feishu(encrypt_key="another key").verify(feishu_request("event_v2"), NOW)


def test_feishu_wrong_verification_token_is_403() -> None:
    with pytest.raises(Forbidden, match="verification token"):
        feishu(verification_token="another").verify(feishu_request("event_v2"), NOW)
    with pytest.raises(Forbidden, match="verification token"):
        feishu(verification_token="another").verify(feishu_request("challenge_encrypted"), NOW)


def test_feishu_rotated_credentials_pass() -> None:
    check = feishu(
        verification_token=["new", FEISHU["verification_token"]],
        encrypt_key=["new key", FEISHU["encrypt_key"]],
    )
    assert check.verify(feishu_request("event_v1"), NOW).opened is not None


def test_feishu_stale_timestamp_is_403() -> None:
    feishu().verify(feishu_request("event_v2"), NOW + 3600)
    with pytest.raises(Forbidden, match="too old"):
        feishu().verify(feishu_request("event_v2"), NOW + 3601)


def test_feishu_tampered_ciphertext_is_refused() -> None:
    vector = FEISHU["event_v2"]
    body = json.loads(vector["body"])
    raw = bytearray(base64.b64decode(body["encrypt"]))
    raw[20] ^= 1
    tampered = json.dumps({"encrypt": base64.b64encode(bytes(raw)).decode()}).encode()
    headers = {k.lower(): v for k, v in vector["headers"].items()}
    with pytest.raises(Forbidden, match="does not match"):
        feishu().verify(request(headers, tampered), NOW)
    # Without the signature it must still not decrypt into an event.
    with pytest.raises((Forbidden, Unauthenticated)):
        verification("feishu", encrypt_key=FEISHU["encrypt_key"]).verify(request({}, tampered), NOW)


def test_feishu_event_without_signature_is_401() -> None:
    vector = FEISHU["event_v2"]
    with pytest.raises(Unauthenticated, match="X-Lark-Signature"):
        feishu().verify(request({}, vector["body"].encode()), NOW)


def test_feishu_token_only_checks_plain_events_of_both_schemas() -> None:
    check = verification("feishu", verification_token=FEISHU["verification_token"])
    for plain in ("event_v2_plain", "event_v1_plain"):
        body = json.dumps(FEISHU[plain]).encode()
        assert check.verify(request({}, body), NOW) == Verified()
    with pytest.raises(Unauthenticated, match="verification token"):
        check.verify(request({}, b'{"schema": "2.0", "header": {}}'), NOW)
    with pytest.raises(Forbidden, match="encrypt_key"):
        check.verify(feishu_request("event_v2"), NOW)


def test_feishu_body_that_is_not_an_event_is_403() -> None:
    for body in (b"", b"[]", b"not json"):
        with pytest.raises(Forbidden, match="Feishu event"):
            verification("feishu", verification_token="t").verify(request({}, body), NOW)


def test_feishu_needs_a_credential() -> None:
    with pytest.raises(DefinitionError, match=r"feishu\.verification_token"):
        verification("feishu")


# -- DingTalk event subscription --------------------------------------------------------

EVENTS = VECTORS["dingtalk_events"]
EVENTS_NOW = 1_700_000_000


def dingtalk_events(**more: Any) -> Verification:
    options = {k: EVENTS[k] for k in ("token", "aes_key", "app_key")}
    return verification("dingtalk_events", **{**options, **more})


def read_acknowledgement(body: bytes) -> str:
    """The text inside DingTalk's expected answer, its signature checked."""
    answer = json.loads(body)
    expected = signature(EVENTS["token"], answer["timeStamp"], answer["nonce"], answer["encrypt"])
    assert answer["msg_signature"] == expected
    message, receiver = decrypt(message_key(EVENTS["aes_key"]), answer["encrypt"])
    assert receiver == EVENTS["app_key"]
    return message.decode()


def test_dingtalk_events_check_url_is_answered_with_encrypted_success() -> None:
    vector = EVENTS["check_url"]
    verified = dingtalk_events().verify(
        request(body=vector["body"].encode(), query=vector["query"]), EVENTS_NOW
    )
    assert verified.answer is not None
    assert verified.opened is None
    assert read_acknowledgement(verified.answer.body) == "success"


def test_dingtalk_events_event_is_decrypted_and_acknowledged() -> None:
    vector = EVENTS["event"]
    verified = dingtalk_events().verify(
        request(body=vector["body"].encode(), query=vector["query"]), EVENTS_NOW
    )
    assert verified.answer is None
    assert verified.opened is not None
    assert verified.opened.data == vector["decrypted"]
    assert verified.reply is not None
    assert read_acknowledgement(verified.reply.body) == "success"


def test_dingtalk_events_wrong_token_stale_and_tampered_are_403() -> None:
    vector = EVENTS["event"]
    signed = request(body=vector["body"].encode(), query=vector["query"])
    with pytest.raises(Forbidden, match="does not match"):
        dingtalk_events(token="another").verify(signed, EVENTS_NOW)
    with pytest.raises(Forbidden, match="too old"):
        dingtalk_events().verify(signed, EVENTS_NOW + 3601)
    body = json.loads(vector["body"])
    body["encrypt"] = ("B" if body["encrypt"][5] != "B" else "C").join(
        (body["encrypt"][:5], body["encrypt"][6:])
    )
    tampered = request(body=json.dumps(body).encode(), query=vector["query"])
    with pytest.raises(Forbidden, match="does not match"):
        dingtalk_events().verify(tampered, EVENTS_NOW)


def test_dingtalk_events_another_app_key_is_refused() -> None:
    vector = EVENTS["event"]
    signed = request(body=vector["body"].encode(), query=vector["query"])
    with pytest.raises(Forbidden, match="another receiver"):
        dingtalk_events(app_key="dingsomeoneelse").verify(signed, EVENTS_NOW)


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
def test_dingtalk_events_missing_query_parameter_is_401(missing: str) -> None:
    vector = EVENTS["event"]
    query = {k: v for k, v in vector["query"].items() if k != missing}
    with pytest.raises(Unauthenticated, match=missing):
        dingtalk_events().verify(request(body=vector["body"].encode(), query=query), EVENTS_NOW)


@pytest.mark.parametrize(
    "plain",
    [b'{"a": NaN}', b'{"a": 1e400}', b'["not", "an", "object"]', b'{"a": "\\ud800"}', b"\xff"],
    ids=["nan", "overflow", "list", "surrogate", "not-utf8"],
)
def test_a_decrypted_event_is_held_to_the_json_body_rules(plain: bytes) -> None:
    signed = sign("feishu", secret="ek", body=plain, url="https://h/x", timestamp=NOW)
    assert signed.body is not None
    headers = {name.lower(): value for name, value in signed.headers.items()}
    feishu_check = verification("feishu", encrypt_key="ek")
    with pytest.raises(MalformedBody):
        feishu_check.verify(request(headers, signed.body), NOW)
    options = {"aes_key": WECOM["encoding_aes_key"], "app_key": "dingapp"}
    sealed = sign("dingtalk_events", secret="t", body=plain, url="https://h/x", options=options)
    assert sealed.body is not None
    check = verification("dingtalk_events", token="t", **options)
    signed_request = SignedRequest("POST", sealed.url, {}, sealed.body)
    with pytest.raises(MalformedBody):
        check.verify(signed_request, NOW if "timestamp" not in sealed.url else _stamp(sealed.url))


def _stamp(url: str) -> float:
    return int(dict(parse_qsl(url.partition("?")[2]))["timestamp"]) / 1000
