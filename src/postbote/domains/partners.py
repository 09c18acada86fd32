"""The registry of partners: third parties that send mail in tenants' names (the e-signature
provider), with their sending hosts and IPs, the SPF include tenants add and the DKIM domain and
selector tenants delegate. It replaces the ``PARTNERS`` and ``PARTNER_IPS`` settings, which
seed it while it has never held an entry (so existing configurations keep working).

And the verdict per tenant domain: will this partner's mail, sent as the tenant's domain, pass?
SPF passes when the domain's one SPF record includes the partner and stays within 10 DNS
lookups (RFC 7208 §4.6.4); DKIM passes when the partner's selector is published under the
domain, so the partner signs d=<the domain> — aligned for DMARC (RFC 7489 §3.1)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db.schema import partners as partners_table
from ..db.schema import utcnow
from ..dns import DnsTemporaryError, Resolver
from ..errors import ConflictError, InputError, NotFoundError
from ..settings import Settings
from . import spf_check

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_SELECTOR = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,62})$")
MAX_ITEMS = 50


@dataclass(frozen=True, slots=True)
class Partner:
    name: str
    ips: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    spf_include: str = ""
    dkim_domain: str = ""  # where the partner publishes its key: selector._domainkey.<dkim_domain>
    dkim_selector: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ips": self.ips, "hosts": self.hosts, "spf_include": self.spf_include,
                "dkim_domain": self.dkim_domain, "dkim_selector": self.dkim_selector}


_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$")


def _dns_name(value: Any, what: str) -> str:
    """A DNS name as SPF and DKIM use them: underscores allowed (``_spf.example.com``)."""
    name = str(value).strip().rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")) or "." not in name:
        raise _invalid(f"The {what} {name[:70]!r} is not a DNS name.")
    return name


def _invalid(message: str) -> InputError:
    return InputError(message, code="partner_invalid",
                      hint="Give name, ips (IPv4/IPv6), hosts, spf_include, dkim_domain and dkim_selector.")


def check_partner(data: dict[str, Any]) -> Partner:
    name = str(data.get("name") or "").strip()
    if not _NAME.match(name):
        raise _invalid(f"The partner name {name[:70]!r} is not allowed: 1–64 letters, digits, space, '.', '_' or '-'.")
    ips = [str(ip).strip() for ip in data.get("ips") or []]
    hosts = [str(h).strip() for h in data.get("hosts") or []]
    if len(ips) > MAX_ITEMS or len(hosts) > MAX_ITEMS:
        raise _invalid(f"At most {MAX_ITEMS} IPs and {MAX_ITEMS} hosts.")
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise _invalid(f"{ip[:60]!r} is not an IP address.") from None
    hosts = [_dns_name(h, "host") for h in hosts]
    spf_include = _dns_name(data["spf_include"], "spf_include") if data.get("spf_include") else ""
    dkim_domain = _dns_name(data["dkim_domain"], "dkim_domain") if data.get("dkim_domain") else ""
    selector = str(data.get("dkim_selector") or "").strip()
    if selector and not _SELECTOR.match(selector):
        raise _invalid(f"The DKIM selector {selector[:70]!r} is not a DNS label.")
    return Partner(name, ips, hosts, spf_include, dkim_domain, selector)


def _seed(engine: Engine, settings: Settings) -> None:
    """Once, while the registry has never held an entry: the old settings become entries."""
    seeds = [check_partner(p.model_dump()) for p in settings.PARTNERS]
    known = {p.name for p in seeds}
    loose = [ip for ip in settings.PARTNER_IPS if not any(ip in p.ips for p in seeds)]
    if loose and "Partners (PARTNER_IPS)" not in known:
        seeds.append(Partner("Partners (PARTNER_IPS)", list(loose)))
    if not seeds:
        return
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(partners_table)).scalar():
            return
        for p in seeds:
            conn.execute(insert(partners_table).values(**p.to_dict(), created_at=utcnow()))


def list_partners(engine: Engine, settings: Settings, *, after: str | None = None,
                  limit: int | None = None) -> list[Partner]:
    """By name (unique); ``after``/``limit``: a page of those named after ``after``."""
    _seed(engine, settings)
    query = select(partners_table).where(partners_table.c.removed_at.is_(None)).order_by(partners_table.c.name)
    if after is not None:
        query = query.where(partners_table.c.name > after)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Partner(r.name, list(r.ips or []), list(r.hosts or []), r.spf_include or "", r.dkim_domain or "",
                    r.dkim_selector or "") for r in rows]


def partner_ips(engine: Engine, settings: Settings) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ip for p in list_partners(engine, settings) for ip in p.ips))


def add_partner(engine: Engine, settings: Settings, data: dict[str, Any]) -> Partner:
    partner = check_partner(data)
    _seed(engine, settings)
    try:
        with engine.begin() as conn:
            revived = conn.execute(update(partners_table).where(
                partners_table.c.name == partner.name, partners_table.c.removed_at.is_not(None))
                .values(**partner.to_dict(), removed_at=None, created_at=utcnow())).rowcount
            if not revived:
                conn.execute(insert(partners_table).values(**partner.to_dict(), created_at=utcnow()))
    except IntegrityError:
        raise ConflictError(f"A partner named {partner.name!r} exists already.", code="partner_exists",
                            hint="Remove it first, or choose another name.") from None
    return partner


def update_partner(engine: Engine, settings: Settings, name: str, data: dict[str, Any]) -> Partner:
    """Replace what the registry holds of a partner (its name stays)."""
    partner = check_partner({**data, "name": name})
    _seed(engine, settings)
    values = {k: v for k, v in partner.to_dict().items() if k != "name"}
    with engine.begin() as conn:
        changed = conn.execute(update(partners_table).where(
            partners_table.c.name == partner.name, partners_table.c.removed_at.is_(None)).values(**values)).rowcount
    if not changed:
        raise NotFoundError(f"No partner named {name[:70]!r}.", code="partner_not_found",
                            hint="List them with 'postbote partner list' or GET /v1/partners.")
    return partner


def remove_partner(engine: Engine, settings: Settings, name: str) -> None:
    """Kept as removed, so the settings never seed it again."""
    _seed(engine, settings)
    with engine.begin() as conn:
        changed = conn.execute(update(partners_table).where(
            partners_table.c.name == name, partners_table.c.removed_at.is_(None)).values(removed_at=utcnow())).rowcount
    if not changed:
        raise NotFoundError(f"No partner named {name!r}.", code="partner_not_found",
                            hint="List them with 'postbote partner list' or GET /v1/partners.")


async def partner_verdicts(engine: Engine, resolver: Resolver, settings: Settings, domain: str) -> list[dict[str, Any]]:
    """For each partner: SPF and DKIM as the partner's mail in this domain's name will meet them."""
    partners = list_partners(engine, settings)
    if not partners:
        return []
    spf = await asyncio.to_thread(_spf_facts, settings, domain)
    return [await _verdict(resolver, settings, domain, p, spf) for p in partners]


def _spf_facts(settings: Settings, domain: str) -> dict[str, Any]:
    records = spf_check.spf_records(settings, domain)
    if len(records) != 1:
        return {"record": None, "count": len(records), "includes": [], "lookups": 0}
    terms = [t.lstrip("+-~?").lower() for t in records[0].split()[1:]]
    includes = [t.partition(":")[2].rstrip(".") for t in terms if t.startswith("include:")]
    return {"record": records[0], "count": 1, "includes": includes, "lookups": spf_check.count_lookups(settings, domain)}


async def _verdict(resolver: Resolver, settings: Settings, domain: str, partner: Partner,
                   spf: dict[str, Any]) -> dict[str, Any]:
    fixes: list[str] = []
    spf_status = "not_used"
    if partner.spf_include:
        if spf["record"] is None:
            spf_status = "missing" if spf["count"] == 0 else "several_records"
            fixes.append(f'publish one SPF record at {domain}: "v=spf1 include:{partner.spf_include} ~all"'
                         if spf["count"] == 0 else f"merge the {spf['count']} SPF records of {domain} into one")
        elif partner.spf_include.lower() not in spf["includes"]:
            spf_status = "include_missing"
            fixes.append(f"add include:{partner.spf_include} to the SPF record of {domain}")
        elif spf["lookups"] > spf_check.LOOKUP_LIMIT:
            spf_status = "over_lookup_limit"
            fixes.append(f"the SPF record of {domain} needs {spf['lookups']} DNS lookups, over the limit of 10: "
                         "remove includes no longer used or replace some by ip4:/ip6: ranges")
        else:
            spf_status = "ok"
    dkim_status = "not_used"
    if partner.dkim_selector:
        name = f"{partner.dkim_selector}._domainkey.{domain}"
        try:
            found = await resolver.cname(name, fresh=True) or await resolver.txt(name, fresh=True)
        except DnsTemporaryError:
            found, dkim_status = None, "error"
        if found:
            dkim_status = "ok"
        elif dkim_status != "error":
            dkim_status = "missing"
            target = f"{partner.dkim_selector}._domainkey.{partner.dkim_domain}" if partner.dkim_domain else \
                f"the value {partner.name} gives you"
            fixes.append(f"publish {name} CNAME {target}")
    passes = spf_status == "ok" or dkim_status == "ok"
    verdict = f"{partner.name}'s mail as {domain} will pass DMARC" if not fixes else \
        f"{partner.name}'s mail as {domain} {'will pass DMARC, but' if passes else 'will fail DMARC:'} " + "; ".join(fixes)
    return {"name": partner.name, "spf": spf_status, "dkim": dkim_status, "spf_pass": spf_status == "ok"
            if partner.spf_include else None, "dkim_published": dkim_status == "ok" if partner.dkim_selector else None,
            "passes_dmarc": passes, "verdict": verdict, "fix": "; ".join(fixes) or None}
