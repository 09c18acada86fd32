"""The private-address guard of delivery and webhooks: every form of an internal address is
refused, IPv6 forms that carry an IPv4 address inside them included, whatever the Python."""

import pytest

from postbote.network import not_public

INTERNAL = ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1",
            "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a00:1::", "64:ff9b::7f00:1",
            "64:ff9b::a00:1", "64:ff9b:1::1", "::7f00:1", "::ffff:0:7f00:1", "fec0::1", "2001:0:4136:e378::1",
            "ff02::1", "100::1"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2a00:1450:4001:82b::200e", "2002:808:808::1",
          "64:ff9b::808:808", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("ip", INTERNAL)
def test_internal_addresses_are_refused(ip):
    assert not_public(ip) is not None


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip):
    assert not_public(ip) is None


def test_what_is_no_address_is_refused():
    assert not_public("localhost") == "not an IP address"
