"""SPF (RFC 7208) through pyspf, with its DNS answered by Postbote's configured nameservers.

pyspf is synchronous and takes its DNS from a module-level function; it is swapped in under a
lock for the duration of one evaluation, so DNS_NAMESERVERS is honoured here as everywhere. Its
own evaluation passes the RFC 7208 test suite; what it does not report — how many DNS-querying
terms a record spends against the limit of 10 (RFC 7208 §4.6.4) — is counted here."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver
import spf

from ..settings import Settings

_LOCK = threading.Lock()
LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4


class _Lookup:
    """pyspf's DNSLookup(name, qtype, tcpfallback, timeout) over our nameservers."""

    def __init__(self, settings: Settings):
        resolver = dns.resolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in settings.nameservers]
        resolver.lifetime = settings.DNS_TIMEOUT
        self.resolver = resolver

    def __call__(self, name, qtype, tcpfallback=True, timeout=30):
        try:
            answer = self.resolver.resolve(name, qtype, search=False)
        except dns.resolver.NoAnswer:
            try:  # a CNAME at the name: hand it to pyspf, which follows it
                target = self.resolver.resolve(name, "CNAME", search=False)[0].target.to_text(True)
                return [((name, "CNAME"), target)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                return []
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise spf.TempError(f"DNS {exc}") from None
        out = []
        for rdata in answer:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                out.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), rdata.strings))
        return out

    def txt(self, name: str) -> list[str]:
        return [b"".join(s).decode("utf-8", "replace") for (_, kind), s in self(name, "TXT") if kind == "TXT"]


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass, fail, softfail, neutral, none, permerror, temperror
    explanation: str


def evaluate(settings: Settings, ip: str, sender: str, helo: str = "") -> SpfResult:
    """check_host() for a connection from ``ip`` with envelope sender ``sender``."""
    with _LOCK:
        saved = spf.DNSLookup
        spf.DNSLookup = _Lookup(settings)
        try:
            result, explanation = spf.check2(i=ip, s=sender, h=helo or sender.rpartition("@")[2], timeout=settings.DNS_TIMEOUT)
        finally:
            spf.DNSLookup = saved
    return SpfResult(result, explanation)


def spf_records(settings: Settings, domain: str) -> list[str]:
    return [t for t in _Lookup(settings).txt(domain) if t.lower().startswith("v=spf1")]


def count_lookups(settings: Settings, domain: str, *, _seen: frozenset = frozenset()) -> int:
    """Terms that cost a DNS query — include, a, mx, ptr, exists, redirect — followed through
    includes and redirects (RFC 7208 §4.6.4). A loop counts as over the limit."""
    if domain in _seen:
        return LOOKUP_LIMIT + 1
    records = spf_records(settings, domain)
    if len(records) != 1:
        return 0
    total = 0
    for term in records[0].split()[1:]:
        term = term.lstrip("+-~?").lower()
        name, sep, argument = term.partition(":") if ":" in term else term.partition("=")
        if name in ("a", "mx", "ptr", "exists") or term.startswith(("a/", "mx/")):
            total += 1
        elif name in ("include", "redirect") and argument:
            total += 1 + count_lookups(settings, argument, _seen=_seen | {domain})
        if total > LOOKUP_LIMIT:
            break
    return total
