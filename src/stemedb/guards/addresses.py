"""Which client address a request is counted on.

``X-Forwarded-For`` is believed only when the TCP peer is a trusted proxy. Each proxy
appends the address it received the request from, so the list is read from the right:
trusted proxies are skipped, and the first address that is not a trusted proxy is the
client. Everything to the left of it was written by the client itself and may be forged.

Entries that are not IP addresses are never returned. Empty entries (``a,,b``) are
skipped, but any other invalid entry ends the walk: it was appended by a trusted hop
that did not know the address (``unknown``, an obfuscated ``_node``), and whatever stands
to its left came from an untrusted party, so the nearest trusted hop is returned instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["IPNetwork", "address_key", "client_address", "parse_networks"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``["10.0.0.0/8", "::1"]`` -> networks; a bare address is a /32 or /128.

    Raises ``ValueError`` naming the bad entry.
    """
    out: list[IPNetwork] = []
    for cidr in cidrs:
        text = cidr.strip()
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {cidr!r}") from None
    return tuple(out)


def _parse(text: str) -> IPAddress | None:
    """An address as found in a peer or a forwarded-for entry, or None."""
    s = text.strip()
    if not s:
        return None
    if s.startswith("["):  # "[2001:db8::1]" or "[2001:db8::1]:443"
        end = s.find("]")
        if end < 0:
            return None
        s = s[1:end]
    elif s.count(":") == 1:  # "192.0.2.1:5678"
        s = s.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(ip in net for net in networks)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted_proxies: Sequence[IPNetwork],
) -> str:
    """The address to count a request on (normalised text form).

    ``peer`` is the TCP peer's host; ``forwarded_for`` the ``X-Forwarded-For`` value (several
    header lines joined with commas). A peer that is not an IP address (a Unix socket, a
    test client) is returned as it is, or ``"unknown"`` when missing.
    """
    if not peer:
        return UNKNOWN
    peer_ip = _parse(peer)
    if peer_ip is None:
        return peer
    if not forwarded_for or not trusted_proxies or not _trusted(peer_ip, trusted_proxies):
        return str(peer_ip)
    nearest = peer_ip  # the closest hop known to be trusted
    for entry in reversed(forwarded_for.split(",")):
        if not entry.strip():
            continue
        ip = _parse(entry)
        if ip is None:
            return str(nearest)
        if not _trusted(ip, trusted_proxies):
            return str(ip)
        nearest = ip
    # Every hop is a trusted proxy: the request started inside the proxy network, at the
    # left-most one.
    return str(nearest)


def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """The rate-limit key for a client address: IPv6 addresses are grouped by their
    ``/ipv6_prefix`` network (one site usually holds a whole /64, so per-address limits
    would otherwise be trivial to escape); IPv4 and non-IP keys are used as they are."""
    if not 0 <= ipv6_prefix <= 128:
        raise ValueError("ipv6_prefix must be in [0, 128]")
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    net = ipaddress.IPv6Network(
        (int(ip) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)
    )
    return str(net)
