"""The address guard: internal targets are refused unless listed, wherever they hide.

No test here sends a packet beyond the loopback interface: private literals are refused
before any connection (a mock transport would record a request that got through), and
servers that must not be reached listen on 127.0.0.x.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from hookline.definition import Fields
from hookline.engine._job import RunningJob
from hookline.errors import AddressRefused, NodeError
from hookline.nodes._base import NodeServices
from hookline.nodes._registry import parse_node
from hookline.nodes._ssrf import AddressGuard, is_public_address
from hookline.nodes._transport import GuardedBackend, new_http_client

from .test_http import Server, start


async def call(url: str, services: NodeServices) -> Any:
    spec = parse_node(Fields({"key": "call", "type": "http", "url": url}, source="w.yaml"))
    return (await spec.config.run(RunningJob("ex-1", spec, {}, services=services))).output


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a01:203",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "140.82.112.3", "2606:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_the_allow_list_takes_names_addresses_and_networks() -> None:
    guard = AddressGuard.from_allow_hosts(["Hooks.Internal.", "10.0.0.0/8", "::1"])
    assert guard.allows_name("hooks.internal")
    assert guard.allows_address(ipaddress.ip_address("10.9.8.7"))
    assert guard.allows_address(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert guard.allows_name("[::1]")
    assert not guard.allows_address(ipaddress.ip_address("192.168.0.1"))
    with pytest.raises(ValueError, match="not a host name"):
        AddressGuard.from_allow_hosts(["http://x/"])


@pytest.fixture
def recorded() -> tuple[list[httpx.Request], NodeServices]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return seen, NodeServices(http=client, http_allow_hosts=("10.20.0.0/16",))


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://0.0.0.0/",
    ],
)
async def test_a_literal_private_ip_is_refused_before_any_request(
    recorded: tuple[list[httpx.Request], NodeServices], url: str
) -> None:
    seen, services = recorded
    with pytest.raises(NodeError, match="not a public address"):
        await call(url, services)
    assert seen == []
    await call("http://10.20.1.1/", services)  # covered by the listed network
    assert len(seen) == 1


@pytest.fixture
def server() -> Iterator[Server]:
    server = start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["guarded", "plain"])
async def services(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., NodeServices]]:
    """Services with the engine's guarded client, or with a plain client (the node then
    resolves names itself), for a given allow list."""
    clients: list[httpx.AsyncClient] = []

    def make(*allow_hosts: str) -> NodeServices:
        guarded = request.param == "guarded"
        client = new_http_client(allow_hosts) if guarded else httpx.AsyncClient()
        clients.append(client)
        return NodeServices(http=client, http_allow_hosts=allow_hosts)

    yield make
    for client in clients:
        await client.aclose()


async def test_a_name_resolving_to_loopback_is_refused_unless_listed(
    server: Server, services: Callable[..., NodeServices]
) -> None:
    url = f"http://localhost:{server.server_address[1]}/echo"
    spec = parse_node(Fields({"key": "call", "type": "http", "url": url}, source="w.yaml"))
    running = RunningJob("ex-1", spec, {}, services=services())
    with pytest.raises(AddressRefused, match="not a public address") as caught:
        await spec.config.run(running)
    assert server.seen == []
    # Issue 13, finding 9: the error (a sync sender reads it) holds no DNS result; the
    # job log (the operator reads it) names the host and its address.
    assert "localhost" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert "::1" not in str(caught.value)
    [line] = running.lines
    assert "localhost (resolves to " in line
    allowed = await call(url, services("localhost"))
    assert allowed["status"] == 200


async def test_ignore_fail_does_not_cover_a_refused_address(
    server: Server, services: Callable[..., NodeServices]
) -> None:
    # Issue 13, finding 9: decided and documented: a refusal always fails the job.
    url = f"http://localhost:{server.server_address[1]}/echo"
    fields = {"key": "call", "type": "http", "url": url, "ignore_fail": True}
    spec = parse_node(Fields(fields, source="w.yaml"))
    with pytest.raises(AddressRefused):
        await spec.config.run(RunningJob("ex-1", spec, {}, services=services()))
    assert server.seen == []


async def test_a_redirect_to_a_private_address_is_refused(
    server: Server, services: Callable[..., NodeServices]
) -> None:
    inner = start("127.0.0.2")  # an "internal service": listed nowhere
    try:
        allowed = services("127.0.0.1")
        for target in (inner.url("/secret"), "http://10.0.0.1/admin"):
            with pytest.raises(NodeError, match="not a public address"):
                await call(server.url(f"/redirect/302?to={target}"), allowed)
        assert inner.seen == []
        assert len(server.seen) == 2
    finally:
        inner.shutdown()
        inner.server_close()


async def test_the_guarded_backend_checks_where_it_connects(server: Server) -> None:
    backend = GuardedBackend(AddressGuard())
    with pytest.raises(NodeError, match="not a public address"):
        await backend.connect_tcp("localhost", server.server_address[1])
    with pytest.raises(NodeError, match="Unix socket"):
        await backend.connect_unix_socket("/run/docker.sock")
    allowed = GuardedBackend(AddressGuard.from_allow_hosts(["127.0.0.0/8"]))
    stream = await allowed.connect_tcp("localhost", server.server_address[1], timeout=5)
    await stream.aclose()
