"""Sender domains and their keys in the store. A domain row is one tenant's claim of a name. While
no claim of a name is verified, other tenants may claim it too — each claim has its own random
token in its CNAME targets, so only the claim whose records the domain's owner publishes can
verify; once one is verified (or broken, i.e. was verified), new claims are refused. Every lookup
made for a tenant is scoped to it, so another tenant's claim simply does not exist."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..compose import normalize_domain
from ..db.schema import dkim_keys, domain_events, domains, utcnow
from ..errors import ConflictError, InputError, NotFoundError
from ..vocab import DomainState, KeyState
from . import keys
from .records import SELECTORS


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    tenant_id: int
    name: str
    state: DomainState
    created_at: datetime
    verified_at: datetime | None
    checked_at: datetime | None
    records: list[dict] | None
    claim_token: str | None = None


@dataclass(frozen=True, slots=True)
class DkimKey:
    id: int
    domain_id: int | None
    selector: str
    state: KeyState
    sealed: str
    public_b64: str
    activated_at: datetime | None = None


def _domain(row) -> Domain:
    return Domain(row.id, row.tenant_id, row.name, DomainState(row.state), row.created_at, row.verified_at,
                  row.checked_at, row.records, row.claim_token)


_WON = (DomainState.VERIFIED.value, DomainState.BROKEN.value)  # a claim that has been verified


@lru_cache(maxsize=1)
def public_mailbox_domains() -> frozenset[str]:
    """The big public mailbox providers' domains (``public_mailbox_domains.txt``): nobody's company."""
    text = resources.files(__package__).joinpath("public_mailbox_domains.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _refuse_reserved(domain: str, platform_zone: str) -> None:
    if domain == platform_zone or domain.endswith("." + platform_zone):
        raise InputError(f"{domain} is the platform's own domain.", code="domain_reserved",
                         hint="Add your company's own domain, e.g. acme.com.")
    parts = domain.split(".")
    if any(".".join(parts[i:]) in public_mailbox_domains() for i in range(len(parts) - 1)):
        raise InputError(f"{domain} belongs to a public mailbox provider, not to one company.", code="domain_reserved",
                         hint="Add your company's own domain, e.g. acme.com; mail from a free mailbox address goes "
                              "from the default sender.")


def new_claim_token() -> str:
    """80 random bits as 16 lower-case base32 letters: one DNS label, unguessable."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def add_domain(engine: Engine, vault: keys.KeyVault, tenant_id: int, name: str, *, platform_zone: str,
               max_per_tenant: int = 20) -> Domain:
    domain = normalize_domain(name, field="domain")
    _refuse_reserved(domain, platform_zone)
    generated = [keys.generate() for _ in SELECTORS]  # before the transaction: this takes a moment
    now = utcnow()
    taken = ConflictError(f"The domain {domain} is already registered.", code="domain_taken",
                          hint="If it is yours, ask the platform team; a verified domain belongs to one tenant.")
    try:
        with engine.begin() as conn:
            claims = conn.execute(select(domains.c.tenant_id, domains.c.state).where(domains.c.name == domain)).all()
            # Whose it is stays unsaid: tenants never learn about each other's domains.
            if any(c.tenant_id == tenant_id or c.state in _WON for c in claims):
                raise taken
            count = conn.execute(select(func.count()).select_from(domains).where(domains.c.tenant_id == tenant_id)).scalar()
            if count >= max_per_tenant:
                raise ConflictError(f"This tenant has {count} domains, the most allowed.", code="domain_limit",
                                    hint="Remove one with 'postbote domain remove' (DELETE /v1/domains/{domain}), "
                                         "or ask the operator about MAX_DOMAINS_PER_TENANT.")
            domain_id = conn.execute(
                insert(domains).values(tenant_id=tenant_id, name=domain, state=DomainState.PENDING.value, created_at=now,
                                       claim_token=new_claim_token())
            ).inserted_primary_key[0]
            for selector, pair, state in zip(SELECTORS, generated, (KeyState.ACTIVE, KeyState.NEXT)):
                _insert_key(conn, vault, domain_id, selector, pair, state, now)
    except IntegrityError:  # the same tenant, twice at once
        raise taken from None
    return get_domain(engine, domain, tenant_id=tenant_id)


def remove_domain(engine: Engine, domain: Domain) -> None:
    """Delete the claim with its keys and checks (their records leave the platform zone)."""
    with engine.begin() as conn:
        conn.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain.id))
        conn.execute(delete(domain_events).where(domain_events.c.domain_id == domain.id))
        conn.execute(delete(domains).where(domains.c.id == domain.id))


def _insert_key(conn: Connection, vault, domain_id, selector, pair, state: KeyState, now) -> None:
    conn.execute(insert(dkim_keys).values(
        domain_id=domain_id, selector=selector, state=state.value, private_key=vault.seal(pair.private_key),
        public_key=pair.public_b64, created_at=now, activated_at=now if state is KeyState.ACTIVE else None,
    ))


def _claims(name: str, tenant_id: int | None):
    """Claims of a name, the one that counts first: verified or broken, then the oldest."""
    query = select(domains).where(domains.c.name == name)
    if tenant_id is not None:
        query = query.where(domains.c.tenant_id == tenant_id)
    won = domains.c.state.in_(_WON)
    return query.order_by(won.desc(), domains.c.id)


def get_domain(engine: Engine, name: str, *, tenant_id: int | None = None) -> Domain:
    with engine.connect() as conn:
        row = conn.execute(_claims(name.strip().rstrip(".").lower()[:300], tenant_id)).first()
    if row is None:
        raise NotFoundError(f"No domain {name[:300]!r}.", code="domain_not_found",
                            hint="Add it with 'postbote domain add DOMAIN --tenant T'.")
    return _domain(row)


def find_domain(engine: Engine, name: str, *, tenant_id: int | None = None) -> Domain | None:
    """The tenant's claim of ``name``; without a tenant, the claim that counts (verified first)."""
    with engine.connect() as conn:
        row = conn.execute(_claims(name, tenant_id)).first()
    return _domain(row) if row else None


def list_domains(engine: Engine, *, tenant_id: int | None = None, state: DomainState | None = None,
                 after: str | None = None, limit: int | None = None) -> list[Domain]:
    """By name; ``after``/``limit``: a page of the domains named after ``after`` (one tenant's
    names are unique)."""
    query = select(domains).order_by(domains.c.name, domains.c.id)
    if after is not None:
        query = query.where(domains.c.name > after)
    if limit is not None:
        query = query.limit(limit)
    if tenant_id is not None:
        query = query.where(domains.c.tenant_id == tenant_id)
    if state is not None:
        query = query.where(domains.c.state == state.value)
    with engine.connect() as conn:
        return [_domain(row) for row in conn.execute(query)]


def domain_keys(engine: Engine, domain_id: int | None) -> list[DkimKey]:
    condition = dkim_keys.c.domain_id.is_(None) if domain_id is None else dkim_keys.c.domain_id == domain_id
    with engine.connect() as conn:
        rows = conn.execute(select(dkim_keys).where(condition).order_by(dkim_keys.c.selector, dkim_keys.c.id)).all()
    return [DkimKey(r.id, r.domain_id, r.selector, KeyState(r.state), r.private_key, r.public_key, r.activated_at)
            for r in rows]


def published_keys(engine: Engine, domain_id: int | None) -> dict[str, DkimKey]:
    """Selector → the key published under it (the newest, whatever its state)."""
    return {k.selector: k for k in domain_keys(engine, domain_id)}


def ensure_platform_keys(engine: Engine, vault: keys.KeyVault) -> None:
    """The default sender's own keys, made once."""
    if domain_keys(engine, None):
        return
    pairs = [keys.generate() for _ in SELECTORS]
    now = utcnow()
    with engine.begin() as conn:
        for selector, pair, state in zip(SELECTORS, pairs, (KeyState.ACTIVE, KeyState.NEXT)):
            _insert_key(conn, vault, None, selector, pair, state, now)


def active_key(engine: Engine, domain_id: int | None) -> DkimKey:
    active = [k for k in domain_keys(engine, domain_id) if k.state is KeyState.ACTIVE]
    if not active:
        raise NotFoundError("No active DKIM key.", code="dkim_key_missing",
                            hint="Run 'postbote init' to create the platform's keys.")
    return active[-1]


def replace_key(engine: Engine, vault: keys.KeyVault, key: DkimKey, state: KeyState) -> None:
    """A fresh key pair under the same selector (the old one stops being published)."""
    pair = keys.generate()
    with engine.begin() as conn:
        conn.execute(update(dkim_keys).where(dkim_keys.c.id == key.id).values(
            private_key=vault.seal(pair.private_key), public_key=pair.public_b64, state=state.value,
            created_at=utcnow(), activated_at=None,
        ))


def set_key_state(engine: Engine, key: DkimKey, state: KeyState) -> None:
    values = {"state": state.value}
    if state is KeyState.ACTIVE:
        values["activated_at"] = utcnow()
    with engine.begin() as conn:
        conn.execute(update(dkim_keys).where(dkim_keys.c.id == key.id).values(**values))
