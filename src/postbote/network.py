"""Which addresses Postbote may connect to on a user's say-so. An MX record or a webhook URL
that points into the platform's own networks (loopback, private, link-local, reserved) would let
anyone who controls a domain's DNS make Postbote talk to internal hosts — and show their answers
in transcripts and attempt logs. Delivery (ALLOW_PRIVATE_MX) and webhooks
(ALLOW_PRIVATE_WEBHOOKS) both ask here.

``ipaddress.is_global`` alone is not enough on every Python in use: before the fix for
CVE-2024-4032 it calls IPv6 forms that carry an IPv4 address inside them (6to4, NAT64,
IPv4-compatible and -translated) and the old site-local range global. Those are unpacked or
refused here whatever the Python."""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_REFUSED_V6 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b:1::/48",  # RFC 8215, local-use NAT64
    "::/96",  # IPv4-compatible (deprecated, RFC 4291)
    "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
    "fec0::/10",  # site-local (deprecated, RFC 3879)
    "2001::/32",  # Teredo: the inner address is the server's, not the target's
    "100::/64",  # discard-only (RFC 6666)
))
_WHY = "the address is not public (loopback, private, link-local or reserved)"


def not_public(ip: str) -> str | None:
    """Why ``ip`` is no public unicast address, or None when it is one."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return _WHY
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif address.sixtofour:
            address = address.sixtofour
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif any(address in net for net in _REFUSED_V6):
            return _WHY
    if not address.is_global or address.is_multicast:
        return _WHY
    return None
