"""Transport limits: body size (declared and chunked), request head size, slow bodies.

Raw sockets stand in for senders that an HTTP client would not let a test imitate: a
client that declares a huge body and sends none of it, one that keeps sending chunks,
one that stalls halfway through its body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from hookline._signing import sign
from tests.conftest import StoreFactory
from tests.http.conftest import assert_problem
from tests.http.test_verification_http import deliveries, executions, hook, serving

LIMITED = hook("limited", extra="\n  max_body: 1KiB")
SIGNED = hook("signed", "github: {secret: s3cret}", extra="\n  max_body: 1KiB")
GUARDED = hook("guarded", extra='\n  max_body: 1KiB\n  ip_allow: ["10.0.0.0/8"]')


@attrs.frozen
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def open_raw(url: str) -> trio.SocketStream:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return await trio.open_tcp_stream(parts.hostname, parts.port)


async def read_answer(stream: trio.SocketStream) -> RawAnswer:
    """One HTTP/1.1 answer with a Content-Length body (what hookline sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        body += chunk
    return RawAnswer(int(status_line.split()[1]), headers, body)


def head(path: str, *lines: str) -> bytes:
    text = f"POST {path} HTTP/1.1\r\nHost: hookline\r\n" + "".join(f"{x}\r\n" for x in lines)
    return (text + "\r\n").encode()


async def test_declared_length_over_max_body_is_413_before_the_body_is_sent(
    make_store: StoreFactory,
) -> None:
    async with serving([LIMITED], store=make_store()) as server:
        stream = await open_raw(server.url)
        # Not one byte of the declared body follows: only an answer from the headers alone
        # can arrive.
        await stream.send_all(
            head("/api/webhooks/limited", "Content-Length: 1048576", "Content-Type: text/plain")
        )
        with trio.fail_after(5):
            answer = await read_answer(stream)
        await stream.aclose()
        (record,) = await deliveries(server, "limited")

    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "the body is 1048576 bytes; this webhook accepts at most 1024"
    assert (record.verdict, record.status) == ("rejected", 413)


async def test_chunked_body_is_cut_off_at_max_body(make_store: StoreFactory) -> None:
    async with serving([LIMITED], store=make_store()) as server:
        stream = await open_raw(server.url)
        await stream.send_all(head("/api/webhooks/limited", "Transfer-Encoding: chunked"))
        # 1.5 KiB in chunks, and no final chunk: the sender would go on forever.
        for _ in range(3):
            await stream.send_all(b"200\r\n" + b"x" * 512 + b"\r\n")
        with trio.fail_after(5):
            answer = await read_answer(stream)
        await stream.aclose()
        started = await executions(server, "limited")

    assert answer.status == 413
    assert "larger than 1024 bytes" in answer.json()["detail"]
    assert started == 0


async def test_a_body_at_max_body_is_accepted(make_store: StoreFactory) -> None:
    async with serving([LIMITED], store=make_store()) as server:
        answer = await server.client.post(
            "/api/webhooks/limited", content=b"x" * 1024, headers={"content-type": "text/plain"}
        )
    assert answer.status_code == 202, answer.text


async def test_size_is_checked_after_the_ip_and_before_the_signature(
    make_store: StoreFactory,
) -> None:
    big = b"x" * 2048
    async with serving([GUARDED, SIGNED], store=make_store()) as server:
        outsider = await server.client.post("/api/webhooks/guarded", content=big)
        unsigned = await server.client.post("/api/webhooks/signed", content=big)
        signed = sign("github", secret="s3cret", body=b"{}")
        small = await server.client.post(
            "/api/webhooks/signed", content=b"{}", headers=dict(signed.headers)
        )
    assert_problem(outsider, 403)
    assert_problem(unsigned, 413)
    assert small.status_code == 202


async def test_request_heads_past_the_header_limit_are_431(make_store: StoreFactory) -> None:
    async with serving([LIMITED], max_header_size=8 * 1024, store=make_store()) as server:
        within = await server.client.post(
            "/api/webhooks/limited", content=b"ok", headers={"x-padding": "p" * 4000}
        )
        stream = await open_raw(server.url)
        await stream.send_all(head("/api/webhooks/limited", "X-Padding: " + "p" * 9000))
        with trio.fail_after(5):
            beyond = await read_answer(stream)
        await stream.aclose()
        started = await executions(server, "limited")

    assert within.status_code == 202
    assert beyond.status == 431
    assert started == 1


async def test_a_stalled_body_is_408_after_the_body_timeout(
    autojump_clock: object, make_store: StoreFactory
) -> None:
    async with serving([LIMITED], body_timeout=20.0, store=make_store()) as server:
        stream = await open_raw(server.url)
        await stream.send_all(
            head("/api/webhooks/limited", "Content-Length: 100", "Content-Type: text/plain")
        )
        await stream.send_all(b"only forty bytes of the hundred promised")
        start = trio.current_time()
        with trio.fail_after(60):
            answer = await read_answer(stream)
        waited = trio.current_time() - start
        await stream.aclose()
        (record,) = await deliveries(server, "limited")
        started = await executions(server, "limited")

    assert answer.status == 408
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "the body did not arrive within 20 seconds"
    assert 20.0 <= waited < 21.0
    assert (record.verdict, record.status) == ("rejected", 408)
    assert started == 0


async def test_a_body_arriving_in_pieces_within_the_timeout_is_accepted(
    autojump_clock: object,
    make_store: StoreFactory,
) -> None:
    async with serving([LIMITED], body_timeout=20.0, store=make_store()) as server:
        stream = await open_raw(server.url)
        await stream.send_all(
            head("/api/webhooks/limited", "Content-Length: 30", "Content-Type: text/plain")
        )
        for piece in (b"ten bytes!", b"ten more..", b"and done.."):
            await trio.sleep(5)
            await stream.send_all(piece)
        with trio.fail_after(60):
            answer = await read_answer(stream)
        await stream.aclose()

    assert answer.status == 202, answer.body


async def test_an_answer_before_the_body_closes_the_connection(make_store: StoreFactory) -> None:
    async with serving([LIMITED, SIGNED], store=make_store()) as server:
        stream = await open_raw(server.url)
        # Answered 404 from the path alone; the 50 promised bytes never come.
        await stream.send_all(head("/api/webhooks/nowhere", "Content-Length: 50"))
        with trio.fail_after(5):
            early = await read_answer(stream)
            rest = await stream.receive_some(1024)
        await stream.aclose()

        stream = await open_raw(server.url)
        # Read in full, then refused (401): the connection stays usable.
        await stream.send_all(head("/api/webhooks/signed", "Content-Length: 2") + b"{}")
        with trio.fail_after(5):
            first = await read_answer(stream)
        await stream.send_all(head("/api/webhooks/limited", "Content-Length: 2") + b"ok")
        with trio.fail_after(5):
            second = await read_answer(stream)
        await stream.aclose()

    assert early.status == 404
    assert early.headers["connection"] == "close"
    assert rest == b""  # closed by the server, not left waiting for the rest
    assert first.status == 401
    assert "connection" not in first.headers
    assert second.status == 202
