"""Tenants — the customer companies — and their API keys. A key is shown once, when it is made;
the store keeps only its SHA-256, so a leaked database does not leak working keys. Keys are
listed by their prefix (never enough to use one), with when they were made and last used, and
can be revoked or rotated (a new key, the old one revoked in the same transaction)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .compose import check_header_value
from .db.schema import api_keys, deliveries, iso_utc, messages, tenants, utcnow
from .errors import AuthError, ConflictError, InputError, NotFoundError, RateLimitedError
from .vocab import SenderPolicy

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_PREFIX = "pb_"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    display_name: str
    sender_policy: SenderPolicy = SenderPolicy.FALLBACK
    suspended: bool = False
    hourly_limit: int | None = None  # recipients accepted per rolling hour; None: no limit
    time_zone: str | None = None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add_tenant(engine: Engine, name: str, display_name: str | None = None) -> Tenant:
    if not _NAME.match(name):
        raise InputError(
            f"The tenant name {name!r} is not allowed.",
            hint="Use 1–64 lower-case letters, digits, '-' or '_', e.g. acme-gmbh.",
            code="tenant_name_invalid",
        )
    display = (display_name or name).strip()
    check_header_value("display name", display)
    try:
        with engine.begin() as conn:
            tenant_id = conn.execute(
                insert(tenants).values(name=name, display_name=display, created_at=utcnow())
            ).inserted_primary_key[0]
    except IntegrityError:
        raise ConflictError(
            f"A tenant named {name!r} exists already.", hint="Choose another name.", code="tenant_exists"
        ) from None
    return Tenant(tenant_id, name, display)


def tenant_from_row(row) -> Tenant:
    return Tenant(row.id, row.name, row.display_name, SenderPolicy(row.sender_policy),
                  suspended=row.suspended_at is not None, hourly_limit=row.hourly_limit, time_zone=row.time_zone)


def check_sender_policy(policy: str) -> SenderPolicy:
    try:
        return SenderPolicy(policy)
    except ValueError:
        raise InputError(f"The sender policy {policy[:40]!r} does not exist.", code="policy_invalid",
                         hint="Use fallback (send from the default sender) or hold.") from None


def set_sender_policy(engine: Engine, tenant: Tenant, policy: str) -> Tenant:
    chosen = check_sender_policy(policy)
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(sender_policy=chosen.value))
    return replace(tenant, sender_policy=chosen)


def tenant_names(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {r.id: r.name for r in conn.execute(select(tenants.c.id, tenants.c.name))}


def get_tenant(engine: Engine, name: str) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    if row is None:
        raise NotFoundError(
            f"No tenant named {name!r}.",
            hint="Create it with 'postbote tenant add NAME'.",
            code="tenant_not_found",
        )
    return tenant_from_row(row)


def list_tenants(engine: Engine) -> list[tuple[Tenant, int]]:
    """Every tenant, by name, with how many API keys it has that still work."""
    live = (select(api_keys.c.tenant_id, func.count().label("keys")).where(api_keys.c.revoked_at.is_(None))
            .group_by(api_keys.c.tenant_id).subquery())
    with engine.connect() as conn:
        rows = conn.execute(select(tenants, live.c["keys"]).outerjoin(live, live.c.tenant_id == tenants.c.id)
                            .order_by(tenants.c.name)).all()
    return [(tenant_from_row(row), row[-1] or 0) for row in rows]


def create_key(engine: Engine, tenant: Tenant) -> str:
    """A new API key for the tenant; the only time the key is ever visible."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(api_keys).values(
                tenant_id=tenant.id, prefix=key[:10], key_hash=_hash(key), created_at=utcnow()
            )
        )
    return key


_LAST_USE_RESOLUTION = timedelta(minutes=1)  # a write per key and minute, not per request


def authenticate(engine: Engine, key: str) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(
            select(tenants, api_keys.c.id.label("key_id"), api_keys.c.last_used_at)
            .join(api_keys, api_keys.c.tenant_id == tenants.c.id)
            .where(api_keys.c.key_hash == _hash(key), api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None:
        raise AuthError("The API key is not valid.")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= _LAST_USE_RESOLUTION:
        with engine.begin() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == row.key_id).values(last_used_at=now))
    return tenant_from_row(row)


@dataclass(frozen=True, slots=True)
class ApiKey:
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "created_at": iso_utc(self.created_at), "last_used_at": iso_utc(self.last_used_at),
                "revoked_at": iso_utc(self.revoked_at), "active": self.revoked_at is None}


def list_keys(engine: Engine, tenant: Tenant) -> list[ApiKey]:
    """The tenant's keys, newest first, revoked ones included; never the key itself."""
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).where(api_keys.c.tenant_id == tenant.id)
                            .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())).all()
    return [ApiKey(r.prefix, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def list_key_page(engine: Engine, tenant: Tenant, *, limit: int, before: int | None = None) -> list[tuple[int, ApiKey]]:
    """Up to ``limit`` of the tenant's keys, newest (highest id) first, made before the key with
    id ``before``; each with its id, which is the cursor of the next page."""
    query = (select(api_keys).where(api_keys.c.tenant_id == tenant.id).order_by(api_keys.c.id.desc()).limit(limit))
    if before is not None:
        query = query.where(api_keys.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(r.id, ApiKey(r.prefix, r.created_at, r.last_used_at, r.revoked_at)) for r in rows]


def _active_key_id(conn, tenant: Tenant, prefix: str) -> int:
    ids = conn.execute(select(api_keys.c.id).where(api_keys.c.tenant_id == tenant.id, api_keys.c.prefix == prefix,
                                                   api_keys.c.revoked_at.is_(None))).scalars().all()
    if len(ids) != 1:
        # Another tenant's key answers the same as none: whose keys exist is nobody else's business.
        raise NotFoundError(f"No active API key {prefix[:16]!r} of tenant {tenant.name!r}.", code="key_not_found",
                            hint="List the keys and their prefixes with 'postbote tenant key list TENANT'.")
    return ids[0]


def revoke_key(engine: Engine, tenant: Tenant, prefix: str) -> ApiKey:
    """Stop a key from working, at once; it stays listed, revoked."""
    with engine.begin() as conn:
        key_id = _active_key_id(conn, tenant, prefix)
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=utcnow()))
    return next(k for k in list_keys(engine, tenant) if k.prefix == prefix and k.revoked_at is not None)


def rotate_key(engine: Engine, tenant: Tenant, prefix: str) -> str:
    """A new key for the tenant and the old one revoked, in one transaction. Returns the new key
    (the only time it is visible)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        key_id = _active_key_id(conn, tenant, prefix)
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
        conn.execute(insert(api_keys).values(tenant_id=tenant.id, prefix=key[:10], key_hash=_hash(key), created_at=now))
    return key


_WINDOW = timedelta(hours=1)


def check_hourly_limit(engine: Engine, tenant: Tenant, recipients: int, *, now: datetime | None = None) -> None:
    """Refuse a message whose recipients would take the tenant past its hourly limit, counting the
    recipients of its messages accepted in the last hour. Checked before the store write, so two
    requests at the same moment may together pass the limit by what they carry."""
    if tenant.hourly_limit is None:
        return
    now = now or utcnow()
    since = now - _WINDOW
    with engine.connect() as conn:
        used = conn.execute(select(func.count()).select_from(deliveries.join(messages, deliveries.c.message_id == messages.c.id))
                            .where(messages.c.tenant_id == tenant.id, messages.c.created_at > since)).scalar() or 0
        if used + recipients <= tenant.hourly_limit:
            return
        oldest = conn.execute(select(func.min(messages.c.created_at)).where(
            messages.c.tenant_id == tenant.id, messages.c.created_at > since)).scalar()
    wait = max(1.0, ((oldest + _WINDOW) - now).total_seconds()) if oldest is not None else 3600.0
    raise RateLimitedError(
        f"The hourly limit of {tenant.hourly_limit:,} recipients is reached ({used:,} in the last hour; "
        f"this message has {recipients:,}).", retry_after=wait, code="hourly_limit_reached",
        hint="Send again after Retry-After seconds, or ask the platform's operators to raise the limit.")
