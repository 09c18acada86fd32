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
        status, found, cause = await _check(resolver, record, keys)
        results.append({"name": record.name, "type": record.type, "expected": record.value, "found": found,
                        "status": status.value, "cause": cause, "purpose": record.purpose,
                        "required": record.required, "checked_at": checked_at})
    return results


# Why a record is not ok, when it is "wrong": whose side is missing.
POINTS_ELSEWHERE = "points_elsewhere"  # the tenant's record leads somewhere else: their IT team fixes it
PLATFORM_NOT_PUBLISHED = "platform_not_published"  # the tenant's record is right; the platform's key is not there


async def _check(resolver: Resolver, record, keys: dict[str, DkimKey]) -> tuple[RecordStatus, str | None, str | None]:
    try:
        if record.type == "TXT":  # the DMARC recommendation: any DMARC record will do
            found = [t for t in await resolver.txt(record.name, fresh=True) if t.lower().startswith("v=dmarc1")]
            return (RecordStatus.OK, found[0], None) if found else (RecordStatus.MISSING, None, None)
        target = await resolver.cname(record.name, fresh=True)
        if target is None:
            return RecordStatus.MISSING, None, None
        if target != record.value:
            return RecordStatus.WRONG, target, POINTS_ELSEWHERE
        selector = record.name.split(".", 1)[0]
        if selector in keys:  # a DKIM CNAME: the key at its end must be the one published
            published = await resolver.txt(target, fresh=True)
            if dkim_txt(keys[selector].public_b64) not in [" ".join(t.split()) for t in published]:
                return (RecordStatus.WRONG, f"{target} (the key there is missing or old: publish the platform zone)",
                        PLATFORM_NOT_PUBLISHED)
        return RecordStatus.OK, target, None
    except DnsTemporaryError as exc:
        return RecordStatus.ERROR, str(exc), None


def next_state(previous: DomainState, records: list[dict]) -> DomainState:
    required = [r for r in records if r["required"]]
    if all(r["status"] == RecordStatus.OK.value for r in required):
        return DomainState.VERIFIED
    if previous in (DomainState.VERIFIED, DomainState.BROKEN):
        return DomainState.BROKEN
    # failed: the tenant's records point elsewhere. Waiting for the platform's side is pending.
    if any(r["status"] == RecordStatus.WRONG.value and r.get("cause") != PLATFORM_NOT_PUBLISHED for r in required):
        return DomainState.FAILED
    return DomainState.PENDING


def record_advice(record: dict) -> str | None:
    """One sentence per record that is not ok, saying whose move it is — the tenant's IT team's,
    or the platform's (never blame the customer for the platform's gap)."""
    name, expected, status = record["name"], record["expected"], record["status"]
    if status == RecordStatus.OK.value:
        return None
    if status == RecordStatus.MISSING.value:
        return f"{name} is not in DNS yet: your IT team publishes {name} {record['type']} {expected}."
    if status == RecordStatus.ERROR.value:
        return f"{name} could not be checked ({record.get('found')}); try again in a few minutes."
    if record.get("cause") == PLATFORM_NOT_PUBLISHED:
        return (f"{name} is right: it points to {expected}. The platform has not published its side there yet; "
                "the platform team runs 'postbote platform publish' (or loads 'postbote platform zone'). "
                "Nothing to change at your side.")
    return (f"{name} points to {record.get('found')}, not to {expected}: your IT team changes it to "
            f"{name} {record['type']} {expected}.")


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
