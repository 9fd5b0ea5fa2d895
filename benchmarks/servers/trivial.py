"""The generator check's target: a fixed HTTP/1.1 answer from an asyncio Protocol.

No framework, no header parsing beyond finding each request's end: it answers far
faster than any server under test, so what limits a run against it is the load
generator. Requests must carry ``Content-Length`` (the generators always send it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

BODY = b'{"execution_id":"0","status":"queued"}'
ANSWER = (
    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class _Answerer(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = 0
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            start = head.find(b"content-length:")
            length = 0
            if start >= 0:
                length = int(head[start + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                break
            del self.buffer[: end + 4 + length]
            answers += 1
        if answers and self.transport is not None:
            self.transport.write(ANSWER * answers)


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Answerer, host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve on ``--bind HOST:PORT`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1:8000")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, int(port)))


if __name__ == "__main__":
    main()
