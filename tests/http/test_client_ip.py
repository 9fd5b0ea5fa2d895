"""The client address behind trusted proxies, the public URL, and ``ip_allow``."""

from __future__ import annotations

import ipaddress

import pytest

from hookline.errors import Forbidden
from hookline.http._client_ip import IPNetwork, check_ip_allowed, ip_allowed, resolve_origin


def nets(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


PROXIES = nets("10.0.0.0/8", "fd00::/8")


def client(peer: str, headers: dict[str, str], proxies: tuple[IPNetwork, ...] = PROXIES) -> str:
    return resolve_origin(peer, "http", "hookline:8000", headers, proxies).client_ip


# -- the client behind proxies ---------------------------------------------------------


def test_without_trusted_proxies_the_socket_address_is_the_client() -> None:
    spoofed = {"x-forwarded-for": "140.82.112.1", "forwarded": "for=140.82.112.1"}
    assert client("203.0.113.9", spoofed, ()) == "203.0.113.9"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = {"x-forwarded-for": "140.82.112.1", "x-forwarded-proto": "https"}
    origin = resolve_origin("203.0.113.9", "http", "h:8000", spoofed, PROXIES)
    assert origin.client_ip == "203.0.113.9"
    assert origin.scheme == "http"


def test_chain_is_walked_from_the_right_through_trusted_hops() -> None:
    # The client wrote a fake first entry; only the entries proxies appended count.
    headers = {"x-forwarded-for": "140.82.112.1, 198.51.100.7, 10.1.1.1, 10.2.2.2"}
    assert client("10.3.3.3", headers) == "198.51.100.7"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert client("10.0.0.1", {"x-forwarded-for": "10.9.9.9, 10.8.8.8"}) == "10.9.9.9"


def test_garbage_entry_stops_the_walk_at_the_proxy_that_wrote_it() -> None:
    assert client("10.0.0.1", {"x-forwarded-for": "198.51.100.7, nonsense"}) == "10.0.0.1"
    assert client("10.0.0.1", {"x-forwarded-for": ""}) == "10.0.0.1"


def test_ipv6_and_ports_in_x_forwarded_for() -> None:
    assert client("fd00::1", {"x-forwarded-for": "2001:db8::5"}) == "2001:db8::5"
    assert client("10.0.0.1", {"x-forwarded-for": "198.51.100.7:5123"}) == "198.51.100.7"
    assert client("10.0.0.1", {"x-forwarded-for": "[2001:db8::5]:443"}) == "2001:db8::5"


def test_ipv4_mapped_peer_is_the_ipv4_address() -> None:
    assert client("::ffff:10.0.0.1", {"x-forwarded-for": "198.51.100.7"}) == "198.51.100.7"
    assert client("::ffff:203.0.113.9", {}, ()) == "203.0.113.9"


def test_rfc7239_forwarded_is_preferred_and_walked_from_the_right() -> None:
    headers = {
        "forwarded": 'for=140.82.112.1, for="[2001:db8:cafe::17]:4711";proto=https;'
        "host=hooks.example.com, for=10.1.1.1;proto=http;host=internal",
        "x-forwarded-for": "192.0.2.1",
    }
    origin = resolve_origin("10.0.0.1", "http", "hookline:8000", headers, PROXIES)
    assert origin.client_ip == "2001:db8:cafe::17"
    assert origin.scheme == "https"
    assert origin.host == "hooks.example.com"
    assert origin.url("/api/webhooks/t?x=1") == "https://hooks.example.com/api/webhooks/t?x=1"


def test_rfc7239_obfuscated_or_unknown_for_stops_the_walk() -> None:
    assert client("10.0.0.1", {"forwarded": "for=unknown"}) == "10.0.0.1"
    assert client("10.0.0.1", {"forwarded": 'for="_hidden", for=10.4.4.4'}) == "10.4.4.4"


def test_rfc7239_quoted_values_may_hold_separators() -> None:
    headers = {"forwarded": 'for=198.51.100.7;host="a.example;x,y"'}
    origin = resolve_origin("10.0.0.1", "http", "h", headers, PROXIES)
    assert origin.client_ip == "198.51.100.7"
    assert origin.host == "a.example;x,y"


def test_x_forwarded_proto_and_host_rebuild_the_public_url() -> None:
    headers = {
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-proto": "HTTPS",
        "x-forwarded-host": "hooks.example.com",
    }
    origin = resolve_origin("10.0.0.1", "http", "hookline:8000", headers, PROXIES)
    assert origin.url("/p") == "https://hooks.example.com/p"
    direct = resolve_origin("203.0.113.9", "http", "hookline:8000", headers, PROXIES)
    assert direct.url("/p") == "http://hookline:8000/p"


# -- ip_allow ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("140.82.112.5", True),
        ("140.82.127.255", True),
        ("140.82.128.0", False),
        ("::1", True),
        ("::2", False),
        ("2001:db8:1::9", True),
        ("2001:db9::1", False),
        ("::ffff:140.82.112.5", True),
        ("192.0.2.1", True),
        ("192.0.2.2", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_ip_allow_v4_v6_and_cidr(ip: str, allowed: bool) -> None:
    allow = nets("140.82.112.0/20", "::1/128", "2001:db8::/32", "192.0.2.1/32")
    assert ip_allowed(ip, allow) is allowed
    if allowed:
        check_ip_allowed(ip, allow)
    else:
        with pytest.raises(Forbidden) as refused:
            check_ip_allowed(ip, allow)
        assert refused.value.status == 403


def test_empty_ip_allow_admits_everyone() -> None:
    assert ip_allowed("203.0.113.9", ())


def test_allowlist_applies_to_the_resolved_client_not_the_proxy() -> None:
    allow = nets("140.82.112.0/20")
    behind = client("10.0.0.1", {"x-forwarded-for": "140.82.112.9"})
    assert ip_allowed(behind, allow)
    spoofed = client("203.0.113.9", {"x-forwarded-for": "140.82.112.9"})
    assert not ip_allowed(spoofed, allow)


# -- X-Forwarded-Port (Twilio signs the URL with the port it called) -----------------


@pytest.mark.parametrize(
    ("headers", "host"),
    [
        ({"x-forwarded-proto": "https", "x-forwarded-port": "8443"}, "hooks.example.com:8443"),
        ({"x-forwarded-proto": "https", "x-forwarded-port": "443"}, "hooks.example.com"),
        (
            {"x-forwarded-host": "h.example.com:9000", "x-forwarded-port": "8443"},
            "h.example.com:9000",
        ),
        ({"x-forwarded-port": "not a port"}, "hooks.example.com"),
    ],
)
def test_forwarded_port_from_a_trusted_proxy_joins_the_public_url(
    headers: dict[str, str], host: str
) -> None:
    origin = resolve_origin("10.0.0.1", "http", "hooks.example.com", headers, PROXIES)
    assert origin.host == host


def test_forwarded_port_from_an_untrusted_peer_is_ignored() -> None:
    headers = {"x-forwarded-port": "8443"}
    origin = resolve_origin("203.0.113.9", "http", "hooks.example.com", headers, PROXIES)
    assert origin.host == "hooks.example.com"
