"""The platform's operators: admin keys, and what they do to tenants.

An admin key (``pba_…``) is made only by the CLI, on the machine that holds the store; it is shown
once and stored as its SHA-256, like a tenant key. With it, the platform's backend manages
tenants over the API — create, list, suspend, resume, settings, keys — and the partner registry.
An admin key is not a tenant key: it sends no mail and reads no tenant's messages, and a tenant
key is refused on every admin operation (403 ``admin_key_required``).

Suspension: a suspended tenant's API calls answer 403 ``tenant_suspended`` and its pending mail
waits in the queue, claimed by no worker, until the tenant is resumed (then it goes, unless it
expired in the meantime). Nothing already accepted is deleted.

Settings per tenant: the default language (of workflow mail without a language of its own, and of
explanations), the time zone (of workflow delays at a local time that name none), the sender
policy (fallback or hold) and the hourly limit (recipients accepted per rolling hour)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, insert, select, update

from .compose import check_header_value
from .db.schema import admin_keys, iso_utc, tenants, utcnow, workflow_tenant_settings
from .errors import AuthError, InputError, NotFoundError
from .tenants import Tenant, check_sender_policy, get_tenant, tenant_from_row
from .workflows import check_language, fallback_language, set_fallback_language

ADMIN_KEY_PREFIX = "pba_"
MAX_HOURLY_LIMIT = 10_000_000
_LAST_USE_RESOLUTION = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_admin_key(key: str) -> bool:
    return key.startswith(ADMIN_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class AdminKey:
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "label": self.label, "created_at": iso_utc(self.created_at),
                "last_used_at": iso_utc(self.last_used_at), "revoked_at": iso_utc(self.revoked_at),
                "active": self.revoked_at is None}


def create_admin_key(engine: Engine, label: str) -> str:
    """A new admin key; the only time it is visible."""
    label = label.strip()
    if not label or len(label) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise InputError("The label must be 1–100 printable characters.", code="label_invalid",
                         hint="Name who or what uses the key, e.g. 'hr-backend'.")
    key = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(insert(admin_keys).values(prefix=key[:12], key_hash=_hash(key), label=label, created_at=utcnow()))
    return key


def list_admin_keys(engine: Engine) -> list[AdminKey]:
    with engine.connect() as conn:
        rows = conn.execute(select(admin_keys).order_by(admin_keys.c.created_at.desc(), admin_keys.c.id.desc())).all()
    return [AdminKey(r.prefix, r.label, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def revoke_admin_key(engine: Engine, prefix: str) -> None:
    with engine.begin() as conn:
        changed = conn.execute(update(admin_keys).where(admin_keys.c.prefix == prefix, admin_keys.c.revoked_at.is_(None))
                               .values(revoked_at=utcnow())).rowcount
    if changed != 1:
        raise NotFoundError(f"No active admin key {prefix[:16]!r}.", code="key_not_found",
                            hint="List them with 'postbote admin key list'.")


def authenticate_admin(engine: Engine, key: str) -> AdminKey:
    with engine.connect() as conn:
        row = conn.execute(select(admin_keys).where(admin_keys.c.key_hash == _hash(key),
                                                    admin_keys.c.revoked_at.is_(None))).first()
    if row is None:
        raise AuthError("The admin key is not valid.", hint="Make one with 'postbote admin key create LABEL'.")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= _LAST_USE_RESOLUTION:
        with engine.begin() as conn:
            conn.execute(update(admin_keys).where(admin_keys.c.id == row.id).values(last_used_at=now))
    return AdminKey(row.prefix, row.label, row.created_at, now, None)


# -- tenants, as an admin sees them --------------------------------------------------------------

def tenant_json(engine: Engine, tenant: Tenant) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(tenants.c.created_at, tenants.c.suspended_at, tenants.c.suspended_reason)
                           .where(tenants.c.id == tenant.id)).one()
    return {"name": tenant.name, "display_name": tenant.display_name, "created_at": iso_utc(row.created_at),
            "suspended": row.suspended_at is not None, "suspended_at": iso_utc(row.suspended_at),
            "suspended_reason": row.suspended_reason, "settings": settings_json(engine, tenant)}


def chosen_language(engine: Engine, tenant_id: int) -> str | None:
    """The tenant's default language if one was set (None: the platform's LANGUAGE applies)."""
    with engine.connect() as conn:
        return conn.execute(select(workflow_tenant_settings.c.fallback_language)
                            .where(workflow_tenant_settings.c.tenant_id == tenant_id)).scalar()


def settings_json(engine: Engine, tenant: Tenant) -> dict[str, Any]:
    return {"language": fallback_language(engine, tenant.id), "time_zone": tenant.time_zone or "UTC",
            "sender_policy": tenant.sender_policy.value, "hourly_limit": tenant.hourly_limit}


def list_tenant_page(engine: Engine, *, limit: int, after: str | None) -> tuple[list[Tenant], str | None]:
    """Tenants by name, ``limit`` at a time after the name ``after``; the name to continue after."""
    query = select(tenants).order_by(tenants.c.name).limit(limit + 1)
    if after is not None:
        query = query.where(tenants.c.name > after)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [tenant_from_row(r) for r in rows[:limit]]
    return found, (found[-1].name if len(rows) > limit else None)


def suspend(engine: Engine, name: str, reason: str) -> Tenant:
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InputError("Give the reason for the suspension, 1–500 characters.", code="reason_required",
                         hint="It is kept, and shown to the tenant's calls in the 403 answer.")
    tenant = get_tenant(engine, name)
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant.id, tenants.c.suspended_at.is_(None))
                     .values(suspended_at=utcnow(), suspended_reason=reason))
    return get_tenant(engine, name)


def resume(engine: Engine, name: str) -> Tenant:
    tenant = get_tenant(engine, name)
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(suspended_at=None, suspended_reason=None))
    return get_tenant(engine, name)


def suspension_reason(engine: Engine, tenant_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(tenants.c.suspended_reason).where(tenants.c.id == tenant_id)).scalar() or ""


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{value[:64]!r} is not a time zone.", code="time_zone_invalid",
                         hint="Use an IANA name such as Europe/Berlin.") from None
    return value


def update_settings(engine: Engine, name: str, changes: dict[str, Any]) -> Tenant:
    """Change some settings of a tenant; each key given is checked before any is written. A
    ``hourly_limit`` of None lifts the limit; a ``time_zone`` of None is UTC."""
    unknown = set(changes) - {"display_name", "language", "time_zone", "sender_policy", "hourly_limit"}
    if unknown:
        raise InputError(f"Unknown settings: {', '.join(sorted(unknown))}.", code="setting_unknown",
                         hint="Settings are display_name, language, time_zone, sender_policy and hourly_limit.")
    tenant = get_tenant(engine, name)
    values: dict[str, Any] = {}
    if "display_name" in changes:
        display = str(changes["display_name"] or "").strip()
        if not display or len(display) > 200:
            raise InputError("The display name must be 1–200 characters.", code="display_name_invalid",
                             hint="It is the name mail from the default sender carries.")
        check_header_value("display name", display)
        values["display_name"] = display
    if changes.get("time_zone") is not None:
        values["time_zone"] = check_time_zone(str(changes["time_zone"]))
    elif "time_zone" in changes:
        values["time_zone"] = None
    if "hourly_limit" in changes:
        limit = changes["hourly_limit"]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 1 <= limit <= MAX_HOURLY_LIMIT):
            raise InputError(f"The hourly limit must be a whole number from 1 to {MAX_HOURLY_LIMIT:,}, or null.",
                             code="hourly_limit_invalid", hint="null lifts the limit.")
        values["hourly_limit"] = limit
    if "sender_policy" in changes:
        values["sender_policy"] = check_sender_policy(str(changes["sender_policy"])).value
    language = check_language(changes["language"]) if "language" in changes else None
    if values:  # everything was checked: now the writes
        with engine.begin() as conn:
            conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(**values))
    if language is not None:
        set_fallback_language(engine, tenant.id, language)
    return get_tenant(engine, name)
