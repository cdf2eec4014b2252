"""Client address behind proxies: X-Forwarded-For is believed only from trusted peers."""

from __future__ import annotations

import pytest

from stemedb.guards import address_key, client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "192.168.1.1", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        # No proxies configured: the header is never believed.
        ("203.0.113.7", "1.2.3.4", (), "203.0.113.7"),
        # Spoofed header from an untrusted peer: ignored.
        ("203.0.113.7", "10.0.0.1, 1.2.3.4", PROXIES, "203.0.113.7"),
        # One trusted proxy in front.
        ("10.0.0.5", "198.51.100.9", PROXIES, "198.51.100.9"),
        # The client put a forged entry first; the proxy appended the real address.
        ("10.0.0.5", "1.2.3.4, 198.51.100.9", PROXIES, "198.51.100.9"),
        # Several proxies: skip every trusted hop from the right.
        ("10.0.0.5", "6.6.6.6, 198.51.100.9, 192.168.1.1, 10.1.2.3", PROXIES, "198.51.100.9"),
        # Several header lines arrive joined with commas; empty entries are skipped.
        ("10.0.0.5", "198.51.100.9,, 10.9.9.9,", PROXIES, "198.51.100.9"),
        # A trusted peer without the header is the client itself.
        ("10.0.0.5", None, PROXIES, "10.0.0.5"),
        ("10.0.0.5", "", PROXIES, "10.0.0.5"),
        # Every hop is a trusted proxy: the left-most one started the request.
        ("10.0.0.5", "10.0.0.9, 10.0.0.8", PROXIES, "10.0.0.9"),
        # A trusted hop wrote something that is no address: stop there, believe nothing
        # to its left, and count the request on the hop that wrote it.
        ("10.0.0.5", "1.2.3.4, unknown", PROXIES, "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4, _hidden, 10.0.0.7", PROXIES, "10.0.0.7"),
        # IPv6 clients and proxies, with brackets and ports as some proxies write them.
        ("2001:db8:ffff::1", "2001:DB8:1::0:7", PROXIES, "2001:db8:1::7"),
        ("2001:db8:ffff::1", "[2001:db8:1::7]:443", PROXIES, "2001:db8:1::7"),
        ("10.0.0.5", "198.51.100.9:51234", PROXIES, "198.51.100.9"),
        ("10.0.0.5", "2001:db8:1::7, 2001:db8:ffff::2", PROXIES, "2001:db8:1::7"),
        # IPv4-mapped IPv6 peers (dual-stack sockets) count as their IPv4 address.
        ("::ffff:10.0.0.5", "198.51.100.9", PROXIES, "198.51.100.9"),
        ("::ffff:203.0.113.7", "1.2.3.4", PROXIES, "203.0.113.7"),
        # An untrusted IPv6 peer with a forged header.
        ("2001:db8:2::1", "10.0.0.1", PROXIES, "2001:db8:2::1"),
        # Peers that are not addresses are returned as they are.
        ("testclient", "1.2.3.4", PROXIES, "testclient"),
        (None, "1.2.3.4", PROXIES, "unknown"),
        ("", None, (), "unknown"),
    ],
)
def test_client_address(
    peer: str | None,
    xff: str | None,
    trusted: tuple,
    expected: str,  # type: ignore[type-arg]
) -> None:
    assert client_address(peer, xff, trusted) == expected


def test_parse_networks() -> None:
    nets = parse_networks([" 10.0.0.0/8 ", "::1", "192.168.1.7/24"])
    assert [str(n) for n in nets] == ["10.0.0.0/8", "::1/128", "192.168.1.0/24"]
    with pytest.raises(ValueError, match="not-a-cidr"):
        parse_networks(["10.0.0.0/8", "not-a-cidr"])


def test_address_key_groups_ipv6_by_64() -> None:
    assert address_key("198.51.100.9") == "198.51.100.9"
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2::1", ipv6_prefix=128) == "2001:db8:1:2::1/128"
    assert address_key("unknown") == "unknown"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    with pytest.raises(ValueError):
        address_key("::1", ipv6_prefix=129)
