"""Tenants — the customer companies — and their API keys. A key is shown once, when it is made;
the store keeps only its SHA-256, so a leaked database does not leak working keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from .compose import check_header_value
from .db.schema import api_keys, tenants, utcnow
from .errors import AuthError, ConflictError, InputError, NotFoundError
from .vocab import SenderPolicy

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_PREFIX = "pb_"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    display_name: str
    sender_policy: SenderPolicy = SenderPolicy.FALLBACK


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


def _tenant(row) -> Tenant:
    return Tenant(row.id, row.name, row.display_name, SenderPolicy(row.sender_policy))


def set_sender_policy(engine: Engine, tenant: Tenant, policy: str) -> Tenant:
    try:
        chosen = SenderPolicy(policy)
    except ValueError:
        raise InputError(f"The sender policy {policy!r} does not exist.", code="policy_invalid",
                         hint="Use fallback (send from the default sender) or hold.") from None
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(sender_policy=chosen.value))
    return Tenant(tenant.id, tenant.name, tenant.display_name, chosen)


def get_tenant(engine: Engine, name: str) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    if row is None:
        raise NotFoundError(
            f"No tenant named {name!r}.",
            hint="Create it with 'postbote tenant add NAME'.",
            code="tenant_not_found",
        )
    return _tenant(row)


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


def authenticate(engine: Engine, key: str) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(
            select(tenants)
            .join(api_keys, api_keys.c.tenant_id == tenants.c.id)
            .where(api_keys.c.key_hash == _hash(key), api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None:
        raise AuthError("The API key is not valid.")
    return _tenant(row)
