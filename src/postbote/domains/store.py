"""Sender domains and their keys in the store. A domain belongs to exactly one tenant; every
lookup made for a tenant is scoped to it, so another tenant's domain simply does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..compose import normalize_domain
from ..db.schema import dkim_keys, domains, utcnow
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
                  row.checked_at, row.records)


def add_domain(engine: Engine, vault: keys.KeyVault, tenant_id: int, name: str, *, platform_zone: str) -> Domain:
    domain = normalize_domain(name, field="domain")
    if domain == platform_zone or domain.endswith("." + platform_zone):
        raise InputError(f"{domain} is the platform's own domain.", code="domain_reserved",
                         hint="Add your company's own domain, e.g. acme.com.")
    generated = [keys.generate() for _ in SELECTORS]  # before the transaction: this takes a moment
    now = utcnow()
    try:
        with engine.begin() as conn:
            domain_id = conn.execute(
                insert(domains).values(tenant_id=tenant_id, name=domain, state=DomainState.PENDING.value, created_at=now)
            ).inserted_primary_key[0]
            for selector, pair, state in zip(SELECTORS, generated, (KeyState.ACTIVE, KeyState.NEXT)):
                _insert_key(conn, vault, domain_id, selector, pair, state, now)
    except IntegrityError:
        # Whose it is stays unsaid: tenants never learn about each other's domains.
        raise ConflictError(f"The domain {domain} is already registered.", code="domain_taken",
                            hint="If it is yours, ask the platform team; a domain belongs to one tenant.") from None
    return get_domain(engine, domain, tenant_id=tenant_id)


def _insert_key(conn: Connection, vault, domain_id, selector, pair, state: KeyState, now) -> None:
    conn.execute(insert(dkim_keys).values(
        domain_id=domain_id, selector=selector, state=state.value, private_key=vault.seal(pair.private_key),
        public_key=pair.public_b64, created_at=now, activated_at=now if state is KeyState.ACTIVE else None,
    ))


def get_domain(engine: Engine, name: str, *, tenant_id: int | None = None) -> Domain:
    query = select(domains).where(domains.c.name == name.strip().rstrip(".").lower())
    if tenant_id is not None:
        query = query.where(domains.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"No domain {name!r}.", code="domain_not_found",
                            hint="Add it with 'postbote domain add DOMAIN --tenant T'.")
    return _domain(row)


def find_domain(engine: Engine, name: str) -> Domain | None:
    with engine.connect() as conn:
        row = conn.execute(select(domains).where(domains.c.name == name)).first()
    return _domain(row) if row else None


def list_domains(engine: Engine, *, tenant_id: int | None = None, state: DomainState | None = None) -> list[Domain]:
    query = select(domains).order_by(domains.c.name)
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
