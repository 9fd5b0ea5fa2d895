"""The ``http`` nodes' outbound client: httpx over a network backend that checks every
address with the SSRF guard (:mod:`._ssrf`) where it connects.

Imported when an engine's first ``http`` node runs (see
:class:`~hookline.nodes._http.SharedHttpClient`), not with hookline: httpx and httpcore
cost more to import than the engine. The node registry skips this module.
"""

from __future__ import annotations

import math
import ssl
import weakref
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from ..errors import NodeError
from ._ssrf import AddressGuard

__all__ = ["GuardedBackend", "is_guarded", "new_http_client", "ssl_context"]

_GUARDED: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()


def ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """The SSL context of outbound requests: certifi's CA bundle (``verify=True``), or
    the CA bundle at path ``verify``. Loading the bundle takes tens of milliseconds."""
    return httpx.create_ssl_context(verify=verify, trust_env=False)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves each host, checks every address with
    ``guard`` and connects to a checked address, so the name is never resolved twice.

    A refused host raises :class:`NodeError` (httpx passes it through unchanged, so it is
    never mistaken for a connection error worth retrying). Unix sockets are refused.
    """

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None):
        self.guard = guard
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.guard.allows_name(host):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await self.guard.resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: Exception | None = None
        for address in addresses:
            remaining = None if timeout is None else max(0.0, deadline - anyio.current_time())
            try:
                return await self._inner.connect_tcp(
                    address, port, remaining, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise NodeError("refusing to connect to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def new_http_client(
    allow_hosts: Iterable[str] = (),
    *,
    limits: httpx.Limits | None = None,
    timeout: float = 30.0,
    verify: bool | str | ssl.SSLContext = True,
) -> httpx.AsyncClient:
    """An httpx client whose every connection goes through :class:`GuardedBackend`.

    The engine builds one per process for the ``http`` nodes (pass the same
    ``allow_hosts`` as ``NodeServices.http_allow_hosts``). It ignores proxy environment
    variables (a proxy would resolve names beyond the guard's reach) and follows no
    redirects (the node follows them itself, checking each hop). ``verify`` is passed to
    :func:`httpx.create_ssl_context` (a CA bundle path for tests), or is the SSL
    context itself. Raises :class:`ValueError` for a bad ``allow_hosts`` entry.
    """
    guard = AddressGuard.from_allow_hosts(allow_hosts)
    limits = limits if limits is not None else httpx.Limits(max_connections=100)
    ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
    # Given the context, the transport does not load the CA bundle a second time.
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
    # httpx takes no network backend; its pool is rebuilt with the same settings and
    # ours. The check fails loudly at startup if a future httpx changes the attribute.
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("this httpx version does not expose its connection pool")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(guard),
    )
    client = httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
    _GUARDED.add(client)
    return client


def is_guarded(client: httpx.AsyncClient) -> bool:
    """Whether ``client`` was built by :func:`new_http_client` (checks at connect time)."""
    return client in _GUARDED
