"""What an IT team needs to let the platform's mail — and its partners' mail in the company's
name — through its own filters: who sends, from which addresses (hosts resolved now, with the
time), and which authenticated identities (DKIM ``d=``, SPF) that mail carries.

Addresses change and security baselines advise against IP allow lists (CISA's for Microsoft
365, MS.EXO.12.1v1), so the kit always carries both: the addresses, and the identities a rule can
trust only when the receiving system has verified them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Protocol

from sqlalchemy import Engine

from ..db.schema import iso_utc, utcnow
from ..dns import DnsTemporaryError, Resolver
from ..domains import list_domains, list_partners
from ..settings import Settings
from ..vocab import DomainState


class PartnerLike(Protocol):
    """What the kit reads of a partner that sends in tenants' names (the e-signature provider)."""

    name: str
    ips: list[str]
    spf_include: str
    dkim_selector: str
    hosts: list[str]


@dataclass(frozen=True, slots=True)
class ResolvedHost:
    name: str
    addresses: tuple[str, ...]
    resolved_at: datetime
    error: str | None = None  # why it did not resolve (the name is still worth allowlisting)

    def to_dict(self) -> dict:
        return {"name": self.name, "addresses": list(self.addresses), "resolved_at": iso_utc(self.resolved_at),
                "error": self.error}


@dataclass(frozen=True, slots=True)
class Sender:
    """One party whose mail arrives in the company's name."""

    name: str
    kind: str  # "platform" or "partner"
    ips: tuple[str, ...]
    hosts: tuple[ResolvedHost, ...]
    dkim_domains: tuple[str, ...]  # the d= its signatures carry
    spf_include: str | None  # the domain whose SPF record lists its addresses

    @property
    def all_ips(self) -> tuple[str, ...]:
        """Configured addresses first, then those its hosts resolved to now, without repeats."""
        seen: dict[str, None] = dict.fromkeys(self.ips)
        for host in self.hosts:
            seen.update(dict.fromkeys(host.addresses))
        return tuple(seen)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "ips": list(self.ips), "all_ips": list(self.all_ips),
                "hosts": [h.to_dict() for h in self.hosts], "dkim_domains": list(self.dkim_domains),
                "spf_include": self.spf_include}


@dataclass(frozen=True, slots=True)
class Kit:
    generated_at: datetime
    tenant: str | None
    senders: tuple[Sender, ...]
    tenant_domains: tuple[str, ...] = field(default=())  # verified sender domains of the tenant

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ip for s in self.senders for ip in s.all_ips))

    @property
    def dkim_domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for s in self.senders for d in s.dkim_domains))

    def to_dict(self) -> dict:
        return {"generated_at": iso_utc(self.generated_at), "tenant": self.tenant,
                "tenant_domains": list(self.tenant_domains), "ips": list(self.ips),
                "dkim_domains": list(self.dkim_domains), "senders": [s.to_dict() for s in self.senders]}


async def build_kit(engine: Engine, resolver: Resolver, settings: Settings, *, tenant_id: int | None = None,
                    tenant_name: str | None = None, partners: Iterable[PartnerLike] | None = None) -> Kit:
    """The kit for one tenant (its verified domains named), or the platform's alone; each
    partner's hosts are resolved now."""
    tenant_domains = _verified_domains(engine, tenant_id)
    platform = Sender(
        name=settings.PLATFORM_NAME, kind="platform", ips=tuple(settings.SOURCE_IPS),
        hosts=(await _resolve(resolver, settings.HELO_NAME),) if settings.HELO_NAME else (),
        dkim_domains=(*tenant_domains, settings.PLATFORM_DOMAIN),
        spf_include=settings.return_path_host,
    )
    chosen = list(list_partners(engine, settings) if partners is None else partners)
    senders = [platform]
    for partner in chosen:
        hosts = tuple([await _resolve(resolver, host) for host in partner.hosts])
        senders.append(Sender(name=partner.name, kind="partner", ips=tuple(partner.ips), hosts=hosts,
                              dkim_domains=tenant_domains if partner.dkim_selector else (),
                              spf_include=partner.spf_include or None))
    return Kit(utcnow(), tenant_name, tuple(senders), tenant_domains)


def _verified_domains(engine: Engine, tenant_id: int | None) -> tuple[str, ...]:
    if tenant_id is None:
        return ()
    return tuple(d.name for d in list_domains(engine, tenant_id=tenant_id, state=DomainState.VERIFIED))


async def _resolve(resolver: Resolver, host: str) -> ResolvedHost:
    try:
        found = await resolver.addresses(host)
    except DnsTemporaryError as exc:
        return ResolvedHost(host, (), utcnow(), str(exc))
    return ResolvedHost(host, tuple(found), utcnow(), None if found else "has no address in DNS")
