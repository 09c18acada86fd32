"""Verification: is a tenant domain's delegation to the platform in place, record by record?

A domain is ``verified`` when both DKIM CNAMEs resolve to the keys the platform publishes and the
return-path CNAME points at the platform's return-path host. Otherwise it is ``pending`` (not
there yet), ``failed`` (never verified, a record points elsewhere) or ``broken`` (was verified,
is not now). Every check is kept; every change of state is an event."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, update

from ..db.schema import domain_events, domains, iso_utc, utcnow
from ..dns import DnsTemporaryError, Resolver
from ..settings import Settings
from ..vocab import DomainState, RecordStatus
from .records import dkim_txt, tenant_records
from .store import DkimKey, Domain, published_keys


@dataclass(frozen=True, slots=True)
class Verification:
    domain: str
    state: DomainState
    previous: DomainState
    records: list[dict]

    @property
    def missing(self) -> list[str]:
        """The required records not in place, as 'name TYPE value' lines for people."""
        return [f"{r['name']} {r['type']} {r['expected']}" for r in self.records
                if r["required"] and r["status"] != RecordStatus.OK.value]


async def check_records(resolver: Resolver, settings: Settings, domain: str, keys: dict[str, DkimKey],
                        token: str | None = None) -> list[dict]:
    checked_at = iso_utc(utcnow())
    results = []
    for record in tenant_records(domain, settings.dkim_zone, settings.return_path_host, token=token):
        status, found = await _check(resolver, record, keys)
        results.append({"name": record.name, "type": record.type, "expected": record.value, "found": found,
                        "status": status.value, "purpose": record.purpose, "required": record.required,
                        "checked_at": checked_at})
    return results


async def _check(resolver: Resolver, record, keys: dict[str, DkimKey]) -> tuple[RecordStatus, str | None]:
    try:
        if record.type == "TXT":  # the DMARC recommendation: any DMARC record will do
            found = [t for t in await resolver.txt(record.name, fresh=True) if t.lower().startswith("v=dmarc1")]
            return (RecordStatus.OK, found[0]) if found else (RecordStatus.MISSING, None)
        target = await resolver.cname(record.name, fresh=True)
        if target is None:
            return RecordStatus.MISSING, None
        if target != record.value:
            return RecordStatus.WRONG, target
        selector = record.name.split(".", 1)[0]
        if selector in keys:  # a DKIM CNAME: the key at its end must be the one published
            published = await resolver.txt(target, fresh=True)
            if dkim_txt(keys[selector].public_b64) not in [" ".join(t.split()) for t in published]:
                return RecordStatus.WRONG, f"{target} (the key there is missing or old: publish the platform zone)"
        return RecordStatus.OK, target
    except DnsTemporaryError as exc:
        return RecordStatus.ERROR, str(exc)


def next_state(previous: DomainState, records: list[dict]) -> DomainState:
    required = [r for r in records if r["required"]]
    if all(r["status"] == RecordStatus.OK.value for r in required):
        return DomainState.VERIFIED
    if previous in (DomainState.VERIFIED, DomainState.BROKEN):
        return DomainState.BROKEN
    if any(r["status"] == RecordStatus.WRONG.value for r in required):
        return DomainState.FAILED
    return DomainState.PENDING


async def verify_domain(engine: Engine, resolver: Resolver, settings: Settings, domain: Domain) -> Verification:
    records = await check_records(resolver, settings, domain.name, published_keys(engine, domain.id),
                                  token=domain.claim_token)
    state = next_state(domain.state, records)
    now = utcnow()
    values = {"state": state.value, "checked_at": now, "records": records}
    if state is DomainState.VERIFIED and domain.verified_at is None:
        values["verified_at"] = now
    with engine.begin() as conn:
        conn.execute(update(domains).where(domains.c.id == domain.id).values(**values))
        summary = {r["name"]: r["status"] for r in records}
        conn.execute(insert(domain_events).values(domain_id=domain.id, at=now, kind="checked", old_state=domain.state.value,
                                                  new_state=state.value, data={"records": summary}))
        if state is not domain.state:
            conn.execute(insert(domain_events).values(domain_id=domain.id, at=now, kind="state_changed",
                                                      old_state=domain.state.value, new_state=state.value,
                                                      data={"not_ok": [n for n, s in summary.items() if s != "ok"]}))
    return Verification(domain.name, state, domain.state, records)
