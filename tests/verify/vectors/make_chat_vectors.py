"""Make ``chat_platforms.json``: requests signed and encrypted by the platforms' own SDKs.

Not run by the tests (which only read the JSON) and not a dependency of hookline. To
remake the vectors::

    python3 -m venv /tmp/sdkvenv
    /tmp/sdkvenv/bin/pip install 'wechatpy==1.8.18' 'lark-oapi==1.7.5' 'twilio==9.13.0' \\
        'dingtalk-sdk==1.3.8' cryptography
    cd tests/verify/vectors && /tmp/sdkvenv/bin/python make_chat_vectors.py > chat_platforms.json

Each run draws new random IVs, nonces and padding bytes, so the values change while
their shapes and the tests' expectations stay the same.

- WeCom: wechatpy's ``wechatpy.enterprise.crypto`` encrypts and signs (``PrpCrypto``,
  ``WeChatCrypto.encrypt_message``); each vector is checked back with
  ``check_signature``/``decrypt_message``.
- Feishu: lark-oapi has no encrypting side, so the bodies are encrypted and signed here
  as Feishu's documentation says, and each is then fed to lark-oapi's own
  ``EventDispatcherHandler``, which must accept it (the challenge answered, the event
  dispatched). Feishu's published decryption example is included as is.
- DingTalk events: dingtalk-sdk 1.3.8's ``dingtalk.crypto.DingTalkCrypto`` encrypts and
  signs (``encrypt_message``), and its ``decrypt_message`` reads them back.
- Twilio: ``twilio.request_validator.RequestValidator.compute_signature`` with
  ``HMAC_SHA256`` (a SharedKey secret) and ``HMAC_SHA1`` (an auth token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys

import lark_oapi
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dingtalk.crypto import DingTalkCrypto
from lark_oapi.core.model.raw_request import RawRequest
from twilio.request_validator import RequestValidator
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

TIMESTAMP = "1700000000"


def wecom() -> dict[str, object]:
    token, key, corp = (
        "hooklineToken",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "ww1234567890abcdef",
    )
    crypto = WeChatCrypto(token, key, corp)
    echo = "echo-8235914022671"
    echostr = PrpCrypto(crypto.key).encrypt(echo, corp).decode()
    echo_signature = _get_signature(token, TIMESTAMP, "1372623149", echostr)
    assert crypto.check_signature(echo_signature, TIMESTAMP, "1372623149", echostr) == echo
    message = (
        "<xml><ToUserName><![CDATA[ww1234567890abcdef]]></ToUserName>"
        "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[部署 main]]></Content>"
        "<MsgId>7301234567890123456</MsgId><AgentID>1000002</AgentID></xml>"
    )
    reply = crypto.encrypt_message(message, "1597212914", TIMESTAMP)
    encrypted = reply.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = reply.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    body = (
        "<xml><ToUserName><![CDATA[ww1234567890abcdef]]></ToUserName>"
        f"<AgentID><![CDATA[1000002]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    assert crypto.decrypt_message(body, signature, TIMESTAMP, "1597212914") == message
    other = WeChatCrypto(token, key, "wwanothercorp0000")
    other_reply = other.encrypt_message(message, "1597212914", TIMESTAMP)
    other_encrypted = other_reply.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    return {
        "token": token,
        "encoding_aes_key": key,
        "corp_id": corp,
        "handshake": {
            "query": {
                "msg_signature": echo_signature,
                "timestamp": TIMESTAMP,
                "nonce": "1372623149",
                "echostr": echostr,
            },
            "answer": echo,
        },
        "message": {
            "query": {"msg_signature": signature, "timestamp": TIMESTAMP, "nonce": "1597212914"},
            "body": body,
            "decrypted": message,
        },
        "other_corp": {
            "query": {
                "msg_signature": _get_signature(token, TIMESTAMP, "1597212914", other_encrypted),
                "timestamp": TIMESTAMP,
                "nonce": "1597212914",
            },
            "body": f"<xml><Encrypt><![CDATA[{other_encrypted}]]></Encrypt></xml>",
        },
    }


def feishu_encrypt(encrypt_key: str, plain: bytes) -> str:
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def feishu() -> dict[str, object]:
    token, key = "v3HnNl2sGgCkxN4f0bQvqh", "hooklineEncryptKey"
    received: list[object] = []
    handler = (
        lark_oapi.EventDispatcherHandler.builder(key, token)
        .register_p2_im_message_receive_v1(received.append)
        .register_p1_customized_event("message", received.append)
        .build()
    )

    def request(body: bytes, nonce: str) -> dict[str, object]:
        signature = hashlib.sha256((TIMESTAMP + nonce + key).encode() + body).hexdigest()
        headers = {
            "X-Lark-Request-Timestamp": TIMESTAMP,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": signature,
        }
        raw = RawRequest()
        raw.uri, raw.body, raw.headers = "/webhook/event", body, headers
        answer = handler.do(raw)
        assert answer.status_code == 200, answer.content
        return {"headers": headers, "body": body.decode(), "sdk_answer": answer.content.decode()}

    challenge = {"challenge": "ajls384kdjx98XX", "token": token, "type": "url_verification"}
    v2 = {
        "schema": "2.0",
        "header": {
            "event_id": "5e3702a84e847582be8db7fb73283c02",
            "event_type": "im.message.receive_v1",
            "create_time": "1700000000000",
            "token": token,
            "app_id": "cli_a1b2c3",
            "tenant_key": "2ca1d211f64f6438",
        },
        "event": {
            "message": {
                "message_id": "om_1",
                "message_type": "text",
                "content": '{"text":"deploy main"}',
            }
        },
    }
    v1 = {
        "uuid": "41b5f371157e3d5341b38b20396e77a3",
        "token": token,
        "ts": "1700000000.0",
        "type": "event_callback",
        "event": {"type": "message", "text": "deploy main"},
    }
    out = {
        "verification_token": token,
        "encrypt_key": key,
        "published_example": {
            "encrypt_key": "test key",
            "encrypt": "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=",
            "plain": "hello world",
        },
        "challenge_encrypted": request(
            json.dumps({"encrypt": feishu_encrypt(key, json.dumps(challenge).encode())}).encode(),
            "n1",
        ),
        "challenge_plain": request(json.dumps(challenge).encode(), "n2"),
        "event_v2": request(
            json.dumps({"encrypt": feishu_encrypt(key, json.dumps(v2).encode())}).encode(), "n3"
        ),
        "event_v1": request(
            json.dumps({"encrypt": feishu_encrypt(key, json.dumps(v1).encode())}).encode(), "n4"
        ),
        "event_v2_plain": v2,
        "event_v1_plain": v1,
    }
    assert len(received) == 2
    published = lark_oapi.core.utils.decryptor.AESCipher("test key").decrypt_str(
        out["published_example"]["encrypt"]  # type: ignore[index]
    )
    assert published == "hello world"
    return out


def dingtalk_events() -> dict[str, object]:
    token, app_key = "dtToken", "dingabcdefgh12345678"
    key = "hT9a3iDgwJbDpvDTKUj4ywZBE8mVbSv1pGBJOQpIhVd"
    crypto = DingTalkCrypto(token, key, app_key)

    def pushed(event: dict[str, object], nonce: str) -> dict[str, object]:
        sealed = crypto.encrypt_message(json.dumps(event), nonce, TIMESTAMP + "000")
        query = {
            "signature": sealed["msg_signature"],
            "timestamp": sealed["timeStamp"],
            "nonce": nonce,
        }
        body = json.dumps({"encrypt": sealed["encrypt"]})
        assert (
            json.loads(crypto.decrypt_message(body, query["signature"], query["timestamp"], nonce))
            == event
        )
        return {"query": query, "body": body}

    event = {
        "EventType": "user_add_org",
        "TimeStamp": "1700000000000",
        "UserId": ["u1"],
        "CorpId": "ding1",
    }
    return {
        "token": token,
        "aes_key": key,
        "app_key": app_key,
        "check_url": pushed({"EventType": "check_url"}, "nonce1"),
        "event": {**pushed(event, "nonce2"), "decrypted": event},
    }


def twilio() -> dict[str, object]:
    shared_key, auth_token = "hooklineSharedKeySecret0123456789", "12345"
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    body = '{"property": "value", "boolean": true}'
    json_url = (
        "https://mycompany.com/myapp.php?bodySHA256=" + hashlib.sha256(body.encode()).hexdigest()
    )
    sha256 = RequestValidator(shared_key)
    settings = "key=webhooks_sharedkey_0123456789abcdef,algorithm=HMAC_SHA256"
    form_sig = sha256.compute_signature(url, params, "HMAC_SHA256")
    json_sig = sha256.compute_signature(json_url, {}, "HMAC_SHA256")
    assert sha256.validate(url, params, form_sig, "HMAC_SHA256")
    assert sha256.validate(json_url, body, json_sig, "HMAC_SHA256")
    return {
        "shared_key": shared_key,
        "auth_token": auth_token,
        "settings": settings,
        "form": {"url": url, "params": params, "signature": form_sig},
        "json": {"url": json_url, "body": body, "signature": json_sig},
        "sha1_form_signature": RequestValidator(auth_token).compute_signature(url, params),
    }


if __name__ == "__main__":
    json.dump(
        {
            "wecom": wecom(),
            "feishu": feishu(),
            "dingtalk_events": dingtalk_events(),
            "twilio": twilio(),
        },
        sys.stdout,
        ensure_ascii=False,
        indent=1,
    )
    sys.stdout.write("\n")
