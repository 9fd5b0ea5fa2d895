"""Who called, and which URL they called, as far as trusted proxies say; and ``ip_allow``.

Without ``server.trusted_proxies`` the socket peer is the client and forwarded headers
are ignored: anyone can write ``X-Forwarded-For``. With them, the chain of addresses is
walked from the right (the hop nearest to hookline) while each hop is a trusted proxy;
the first address that is not is the client. RFC 7239 ``Forwarded`` is read when
present, ``X-Forwarded-For`` otherwise. An entry that is not an address (``unknown``,
an obfuscated ``_name``, garbage) stops the walk: the client is then the proxy that
wrote it, which is all hookline can vouch for.

The public URL follows the same hop: its ``proto``/``host`` from the ``Forwarded``
element of the client, or the nearest ``X-Forwarded-Proto``/``X-Forwarded-Host``
values, written by a trusted proxy, with ``X-Forwarded-Port`` when the host carries
no port. Twilio signs that URL.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from ..errors import Forbidden

__all__ = ["IPNetwork", "Origin", "check_ip_allowed", "ip_allowed", "parse_ip", "resolve_origin"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A quoted-string or a token, per RFC 7230, as used in Forwarded parameters.
_PAIR = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')
_PORT_V4 = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d+")
_BRACKETED = re.compile(r"\[([^\]]+)\](?::\d+)?")
_HAS_PORT = re.compile(r":\d*$")
_DEFAULT_PORTS = {"https": 443, "http": 80}


@attrs.frozen
class Origin:
    """The client address and the scheme and host it called (``host`` may carry a port)."""

    client_ip: str
    scheme: str
    host: str

    def url(self, target: str) -> str:
        """The public URL of ``target`` (the raw path and query, ``/a/b?x=1``)."""
        return f"{self.scheme}://{self.host}{target}"


def parse_ip(text: str) -> IPAddress | None:
    """An address as written in forwarding headers: bare, ``[v6]:port``, ``v4:port``;
    IPv4-mapped IPv6 becomes IPv4. None for anything else."""
    text = text.strip().strip('"')
    if (bracketed := _BRACKETED.fullmatch(text)) is not None:
        text = bracketed.group(1)
    elif (with_port := _PORT_V4.fullmatch(text)) is not None:
        text = with_port.group(1)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress | None, proxies: Sequence[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in proxies)


def _forwarded_elements(value: str) -> list[dict[str, str]]:
    """RFC 7239 elements, each as its lower-cased parameters (quotes removed)."""
    elements = []
    for element in _split_outside_quotes(value, ","):
        params = {}
        for pair in _split_outside_quotes(element, ";"):
            if (match := _PAIR.fullmatch(pair)) is not None:
                raw = match.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params[match.group(1).lower()] = raw
        elements.append(params)
    return elements


def _split_outside_quotes(text: str, separator: str) -> Iterable[str]:
    part: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield "".join(part)
            part = []
            continue
        part.append(char)
    yield "".join(part)


def _last(value: str | None) -> str | None:
    if value is None:
        return None
    found = value.rsplit(",", 1)[-1].strip()
    return found or None


def resolve_origin(
    peer: str,
    scheme: str,
    host: str,
    headers: Mapping[str, str],
    trusted_proxies: Sequence[IPNetwork],
) -> Origin:
    """The client and the URL it called, given the socket ``peer`` and the ``scheme`` and
    ``host`` the request reached hookline with (``headers`` with lower-case names).

    Forwarded headers count only when ``peer`` is in ``trusted_proxies``.
    """
    peer_address = parse_ip(peer)
    client = str(peer_address) if peer_address is not None else peer
    if not _trusted(peer_address, trusted_proxies):
        return Origin(client_ip=client, scheme=scheme, host=host)
    if headers.get("forwarded"):
        elements = _forwarded_elements(headers["forwarded"])
        chosen: dict[str, str] = {}
        for element in reversed(elements):
            chosen = element
            address = parse_ip(element.get("for", ""))
            if address is None:
                break
            client = str(address)
            if not _trusted(address, trusted_proxies):
                break
        return Origin(
            client_ip=client,
            scheme=chosen.get("proto", "").lower() or scheme,
            host=chosen.get("host") or host,
        )
    for entry in reversed(headers.get("x-forwarded-for", "").split(",")):
        address = parse_ip(entry)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, trusted_proxies):
            break
    proto = _last(headers.get("x-forwarded-proto"))
    public_scheme = proto.lower() if proto else scheme
    public_host = _last(headers.get("x-forwarded-host")) or host
    return Origin(
        client_ip=client,
        scheme=public_scheme,
        host=with_port(public_host, public_scheme, _last(headers.get("x-forwarded-port"))),
    )


def with_port(host: str, scheme: str, port: str | None) -> str:
    """``host`` with the ``X-Forwarded-Port`` a trusted proxy gave, when the host names
    none and the port is not the scheme's default (Twilio signs the URL with it)."""
    if port is None or not port.isdigit() or _HAS_PORT.search(host):
        return host
    if _DEFAULT_PORTS.get(scheme) == int(port):
        return host
    return f"{host}:{int(port)}"


def ip_allowed(ip: str, allow: Sequence[IPNetwork]) -> bool:
    """Whether ``ip`` is inside one of ``allow``; an empty ``allow`` admits everyone and
    an address that does not parse is never admitted otherwise."""
    if not allow:
        return True
    address = parse_ip(ip)
    return address is not None and any(address in network for network in allow)


def check_ip_allowed(ip: str, allow: Sequence[IPNetwork]) -> None:
    """Raise :class:`~hookline.errors.Forbidden` (403) unless :func:`ip_allowed`."""
    if not ip_allowed(ip, allow):
        raise Forbidden("the client address is not allowed to call this webhook")
