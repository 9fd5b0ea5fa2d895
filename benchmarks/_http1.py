"""The built-in generators' HTTP/1.1 client: pre-built requests, keep-alive connections
that read just enough to frame each answer.

A general client (httpx) spends more time per request than the servers under test;
this one formats a request by joining bytes and parses only the status line,
``Content-Length`` and chunked framing.
"""

from __future__ import annotations

import trio

from ._spec import RequestSpec, delivery_number

__all__ = ["ClosedError", "Connection", "RequestMaker", "split_url"]


class ClosedError(Exception):
    """The server closed the connection before a complete answer."""


def split_url(base_url: str) -> tuple[str, int]:
    """``http://host:port`` as (host, port); port 80 when absent. Only http is spoken."""
    if not base_url.startswith("http://"):
        raise ValueError(f"the built-in generators speak plain http only, got {base_url!r}")
    host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
    return host, int(port or 80)


class RequestMaker:
    """Builds the bytes of request ``n`` of one sender (``stream``) for ``spec``.

    Delivery ids are ``<run_id>-<stream>-<number>`` with the number from
    :func:`~benchmarks._spec.delivery_number`, so duplicates repeat exactly.
    """

    def __init__(self, spec: RequestSpec, host: str, port: int, run_id: str) -> None:
        body = spec.body()
        head = f"{spec.method} {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in spec.all_headers())
        head += f"Content-Length: {len(body)}\r\n"
        self._head = head.encode("latin-1")
        self._tail = b"\r\n" + body
        self._fixed = self._head + self._tail
        self._unique = spec.unique_header
        self._repeat = spec.repeat
        self._run_id = run_id

    def make(self, stream: int, n: int) -> bytes:
        if self._unique is None:
            return self._fixed
        number = delivery_number(n, repeat=self._repeat)
        line = f"{self._unique}: {self._run_id}-{stream}-{number}\r\n".encode("latin-1")
        return self._head + line + self._tail


class Connection:
    """One HTTP/1.1 keep-alive connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.answered = 0

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(await trio.open_tcp_stream(host, port))

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ClosedError
        self.buffer += chunk

    async def _read_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + len(marker)]
        return line

    async def _read_exactly(self, size: int) -> None:
        while len(self.buffer) < size:
            await self._fill()
        del self.buffer[:size]

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send ``request``, read its answer; return (status, server keeps the connection).

        Raises ClosedError, trio.BrokenResourceError or OSError when the connection
        fails, ValueError or IndexError for an answer that is not HTTP/1.1.
        """
        await self.stream.send_all(request)
        head = (await self._read_until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length = 0
        chunked = False
        keep = True
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                keep = value.strip().lower() != "close"
        if chunked:
            while size := int((await self._read_until(b"\r\n")).split(b";")[0], 16):
                await self._read_exactly(size + 2)
            await self._read_until(b"\r\n")  # no trailers are expected
        else:
            await self._read_exactly(length)
        self.answered += 1
        return status, keep

    async def aclose(self) -> None:
        await self.stream.aclose()

    @property
    def clean_close(self) -> bool:
        """True when a failure now is the server closing an idle keep-alive connection
        (it answered before and nothing is half-read): reopen quietly, as wrk does."""
        return self.answered > 0 and not self.buffer


FAILURES = (ClosedError, trio.BrokenResourceError, OSError, ValueError, IndexError)
"""What :meth:`Connection.exchange` raises when a request gets no (valid) answer."""
