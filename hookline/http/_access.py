"""Who may use the operator's routes: admin keys as Bearer tokens, or loopback only.

Without keys, "loopback" means the client as resolved through ``server.trusted_proxies``,
and a request that carries forwarding headers (``Forwarded``, ``X-Forwarded-For``,
``X-Real-IP``) is never a loopback client: a reverse proxy on the same host connects
from loopback on behalf of anyone.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence

import attrs

__all__ = ["FORWARDING_HEADERS", "AdminRefusal", "admin_refusal", "is_forwarded", "is_loopback"]

# Headers a proxy adds to say whom it forwards for (names lower-case).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a client IP as text) is a loopback address, IPv4-mapped
    IPv6 (``::ffff:127.0.0.1``) included. Anything that is not an IP is not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_forwarded(headers: Mapping[str, str]) -> bool:
    """Whether a request says it was forwarded by a proxy (``headers``: lower-case
    names), whoever the proxy is: trusted or not, it is not the operator's own client."""
    return any(name in headers for name in FORWARDING_HEADERS)


@attrs.frozen
class AdminRefusal:
    """Why an admin request is refused: its status, title and detail."""

    status: int
    title: str
    detail: str


def admin_refusal(
    client_ip: str, authorization: str, keys: Sequence[bytes], *, forwarded: bool = False
) -> AdminRefusal | None:
    """Decide whether an admin request may proceed (None) or is refused.

    With ``keys``: no Bearer token is 401, a token matching none of them 403 (compared
    in constant time). Without keys: loopback clients only, others 403; ``client_ip``
    is the client resolved through the trusted proxies, and a ``forwarded`` request
    (see :func:`is_forwarded`) is never a loopback client.
    """
    if not keys:
        if forwarded:
            return AdminRefusal(
                403,
                "Forbidden",
                "the admin API answers loopback clients only (no keys set), "
                "and a request forwarded by a proxy is not one",
            )
        if is_loopback(client_ip):
            return None
        return AdminRefusal(
            403, "Forbidden", "the admin API answers loopback clients only (no keys set)"
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return AdminRefusal(401, "Unauthorized", "send an admin key as a Bearer token")
    # Every key is compared, so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(token.encode(), key) for key in keys]
    if not any(matches):
        return AdminRefusal(403, "Forbidden", "the admin key is not valid")
    return None
