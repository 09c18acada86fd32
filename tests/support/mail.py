"""Helpers the domain tests share: DNS as a tenant's IT team would set it up, and the DKIM and
SPF checks a receiver makes."""

from __future__ import annotations

import dkim
import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

from postbote.domains import platform_records
from postbote.domains.spf_check import evaluate
from postbote.testing import Zone


def publish_to_zone(zone: Zone, app) -> None:
    """What 'postbote platform publish' puts in DNS, into a test zone."""
    for record in platform_records(app.engine, app.settings):
        value = record.value if record.type != "TXT" else " ".join(
            f'"{record.value[i:i + 255]}"' for i in range(0, len(record.value), 255))
        zone.remove(record.name, record.type)
        zone.add(record.name, record.type, value)


def it_team_publishes(zone: Zone, records: list[dict], *, skip: tuple[str, ...] = ()) -> None:
    for r in records:
        if r["type"] == "CNAME" and not r["name"].startswith(skip):
            zone.add(r["name"], "CNAME", r["value"] + ".")


def knot_update(knot, zone_name: str, *, add=(), delete=()) -> None:
    """Change a zone on the Knot server as the tenant's IT team would (TSIG-signed UPDATE)."""
    keyring = dns.tsigkeyring.from_text({knot.TSIG_NAME: knot.tsig_secret})
    update = dns.update.Update(zone_name, keyring=keyring, keyname=knot.TSIG_NAME, keyalgorithm="hmac-sha256")
    for name, rdtype, value in add:
        update.add(name + ".", 60, rdtype, value)
    for name, rdtype in delete:
        update.delete(name + ".", rdtype)
    response = dns.query.tcp(update, knot.host, port=knot.port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())


def dkim_verifies(raw: bytes, host: str, port: int) -> bool:
    """dkimpy's verdict, its key looked up on our DNS server (CNAMEs followed as a resolver would)."""

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        qname = name.decode().rstrip(".")
        for _ in range(5):
            # Over TCP when the answer is truncated (RFC 1035 §4.2.1), as a resolver would.
            answer, _ = dns.query.udp_with_fallback(dns.message.make_query(qname, "TXT"), host, port=port, timeout=timeout)
            txt = [rr for rrset in answer.answer if rrset.rdtype == 16 for rr in rrset]
            if txt:
                return b"".join(txt[0].strings)
            cnames = [rr for rrset in answer.answer if rrset.rdtype == 5 for rr in rrset]
            if not cnames:
                return b""
            qname = cnames[-1].target.to_text().rstrip(".")
        return b""

    return dkim.verify(raw, dnsfunc=lookup)


def spf_passes(app, ip: str, mail_from: str) -> str:
    return evaluate(app.settings, ip, mail_from).result
