"""A tenant's webhook endpoints: where calls go, which event types they select, and the secret
that signs them. The secret is shown once, when it is made, and stored sealed under SECRET_KEY.

A rotation makes a new secret and keeps the old one signing beside it for an overlap (at most
seven days), so a receiver can switch without losing a call."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, delete, func, insert, select, update

from ..compose import normalize_domain
from ..db.schema import iso_utc, tenants, utcnow, webhook_endpoints
from ..errors import ConflictError, InputError, NotFoundError
from ..network import not_public
from ..sending import vault_for
from ..settings import Settings
from .sign import new_secret
from .types import check_selection

MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_OVERLAP = timedelta(days=7)
_HINT_URL = "Give the full https:// URL of your receiver, e.g. https://hooks.example.com/postbote."


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    tenant_id: int
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_until: datetime | None

    def to_dict(self) -> dict:
        rotating = self.previous_until is not None and self.previous_until > utcnow()
        return {"id": self.id, "url": self.url, "description": self.description, "events": self.events,
                "enabled": self.enabled, "created_at": iso_utc(self.created_at), "updated_at": iso_utc(self.updated_at),
                "previous_secret_valid_until": iso_utc(self.previous_until) if rotating else None}


def _endpoint(row) -> Endpoint:
    return Endpoint(row.id, row.tenant_id, row.url, row.description, list(row.events), row.enabled, row.created_at,
                    row.updated_at, row.previous_until)


def check_url(url: object, *, allow_private: bool) -> str:
    """An endpoint URL: https (http only where ALLOW_PRIVATE_WEBHOOKS is on), a host, no user
    name or password (they would be stored and shown in clear; the signature authenticates), no
    fragment; a host that is an IP address must be public. Names are checked when each call is
    made, against what they resolve to then."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InputError(f"The webhook URL must be text of 1 to {MAX_URL} characters.", code="webhook_url_invalid",
                         hint=_HINT_URL)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InputError("The webhook URL holds spaces or control characters.", code="webhook_url_invalid",
                         hint="Percent-encode them (%20).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"The webhook URL cannot be read: {exc}.", code="webhook_url_invalid", hint=_HINT_URL) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes:
        raise InputError("Webhook URLs must use https.", code="webhook_url_invalid",
                         hint="Calls carry your mail's outcomes and must be encrypted; give an https:// URL.")
    if not parts.hostname:
        raise InputError("The webhook URL names no host.", code="webhook_url_invalid", hint=_HINT_URL)
    if parts.username is not None or parts.password is not None:
        raise InputError("The webhook URL holds a user name or password.", code="webhook_url_invalid",
                         hint="Leave them out: every call is signed (webhook-signature), check that instead.")
    if parts.fragment:
        raise InputError("The webhook URL has a #fragment, which is never sent.", code="webhook_url_invalid",
                         hint="Leave out the part from '#'.")
    if port == 0:
        raise InputError("The webhook URL's port must be 1 to 65535.", code="webhook_url_invalid", hint=_HINT_URL)
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if literal and not allow_private and not_public(host):
        raise InputError(f"The webhook URL points to {host}, which is not a public address.",
                         code="webhook_url_refused",
                         hint="Webhooks are called only at public addresses; give your receiver's public name.")
    if not literal and not host.isascii():  # an internationalised name is kept (and called) as its A-labels
        try:
            ascii_host = normalize_domain(host, field="webhook URL host")
        except InputError:
            raise InputError(f"The webhook URL's host {host[:80]!r} is not a valid domain name.",
                             code="webhook_url_invalid", hint=_HINT_URL) from None
        netloc = ascii_host + (f":{port}" if port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return url


def _check_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InputError(f"The description must be text of at most {MAX_DESCRIPTION} characters.",
                         code="webhook_invalid", hint="Shorten it.")
    return description.strip() or None


def create(engine: Engine, settings: Settings, tenant_id: int, *, url: object, events: object,
           description: object = None, enabled: bool = True) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (returned this once)."""
    url = check_url(url, allow_private=settings.ALLOW_PRIVATE_WEBHOOKS)
    selection = check_selection(events)
    text = _check_description(description)
    secret = new_secret()
    now = utcnow()
    row = {"id": "we_" + secrets.token_hex(8), "tenant_id": tenant_id, "url": url, "description": text,
           "events": selection, "enabled": bool(enabled), "secret": vault_for(settings.SECRET_KEY).seal_secret(secret),
           "previous_secret": None, "previous_until": None, "created_at": now, "updated_at": now}
    with engine.begin() as conn:
        # the tenant's row locked (PostgreSQL), so creates side by side cannot pass the limit together
        conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())
        count = conn.execute(select(func.count()).select_from(webhook_endpoints)
                             .where(webhook_endpoints.c.tenant_id == tenant_id)).scalar_one()
        if count >= settings.WEBHOOK_MAX_ENDPOINTS:
            raise ConflictError(f"You have {count} webhook endpoints, the most allowed.", code="webhook_limit",
                                hint="Remove one you no longer use, or select more event types on one endpoint "
                                     "(WEBHOOK_MAX_ENDPOINTS).")
        conn.execute(insert(webhook_endpoints).values(**row))
    return get(engine, tenant_id, row["id"]), secret


def not_found(endpoint_id: str) -> NotFoundError:
    return NotFoundError(f"No webhook endpoint {endpoint_id[:40]!r}.", code="webhook_not_found",
                         hint="List your endpoints with GET /v1/webhooks.")


def disabled(endpoint_id: str) -> ConflictError:
    return ConflictError(f"The webhook endpoint {endpoint_id[:40]!r} is disabled: nothing is sent to it.",
                         code="webhook_disabled", hint='Enable it first: PATCH /v1/webhooks/{id} {"enabled": true}.')


def get(engine: Engine, tenant_id: int, endpoint_id: str) -> Endpoint:
    with engine.connect() as conn:
        row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id,
                                                           webhook_endpoints.c.tenant_id == tenant_id)).first()
    if row is None:
        raise not_found(endpoint_id)
    return _endpoint(row)


def list_page(engine: Engine, tenant_id: int, *, after: str | None, limit: int) -> list[Endpoint]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(webhook_endpoints.c.id > after)
    with engine.connect() as conn:
        return [_endpoint(r) for r in conn.execute(query.order_by(webhook_endpoints.c.id).limit(limit))]


def change(engine: Engine, settings: Settings, tenant_id: int, endpoint_id: str, changes: dict) -> Endpoint:
    """Change url, events, description or enabled; every value is checked before any is written."""
    values: dict = {}
    if "url" in changes:
        values["url"] = check_url(changes["url"], allow_private=settings.ALLOW_PRIVATE_WEBHOOKS)
    if "events" in changes:
        values["events"] = check_selection(changes["events"])
    if "description" in changes:
        values["description"] = _check_description(changes["description"])
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InputError("enabled must be true or false.", code="webhook_invalid", hint="Send true or false.")
        values["enabled"] = changes["enabled"]
    with engine.begin() as conn:
        done = conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id,
                                                            webhook_endpoints.c.tenant_id == tenant_id)
                            .values(updated_at=utcnow(), **values))
    if done.rowcount != 1:
        raise not_found(endpoint_id)
    return get(engine, tenant_id, endpoint_id)


def remove(engine: Engine, tenant_id: int, endpoint_id: str) -> None:
    """The endpoint goes, and with it its calls and their attempts."""
    with engine.begin() as conn:
        done = conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id,
                                                            webhook_endpoints.c.tenant_id == tenant_id))
    if done.rowcount != 1:
        raise not_found(endpoint_id)


def rotate(engine: Engine, settings: Settings, tenant_id: int, endpoint_id: str, *, overlap_seconds: float) -> tuple[str, datetime]:
    """A new secret (returned this once); the current one keeps signing beside it until the
    overlap ends. A rotation during an overlap drops the oldest secret at once."""
    if not 0 <= overlap_seconds <= MAX_OVERLAP.total_seconds():
        raise InputError("The overlap must be between 0 and 7 days.", code="overlap_invalid",
                         hint="Give e.g. 1h or 24h: long enough to put the new secret into your receiver.")
    vault = vault_for(settings.SECRET_KEY)
    secret = new_secret()
    now = utcnow()
    until = now + timedelta(seconds=overlap_seconds)
    with engine.begin() as conn:
        row = conn.execute(select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == endpoint_id,
                                                                    webhook_endpoints.c.tenant_id == tenant_id)
                           .with_for_update()).first()  # two rotations at once: the second sees the first
        if row is None:
            raise not_found(endpoint_id)
        conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(
            secret=vault.seal_secret(secret), previous_secret=row.secret, previous_until=until, updated_at=now))
    return secret, until


def signing_secrets(settings: Settings, row, now: datetime) -> list[str]:
    """The secrets a call made now is signed with: the current one, and the previous one while
    its overlap lasts."""
    vault = vault_for(settings.SECRET_KEY)
    out = [vault.open_secret(row.secret)]
    if row.previous_secret and row.previous_until is not None and row.previous_until > now:
        out.append(vault.open_secret(row.previous_secret))
    return out
