"""The DNS records of the CNAME scheme: what a tenant's IT team publishes, and what the platform
publishes in its own zone for them to point at.

    pb1._domainkey.acme.com   CNAME  pb1.acme-com.dkim.<zone>    DKIM key, signing now
    pb2._domainkey.acme.com   CNAME  pb2.acme-com.dkim.<zone>    DKIM key, next (rotation)
    pbmail.acme.com           CNAME  rp.<zone>                   return path: MX and SPF
    _dmarc.acme.com           TXT    v=DMARC1; p=none; …         recommended when missing

Only CNAMEs are asked of the tenant, so that keys rotate and sending IPs change without them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SELECTORS = ("pb1", "pb2")
RETURN_PATH_LABEL = "pbmail"


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # absolute, no trailing dot
    type: str
    value: str
    purpose: str
    required: bool = True


def domain_label(domain: str) -> str:
    """One DNS label naming a tenant domain inside the platform zone, unique per domain:
    '-' is doubled, '.' becomes '-' (acme.com → acme-com, acme-com.de → acme--com-de)."""
    label = domain.replace("-", "--").replace(".", "-")
    if len(label) > 63:
        label = label[:50] + "-" + hashlib.sha256(domain.encode()).hexdigest()[:12]
    return label


def dkim_target(domain: str, selector: str, zone: str) -> str:
    return f"{selector}.{domain_label(domain)}.dkim.{zone}"


def return_path_host(domain: str) -> str:
    return f"{RETURN_PATH_LABEL}.{domain}"


def tenant_records(domain: str, zone: str, rp_host: str, dmarc_rua: str | None = None) -> list[Record]:
    """What the tenant's IT team publishes (the DMARC record only as a recommendation)."""
    records = [
        Record(f"{s}._domainkey.{domain}", "CNAME", dkim_target(domain, s, zone),
               f"DKIM key ({'signing' if s == SELECTORS[0] else 'next, for key rotation'})")
        for s in SELECTORS
    ]
    records.append(Record(return_path_host(domain), "CNAME", rp_host, "return path (bounces, SPF)"))
    rua = f"; rua=mailto:{dmarc_rua}" if dmarc_rua else ""
    records.append(Record(f"_dmarc.{domain}", "TXT", f"v=DMARC1; p=none{rua}",
                          "DMARC policy (recommended; tighten to quarantine or reject later)", required=False))
    return records


def dkim_txt(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def spf_txt(ips: list[str]) -> str:
    mechanisms = " ".join(f"ip6:{ip}" if ":" in ip else f"ip4:{ip}" for ip in ips)
    return f"v=spf1 {mechanisms} -all" if ips else "v=spf1 -all"
