"""Fuzzing the webhook ingress of a real server: random methods, paths, headers, bodies.

Whatever a sender throws at ``/api/webhooks/``, the answer is never a 5xx, every error
answer is a problem document, and the server keeps serving. Hypothesis drives a
synchronous client from a worker thread while the server runs in the test's trio loop.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hookline._signing import sign
from tests.conftest import StoreFactory
from tests.http.test_verification_http import serving

EXAMPLES = 300
SECRET = "fuzz-secret"
JWT_KEY = "a-fuzzing-jwt-key-of-32-bytes-at-least"

HOOKS = [
    f"""
key: github
trigger:
  type: webhook
  path: github/{{repo}}
  methods: [POST, PUT]
  max_body: 2KiB
  verify:
    - github: {{secret: {SECRET}}}
nodes:
  - {{key: done, type: set, values: {{ref: "{{{{$context.data.ref}}}}"}}}}
""",
    f"""
key: jwt
trigger:
  type: webhook
  path: jwt
  mode: sync
  verify:
    - jwt: {{secret: {JWT_KEY}, algorithms: [HS256]}}
nodes:
  - {{key: out, type: end, output: "{{{{$context.jwt}}}}"}}
""",
    f"""
key: twilio
trigger:
  type: webhook
  path: twilio
  verify:
    - twilio: {{secret: {SECRET}}}
nodes:
  - {{key: done, type: set, values: {{ok: true}}}}
""",
    """
key: echo
trigger:
  type: webhook
  path: "echo/{name}"
  methods: [GET, POST, PUT, PATCH, DELETE, HEAD]
  mode: sync
nodes:
  - {key: out, type: end, output: "{{$context}}"}
""",
    """
key: guarded
trigger:
  type: webhook
  path: guarded
  ip_allow: ["10.0.0.0/8", "2001:db8::/32"]
nodes:
  - {key: done, type: set, values: {ok: true}}
""",
    """
key: keyed
trigger:
  type: webhook
  path: keyed
  idempotency: {key: "{{$context.headers.x-key}}"}
nodes:
  - {key: done, type: set, values: {n: "{{$context.data.n}}"}}
""",
]

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Headers the client must own for the request to be HTTP at all.
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "upgrade", "expect", "te"}
INTERESTING = [
    "content-type",
    "authorization",
    "x-hub-signature-256",
    "x-hub-signature",
    "stripe-signature",
    "x-twilio-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "idempotency-key",
    "x-github-delivery",
    "x-key",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "content-encoding",
    "cookie",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=no-such-codec",
    "application/vnd.api+json",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data",
    "text/plain; charset=latin-1",
    "text/html",
    "application/octet-stream",
    "",
    ";;;",
]

methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]) | (
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10)
)
segments = st.sampled_from(["github", "jwt", "twilio", "echo", "guarded", "keyed", "", ".."]) | (
    st.text(min_size=1, max_size=12).map(lambda text: quote(text, safe=""))
)
paths = st.lists(segments, min_size=1, max_size=4).map("/".join)
queries = st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=3)
header_values = st.binary(min_size=1, max_size=60).map(
    lambda raw: bytes(b if 0x21 <= b <= 0x7E or b >= 0x80 else 0x61 for b in raw)
)
header_names = st.sampled_from(INTERESTING) | st.text(alphabet=TOKEN, min_size=1, max_size=20)
headers = st.dictionaries(
    header_names.filter(lambda name: name.lower() not in FRAMING), header_values, max_size=6
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=4).map(
        lambda form: "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode()
    ),
)


def fuzz(base_url: str) -> int:
    """Run the fuzz cases against ``base_url``; returns how many ran."""
    ran = 0
    client = httpx.Client(base_url=base_url, timeout=10.0)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        method=methods,
        path=paths,
        query=queries,
        sent_headers=headers,
        content_type=st.sampled_from(CONTENT_TYPES) | st.text(max_size=30),
        body=bodies,
        signed=st.booleans(),
    )
    def case(
        method: str,
        path: str,
        query: dict[str, str],
        sent_headers: dict[str, bytes],
        content_type: str,
        body: bytes,
        signed: bool,
    ) -> None:
        nonlocal ran
        ran += 1
        all_headers: dict[bytes, bytes] = {k.encode(): v for k, v in sent_headers.items()}
        if content_type.isprintable() and content_type.isascii():
            all_headers[b"content-type"] = (content_type.strip() or "text/plain").encode()
        if signed:
            # Half the cases get past verification, so parsing and admission are fuzzed too.
            for scheme, key in (("github", SECRET), ("jwt", JWT_KEY)):
                signed_headers = sign(scheme, secret=key, body=body).headers
                all_headers.update({k.encode(): v.encode() for k, v in signed_headers.items()})
        answer = client.request(
            method,
            f"/api/webhooks/{path}",
            params=query,
            headers=all_headers,
            content=body if method not in {"GET", "HEAD"} else b"",
        )
        assert answer.status_code < 500, (answer.status_code, answer.text)
        if answer.status_code >= 400 and method != "HEAD":
            assert answer.headers["content-type"] == "application/problem+json", answer.text
            assert "Traceback" not in answer.text

    with client:
        case()
    return ran


async def test_random_requests_never_get_a_5xx(make_store: StoreFactory) -> None:
    async with serving(HOOKS, store=make_store()) as server:
        ran = await trio.to_thread.run_sync(fuzz, server.url)
        health = await server.client.get("/healthz")
        await server.engine.store.flush()
        recorded = await server.engine.store.list_deliveries(limit=10)
        stats = server.engine.statistics()

    assert ran >= EXAMPLES
    assert health.status_code == 200
    assert recorded.items
    assert stats.supervisor.restarts == 0
