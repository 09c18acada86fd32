"""The DNS records of the CNAME scheme: what a tenant's IT team publishes, and what the platform
publishes in its own zone for them to point at.

    pb1._domainkey.acme.com   CNAME  pb1.<token>.acme-com.dkim.<zone>   DKIM key, signing now
    pb2._domainkey.acme.com   CNAME  pb2.<token>.acme-com.dkim.<zone>   DKIM key, next (rotation)
    pbmail.acme.com           CNAME  rp.<zone>                   return path: MX and SPF
    _dmarc.acme.com           TXT    v=DMARC1; p=none; …         recommended when missing

Only CNAMEs are asked of the tenant, so that keys rotate and sending IPs change without them.
The token is random and belongs to one tenant's claim of the domain: nobody can predict the
targets of someone else's claim, so publishing the records verifies the claim they were given to,
and no other (claims made before tokens have none: ``pb1.acme-com.dkim.<zone>``)."""

from __future__ import annotations

import base64
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
    '-' is doubled, '.' becomes '-' (acme.com → acme-com, acme-com.de → acme--com-de).

    A domain whose label would be longer than 63 characters (RFC 1035 §2.3.4) is named by a hash
    instead: ``h`` and 26 base32 letters of its SHA-256 (130 bits). That form has no '-', and every
    spelled-out label has one (a domain has at least two labels), so no short domain can take a
    long domain's name — a cut-off prefix plus a short hash could be spelled by a crafted domain."""
    label = domain.replace("-", "--").replace(".", "-")
    if len(label) > 63:
        digest = base64.b32encode(hashlib.sha256(domain.encode("ascii")).digest()).decode("ascii").lower()
        label = "h" + digest[:26]
    return label


def dkim_target(domain: str, selector: str, zone: str, token: str | None = None) -> str:
    claim = f"{token}." if token else ""
    return f"{selector}.{claim}{domain_label(domain)}.dkim.{zone}"


def return_path_host(domain: str) -> str:
    return f"{RETURN_PATH_LABEL}.{domain}"


def tenant_records(domain: str, zone: str, rp_host: str, dmarc_rua: str | None = None,
                   token: str | None = None) -> list[Record]:
    """What the tenant's IT team publishes (the DMARC record only as a recommendation)."""
    records = [
        Record(f"{s}._domainkey.{domain}", "CNAME", dkim_target(domain, s, zone, token),
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
