"""The code node's standard library for webhook scripts: crypto, text encodings, Buffer,
URL, and require. Results are checked against Python's own hashlib, hmac and base64,
and the seed's GitHub script runs unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest

from hookline.definition import Fields
from hookline.engine._job import RunningJob
from hookline.engine._request_context import LazyFields
from hookline.errors import NodeError
from hookline.nodes._registry import parse_node


async def run(code: str, roots: dict[str, Any] | None = None) -> Any:
    spec = parse_node(Fields({"key": "js", "type": "code", "code": code}, source="w.yaml"))
    return (await spec.config.run(RunningJob("ex-1", spec, roots or {}))).output


# Verbatim from the document users come from (its long line split here only).
SEED = (
    "const crypto = require('crypto');\n"
    "const signature = context.headers['x-hub-signature-256'];\n"
    "const payload = JSON.stringify(context.data);\n"
    "const expected = 'sha256=' + crypto.createHmac('sha256', 'your-webhook-secret')"
    ".update(payload).digest('hex');\n"
    "if (signature !== expected) { throw new Error('Invalid signature'); }\n"
)


@pytest.mark.parametrize("valid", [True, False])
async def test_the_seeds_github_signature_script_runs_unchanged(valid: bool) -> None:
    data = {"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}, "n": "é"}
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hmac.new(b"your-webhook-secret", payload, "sha256").hexdigest()
    headers = {"x-hub-signature-256": "sha256=" + (digest if valid else "0" * 64)}
    roots = {"context": {"data": data, "headers": headers}}
    if valid:
        assert await run(SEED, roots) is None
    else:
        with pytest.raises(NodeError, match=r"^Error: Invalid signature \(line 5, column"):
            await run(SEED, roots)


async def test_a_script_naming_context_raw_checks_the_body_as_received() -> None:
    raw = '{"b": 2,  "a": 1}'  # not what JSON.stringify would make of it
    mac = hmac.new(b"your-secret", raw.encode(), "sha256").hexdigest()
    code = """
      const given = Buffer.from(context.headers['x-signature'] || '', 'hex');
      const mac = crypto.createHmac('sha256', 'your-secret').update(context.raw).digest();
      return given.length === mac.length && crypto.timingSafeEqual(given, mac);
    """
    for signature, valid in ((mac, True), ("00" * 32, False)):
        context = LazyFields(
            {"data": {"b": 2, "a": 1}, "headers": {"x-signature": signature}}, {"raw": lambda: raw}
        )
        assert await run(code, {"context": context}) is valid
    assert await run("return typeof context.raw;", {"context": context}) == "string"


async def test_a_script_not_naming_the_raw_body_neither_gets_nor_pays_for_it() -> None:
    made: list[str] = []
    context = LazyFields(
        {"data": {"a": 1}},
        {"raw": lambda: made.append("raw") or "{}", "raw_base64": lambda: made.append("b64")},
    )
    code = "return [Object.keys(context).sort(), context.data.a];"
    assert await run(code, {"context": context}) == [["data"], 1]
    assert made == []  # the body was neither decoded nor base64-encoded for it


async def test_hashes_and_hmacs_match_pythons_in_every_encoding() -> None:
    text = "Grüße, webhook ✓ " * 40
    code = """
      const crypto = require('crypto');
      const out = {};
      for (const alg of ['sha1', 'sha256', 'sha512', 'md5']) {
        out[alg] = [
          crypto.createHash(alg).update(context.data.text).digest('hex'),
          crypto.createHash(alg).update(context.data.text.slice(0, 10))
            .update(context.data.text.slice(10)).digest('base64'),
          crypto.createHmac(alg, 'key').update(context.data.text).digest('hex'),
          crypto.createHmac(alg, Buffer.from('6b6579', 'hex'))
            .update(Buffer.from(context.data.text)).digest().toString('base64'),
        ];
      }
      return out;
    """
    found = await run(code, {"context": {"data": {"text": text}}})
    raw = text.encode()
    for alg in ("sha1", "sha256", "sha512", "md5"):
        mac = hmac.new(b"key", raw, alg).digest()
        assert found[alg] == [
            hashlib.new(alg, raw).hexdigest(),
            base64.b64encode(hashlib.new(alg, raw).digest()).decode(),
            mac.hex(),
            base64.b64encode(mac).decode(),
        ]


async def test_crypto_is_a_global_too_with_timing_safe_equal_and_random_values() -> None:
    code = """
      const a = Buffer.from('same'), b = Buffer.from('same'), c = Buffer.from('diff');
      let unequal = null;
      try { crypto.timingSafeEqual(a, Buffer.from('longer')); } catch (e) { unequal = e.name; }
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      return {
        same: require('crypto') === crypto,
        eq: [crypto.timingSafeEqual(a, b), crypto.timingSafeEqual(a, c), unequal],
        uuids: [crypto.randomUUID(), crypto.randomUUID()],
        random: bytes.length === 32 && bytes.some((x) => x !== 0),
      };
    """
    found = await run(code)
    assert found["same"] is True
    assert found["eq"] == [True, False, "RangeError"]
    uuid4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid4.match(u) for u in found["uuids"])
    assert found["uuids"][0] != found["uuids"][1]
    assert found["random"] is True


async def test_text_encoder_decoder_atob_btoa_and_buffer() -> None:
    code = """
      const bytes = new TextEncoder().encode('é€😀');
      return {
        encoded: Array.from(bytes),
        decoded: new TextDecoder().decode(bytes),
        lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62])),
        b64: [btoa('hello'), atob('aGVsbG8=')],
        buf: [
          Buffer.from('héllo').toString('hex'), Buffer.from('68c3a96c6c6f', 'hex').toString(),
          Buffer.from('héllo').toString('base64'),
          Buffer.from('aMOpbGxv', 'base64').toString('utf8'),
          Buffer.from('héllo', 'utf8').length, Buffer.isBuffer(Buffer.from('x')),
        ],
      };
    """
    found = await run(code)
    assert found["encoded"] == list("é€😀".encode())
    assert found["decoded"] == "é€😀"
    assert found["lossy"] == "a\ufffdb"
    assert found["b64"] == ["aGVsbG8=", "hello"]
    assert found["buf"] == [
        "héllo".encode().hex(),
        "héllo",
        base64.b64encode("héllo".encode()).decode(),
        "héllo",
        6,
        True,
    ]


async def test_url_and_url_search_params() -> None:
    code = """
      const url = new URL('https://User:pw@Example.COM:443/a/./b/../c?x=1&y=two%20words#top');
      const params = new URLSearchParams({q: 'a b&c', n: '1'});
      params.append('n', '2');
      const rel = new URL('../d?z=1', 'https://example.com/a/b/c');
      const parsed = new URLSearchParams('?a=1&a=2&b=x+y%21');
      url.searchParams.set('x', '9');
      return {
        parts: [url.protocol, url.username, url.hostname, url.port, url.host, url.pathname,
                url.hash, url.origin],
        query: [url.searchParams.get('y'), url.search, url.href],
        params: [params.toString(), params.getAll('n'), params.has('q')],
        rel: rel.href,
        parsed: [parsed.getAll('a'), parsed.get('b'), [...parsed.keys()]],
        bad: URL.canParse('not a url'),
      };
    """
    found = await run(code)
    assert found["parts"] == [
        "https:",
        "User",
        "example.com",
        "",
        "example.com",
        "/a/c",
        "#top",
        "https://example.com",
    ]
    assert found["query"] == [
        "two words",
        "?x=9&y=two+words",
        "https://User:pw@example.com/a/c?x=9&y=two+words#top",
    ]
    assert found["params"] == ["q=a+b%26c&n=1&n=2", ["1", "2"], True]
    assert found["rel"] == "https://example.com/a/d?z=1"
    assert found["parsed"] == [["1", "2"], "x y!", ["a", "a", "b"]]
    assert found["bad"] is False


async def test_require_knows_its_modules_and_lists_them_for_an_unknown_name() -> None:
    code = """
      const {Buffer: B} = require('buffer');
      const {URL: U} = require('node:url');
      return [B === Buffer, U === URL, typeof require('util').TextDecoder];
    """
    assert await run(code) == [True, True, "function"]
    with pytest.raises(NodeError) as caught:
        await run("const fs = require('fs');")
    assert str(caught.value).startswith(
        "Error: require('fs'): no such module here. Available: crypto, buffer, url, util "
        "(there is no network or file access) (line 1, column"
    )
