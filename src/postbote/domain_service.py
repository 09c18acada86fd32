"""Sender domains as the faces use them: add, records, verify, check, rotate — each scoped to a
tenant when one is given, so a tenant can never touch another tenant's domain."""

from __future__ import annotations

import asyncio

from .app import App
from .db.schema import iso_utc
from .domains import (
    Domain,
    add_domain,
    domain_keys,
    ensure_platform_keys,
    get_domain,
    list_domains,
    platform_records,
    publish,
    record_advice,
    tenant_records,
    verify_domain,
    zone_file,
)
from .domains.check import health_check
from .domains.publish import withdraw
from .domains.records import dkim_target
from .domains.store import remove_domain
from .domains.rotate import rotate_key
from .holding import release_for_domain
from .sending import vault_for
from .vocab import DomainState


def records_json(app: App, domain: Domain) -> list[dict]:
    """The records the tenant publishes, with each one's status from the last check (null before)."""
    checked = {r["name"]: r for r in domain.records or []}
    s = app.settings
    out = []
    for r in tenant_records(domain.name, s.dkim_zone, s.return_path_host, token=domain.claim_token):
        last = checked.get(r.name, {})
        out.append({"name": r.name, "type": r.type, "value": r.value, "purpose": r.purpose, "required": r.required,
                    "status": last.get("status"), "found": last.get("found"), "cause": last.get("cause"),
                    "advice": record_advice({**last, "name": r.name, "type": r.type, "expected": r.value})
                    if last.get("status") else None})
    return out


def domain_json(app: App, domain: Domain) -> dict:
    return {
        "domain": domain.name,
        "state": domain.state.value,
        "verified_at": iso_utc(domain.verified_at),
        "checked_at": iso_utc(domain.checked_at),
        "records": records_json(app, domain),
    }


def add(app: App, tenant_id: int, name: str) -> dict:
    domain = add_domain(app.engine, vault_for(app.settings.SECRET_KEY), tenant_id, name,
                        platform_zone=app.settings.dkim_zone, max_per_tenant=app.settings.MAX_DOMAINS_PER_TENANT)
    return domain_json(app, domain)


def remove(app: App, name: str, tenant_id: int | None = None) -> dict:
    """Remove a claim and withdraw its keys from the platform zone (by RFC 2136 when
    DNS_UPDATE_SERVER is set; 'platform zone' no longer lists them either way)."""
    domain = get_domain(app.engine, name, tenant_id=tenant_id)
    names = sorted({dkim_target(domain.name, key.selector, app.settings.dkim_zone, domain.claim_token)
                    for key in domain_keys(app.engine, domain.id)})
    remove_domain(app.engine, domain)
    withdrawn = withdraw(names, app.settings) if app.settings.DNS_UPDATE_SERVER and names else 0
    return {"domain": domain.name, "removed": True, "withdrawn": names, "withdrawn_by_update": bool(withdrawn)}


def verify(app: App, name: str, tenant_id: int | None = None) -> dict:
    domain = get_domain(app.engine, name, tenant_id=tenant_id)
    result = asyncio.run(verify_domain(app.engine, app.resolver, app.settings, domain))
    released = _release_if_verified(app, domain, result)
    data = domain_json(app, get_domain(app.engine, name, tenant_id=tenant_id))
    data["released"] = released
    data["previous_state"] = result.previous.value
    data["records"] = [{**r, "value": r["expected"], "advice": record_advice(r)} for r in result.records]
    return data


def check(app: App, name: str, tenant_id: int | None = None) -> dict:
    domain = get_domain(app.engine, name, tenant_id=tenant_id)
    return asyncio.run(health_check(app.engine, app.resolver, app.settings, domain)).to_dict()


def rotate(app: App, name: str, *, wait: float, tenant_id: int | None = None) -> dict:
    domain = get_domain(app.engine, name, tenant_id=tenant_id)
    return asyncio.run(rotate_key(app.engine, app.resolver, app.settings, vault_for(app.settings.SECRET_KEY), domain,
                                  wait=wait))


def _platform_records(app: App):
    # The default sender's keys belong in the zone from the start, even before its first message.
    ensure_platform_keys(app.engine, vault_for(app.settings.SECRET_KEY))
    return platform_records(app.engine, app.settings)


def zone(app: App) -> str:
    return zone_file(_platform_records(app))


def publish_zone(app: App) -> int:
    return publish(_platform_records(app), app.settings)


async def recheck_all(app: App) -> list[tuple[str, str, str]]:
    """One round of the schedule: every domain checked again; (domain, before, after) of each."""
    changes = []
    for domain in list_domains(app.engine):
        result = await verify_domain(app.engine, app.resolver, app.settings, domain)
        await asyncio.to_thread(_release_if_verified, app, domain, result)
        changes.append((domain.name, result.previous.value, result.state.value))
    return changes


def _release_if_verified(app: App, domain: Domain, result) -> list[str]:
    """Where a domain's new state is recorded: once it is verified, the mail held for it goes."""
    if result.state is not DomainState.VERIFIED:
        return []
    return release_for_domain(app.engine, app.settings, domain.name, domain.tenant_id)
