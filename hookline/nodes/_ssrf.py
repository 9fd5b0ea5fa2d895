"""The ``http`` node's address guard: which hosts an outbound request may reach.

A webhook's data must not steer requests to internal services (server-side request
forgery). A target is refused when any address its name resolves to is not public:
private, loopback, link-local, unspecified, multicast, reserved, shared (CGNAT),
documentation ranges, and IPv6 forms that embed such an IPv4 address (mapped, 6to4,
Teredo, NAT64). ``http_node.allow_hosts`` lets some through: a host name (matched as
written in the URL), an IP address or a CIDR network (matched against the resolved
addresses).

The check belongs where the connection is made, not before the request: checking a name
and then letting the client resolve it again leaves a window for DNS rebinding. So
:func:`~hookline.nodes._transport.new_http_client` builds an httpx client whose network
backend resolves each host itself, refuses it if any address is not allowed, and
connects to the checked address.
The ``http`` node adds the cheap checks it can do without DNS (scheme, literal IPs) on
every redirect hop, and a full resolving check when it is handed a client that was not
built here.

A refusal raises :class:`~hookline.errors.AddressRefused`, whose message names neither
the host nor its addresses (a sync webhook's sender reads the execution's error); the
``http`` node writes :func:`describe_refusal`, with both, to the job log.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

import attrs

from ..errors import AddressRefused

__all__ = ["AddressGuard", "describe_refusal", "is_public_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address, including any IPv4 address
    embedded in an IPv6 one (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64)."""
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(is_public_address(inner) for inner in embedded)
    return True


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".").strip("[]")


def _parse_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(_host_key(host).split("%", 1)[0])
    except ValueError:
        return None


@attrs.frozen
class AddressGuard:
    """The allow list, parsed: host ``names`` and IP ``networks``.

    Build it with :meth:`from_allow_hosts`. A host listed by name is reached without a
    check; any other host must resolve only to public addresses or to addresses inside
    a listed network.
    """

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_allow_hosts(cls, allow_hosts: Iterable[str]) -> AddressGuard:
        """Parse ``allow_hosts`` entries: ``api.internal``, ``10.0.0.5``, ``10.0.0.0/8``,
        ``::1``. Raises :class:`ValueError` for an entry that is none of these."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allow_hosts:
            key = _host_key(entry)
            try:
                networks.append(ipaddress.ip_network(key, strict=False))
                continue
            except ValueError:
                pass
            if not _HOSTNAME.fullmatch(key):
                raise ValueError(f"not a host name, IP address or CIDR network: {entry!r}")
            names.add(key)
        return cls(names=frozenset(names), networks=tuple(networks))

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is listed by name (or is a listed IP written literally)."""
        key = _host_key(host)
        if key in self.names:
            return True
        address = _parse_address(key)
        return address is not None and self.allows_address(address)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether a connection to ``address`` is allowed."""
        if is_public_address(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def check_literal(self, host: str) -> bool:
        """Check ``host`` without DNS: True if it is decided (listed, or an allowed IP
        literal); raises :class:`AddressRefused` for a refused IP literal; False for a name
        that still needs resolving."""
        if self.allows_name(host):
            return True
        if _parse_address(host) is not None:
            raise AddressRefused(host, host)
        return False

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses, all checked.

        Raises :class:`AddressRefused` if any address is refused (a name resolving to both a
        public and a private address is refused), :class:`OSError` if it does not resolve.
        """
        import anyio  # only when a name is resolved: importing it costs more than this module

        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in found:
            text = str(sockaddr[0])
            address = _parse_address(text)
            if address is None or not self.allows_address(address):
                raise AddressRefused(host, text)
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise OSError(f"{host} has no address")
        return addresses


def describe_refusal(refused: AddressRefused) -> str:
    """The refusal with its host and the address the host resolved to: for the job log,
    which the operator reads, not for the error, which a sync webhook's sender reads."""
    host, address = refused.host, refused.address
    via = "" if _host_key(host) == _host_key(address) else f" (resolves to {address})"
    return (
        f"refusing to connect to {host}{via}: not a public address; "
        "list it under http_node.allow_hosts to allow it"
    )
