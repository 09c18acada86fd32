"""The one DNS resolver. Every lookup Postbote makes goes through here, so DNS_NAMESERVERS
(a test server on loopback, say) is honoured everywhere, answers are cached for their TTL, and
dnspython's exceptions become one of three answers: found, does not exist, or try later."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from .limits import ProcessLimit
from .settings import Settings

# One bound for the whole process: a check of 10,000 addresses must not open 10,000 sockets.
_IN_FLIGHT: dict[int, ProcessLimit] = {}


def _in_flight(size: int) -> ProcessLimit:
    return _IN_FLIGHT.setdefault(size, ProcessLimit(size))


class DnsTemporaryError(Exception):
    """Timeout, SERVFAIL, no nameserver answered: the answer may be different later."""


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str  # no trailing dot, lower case
    implicit: bool = False  # RFC 5321 §5.1: no MX record, the domain's own address is used


@dataclass(frozen=True, slots=True)
class MxLookup:
    """The mail exchangers of a domain, best first. Exactly one of the flags or hosts is set."""

    domain: str
    hosts: tuple[MxHost, ...] = ()
    null_mx: bool = False  # RFC 7505: "this domain accepts no mail"
    nxdomain: bool = False  # the domain does not exist
    no_address: bool = False  # no MX and no A/AAAA either


@dataclass(slots=True)
class _Cache:
    entries: dict[tuple[str, str], tuple[float, object]] = field(default_factory=dict)

    def get(self, key: tuple[str, str]) -> object | None:
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: tuple[str, str], value: object, ttl: float) -> None:
        if len(self.entries) > 100_000:
            self.entries.clear()
        self.entries[key] = (time.monotonic() + ttl, value)


_NEGATIVE_TTL = 60.0
_MAX_TTL = 3600.0


class Resolver:
    def __init__(self, settings: Settings):
        if settings.nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ip, port) for ip, port in settings.nameservers
            ]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = settings.DNS_TIMEOUT
        self._resolver.timeout = min(2.0, settings.DNS_TIMEOUT)
        self._cache = _Cache()
        self.in_flight = _in_flight(settings.DNS_MAX_CONCURRENCY)

    async def lookup(self, name: str, rdtype: str, *, fresh: bool = False) -> tuple[list, bool]:
        """(records, exists): NXDOMAIN → ([], False), NODATA → ([], True). ``fresh`` skips the
        cache, for checks that must see a record removed a minute ago."""
        return await self._query(name, rdtype, fresh=fresh)

    async def _query(self, name: str, rdtype: str, *, fresh: bool = False) -> tuple[list, bool]:
        key = (name, rdtype)
        cached = None if fresh else self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        try:
            async with self.in_flight:
                answer = await self._resolver.resolve(name, rdtype, search=False)
            result = (list(answer), True)
            ttl = min(float(answer.rrset.ttl), _MAX_TTL)
        except dns.resolver.NXDOMAIN:
            result, ttl = ([], False), _NEGATIVE_TTL
        except dns.resolver.NoAnswer:
            result, ttl = ([], True), _NEGATIVE_TTL
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed: {exc.__class__.__name__}") from None
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed: {exc}") from None
        self._cache.put(key, result, ttl)
        return result

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of a host; [] when it has none. What resolved is used: a
        failed AAAA lookup beside a working A (or the reverse) is no reason to wait, so only
        when no family gave an address and one failed is that a temporary error."""
        found: list[str] = []
        failure: DnsTemporaryError | None = None
        for rdtype in ("A", "AAAA"):
            try:
                records, _ = await self._query(host, rdtype)
            except DnsTemporaryError as exc:
                failure = failure or exc
                continue
            found.extend(r.address for r in records)
        if failure is not None and not found:
            raise failure
        return found

    async def mx(self, domain: str, *, fresh: bool = False) -> MxLookup:
        """RFC 5321 §5.1 and RFC 7505: MX by preference, implicit MX, null MX. ``fresh`` asks
        again past the cache (an NXDOMAIN cached a moment ago may have been a fault)."""
        records, exists = await self._query(domain, "MX", fresh=fresh)
        if not exists:
            return MxLookup(domain, nxdomain=True)
        if records:
            if len(records) == 1 and records[0].exchange.to_text() == ".":
                return MxLookup(domain, null_mx=True)
            hosts = sorted(
                {(r.preference, r.exchange.to_text().rstrip(".").lower()) for r in records
                 if r.exchange.to_text() != "."}
            )
            return MxLookup(domain, hosts=tuple(MxHost(p, h) for p, h in hosts))
        if await self.addresses(domain):
            return MxLookup(domain, hosts=(MxHost(0, domain, implicit=True),))
        return MxLookup(domain, no_address=True)

    async def txt(self, name: str, *, fresh: bool = False) -> list[str]:
        records, _ = await self._query(name, "TXT", fresh=fresh)
        return [b"".join(r.strings).decode("utf-8", "replace") for r in records]

    async def cname(self, name: str, *, fresh: bool = False) -> str | None:
        """The CNAME target of ``name`` (no trailing dot, lower case), or None."""
        records, _ = await self._query(name, "CNAME", fresh=fresh)
        return records[0].target.to_text().rstrip(".").lower() if records else None
