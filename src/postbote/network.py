"""Which addresses Postbote may connect to on a user's say-so. An MX record or a webhook URL
that points into the platform's own networks (loopback, private, link-local, reserved) would let
anyone who controls a domain's DNS make Postbote talk to internal hosts — and show their answers
in transcripts and attempt logs. Delivery (ALLOW_PRIVATE_MX) and webhooks
(ALLOW_PRIVATE_WEBHOOKS) both ask here."""

from __future__ import annotations

import ipaddress


def not_public(ip: str) -> str | None:
    """Why ``ip`` is no public unicast address, or None when it is one."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        return "the address is not public (loopback, private, link-local or reserved)"
    return None
