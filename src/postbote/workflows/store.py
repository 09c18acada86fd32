"""Workflows in the store, per tenant: every edit makes a new version and keeps the old ones, so
a message sent before an edit still names — and can show — the version that made it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from ..db.schema import iso_utc, tenants, utcnow, workflow_messages, workflow_tenant_settings, workflow_versions, workflows
from ..errors import InputError, NotFoundError
from ..tenants import Tenant, tenant_from_row
from .definition import Definition, parse_definition

DEFAULT_FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Workflow:
    id: int
    tenant_id: int
    enabled: bool
    version: int  # the version this record describes (the current one unless asked otherwise)
    current_version: int
    definition: Definition
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "enabled": self.enabled, "version": self.version,
                "current_version": self.current_version, **self.definition.to_dict(),
                "created_at": iso_utc(self.created_at), "updated_at": iso_utc(self.updated_at)}


_PARSED: dict[tuple[int, int], Definition] = {}


def _definition(workflow_id: int, version: int, stored: Any) -> Definition:
    """A version never changes once written, so each is checked and parsed once per process."""
    key = (workflow_id, version)
    found = _PARSED.get(key)
    if found is None or found.to_dict() != stored:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        found = _PARSED[key] = parse_definition(stored)
    return found


def _not_found(workflow_id: Any) -> NotFoundError:
    return NotFoundError(f"No workflow {workflow_id}.", code="workflow_not_found",
                         hint="List your workflows with GET /v1/workflows or 'postbote workflow list'.")


def create_workflow(engine: Engine, tenant_id: int, data: Any, *, enabled: bool = True) -> Workflow:
    definition = parse_definition(data)
    now = utcnow()
    with engine.begin() as conn:
        workflow_id = conn.execute(insert(workflows).values(
            tenant_id=tenant_id, name=definition.name, trigger=definition.trigger.value, enabled=enabled, version=1,
            created_at=now, updated_at=now)).inserted_primary_key[0]
        conn.execute(insert(workflow_versions).values(workflow_id=workflow_id, version=1,
                                                      definition=definition.to_dict(), created_at=now))
    return get_workflow(engine, tenant_id, workflow_id)


def update_workflow(engine: Engine, tenant_id: int, workflow_id: int, data: Any) -> Workflow:
    """A new version; the old ones stay, and messages keep naming theirs."""
    definition = parse_definition(data)
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(workflows.c.version).where(
            workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id).with_for_update()).first()
        if row is None:
            raise _not_found(workflow_id)
        version = row.version + 1
        conn.execute(insert(workflow_versions).values(workflow_id=workflow_id, version=version,
                                                      definition=definition.to_dict(), created_at=now))
        conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(
            version=version, name=definition.name, trigger=definition.trigger.value, updated_at=now))
    return get_workflow(engine, tenant_id, workflow_id)


def set_enabled(engine: Engine, tenant_id: int, workflow_id: int, enabled: bool) -> Workflow:
    with engine.begin() as conn:
        changed = conn.execute(update(workflows).where(workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id)
                               .values(enabled=enabled, updated_at=utcnow())).rowcount
    if not changed:
        raise _not_found(workflow_id)
    return get_workflow(engine, tenant_id, workflow_id)


def delete_workflow(engine: Engine, tenant_id: int, workflow_id: int) -> None:
    """Deleting disables for good: the versions stay, because messages name them."""
    set_enabled(engine, tenant_id, workflow_id, False)


def get_workflow(engine: Engine, tenant_id: int, workflow_id: int, version: int | None = None) -> Workflow:
    with engine.connect() as conn:
        row = conn.execute(select(workflows).where(workflows.c.id == workflow_id,
                                                   workflows.c.tenant_id == tenant_id)).first()
        if row is None:
            raise _not_found(workflow_id)
        wanted = version or row.version
        stored = conn.execute(select(workflow_versions).where(workflow_versions.c.workflow_id == workflow_id,
                                                              workflow_versions.c.version == wanted)).first()
    if stored is None:
        raise NotFoundError(f"Workflow {workflow_id} has no version {wanted}.", code="workflow_version_not_found",
                            hint=f"Versions run from 1 to {row.version}.")
    return Workflow(row.id, row.tenant_id, row.enabled, wanted, row.version, _definition(workflow_id, wanted, stored.definition),
                    row.created_at, stored.created_at)


def list_workflows(engine: Engine, tenant_id: int, *, trigger: str | None = None,
                   enabled_only: bool = False, after: int | None = None, limit: int | None = None) -> list[Workflow]:
    query = (select(workflows, workflow_versions.c.definition, workflow_versions.c.created_at.label("version_at"))
             .join(workflow_versions, (workflow_versions.c.workflow_id == workflows.c.id)
                   & (workflow_versions.c.version == workflows.c.version))
             .where(workflows.c.tenant_id == tenant_id).order_by(workflows.c.id))
    if trigger is not None:
        query = query.where(workflows.c.trigger == trigger)
    if enabled_only:
        query = query.where(workflows.c.enabled.is_(True))
    if after is not None:
        query = query.where(workflows.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Workflow(r.id, r.tenant_id, r.enabled, r.version, r.version, _definition(r.id, r.version, r.definition), r.created_at,
                     r.version_at) for r in rows]


def list_versions(engine: Engine, tenant_id: int, workflow_id: int, *, after: int | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    get_workflow(engine, tenant_id, workflow_id)  # scoped to the tenant
    query = select(workflow_versions).where(workflow_versions.c.workflow_id == workflow_id).order_by(workflow_versions.c.version)
    if after is not None:
        query = query.where(workflow_versions.c.version > after)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        counts = dict(conn.execute(select(workflow_messages.c.version, func.count()).where(
            workflow_messages.c.workflow_id == workflow_id).group_by(workflow_messages.c.version)).all())
    return [{"version": r.version, "created_at": iso_utc(r.created_at), "messages": counts.get(r.version, 0),
             "definition": r.definition} for r in rows]


def load_tenant(engine: Engine, tenant_id: int) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).one()
    return tenant_from_row(row)


def fallback_language(engine: Engine, tenant_id: int) -> str:
    with engine.connect() as conn:
        found = conn.execute(select(workflow_tenant_settings.c.fallback_language).where(
            workflow_tenant_settings.c.tenant_id == tenant_id)).scalar()
    return found or DEFAULT_FALLBACK_LANGUAGE


def check_language(lang: Any) -> str:
    if not isinstance(lang, str) or len(lang) != 2 or not lang.isalpha() or not lang.islower() or not lang.isascii():
        raise InputError(f"{str(lang)[:20]!r} is not a language code.", code="language_invalid",
                         hint="Use a two-letter code such as de, en or es.")
    return lang


def set_fallback_language(engine: Engine, tenant_id: int, lang: str) -> str:
    check_language(lang)
    with engine.begin() as conn:
        changed = conn.execute(update(workflow_tenant_settings).where(
            workflow_tenant_settings.c.tenant_id == tenant_id).values(fallback_language=lang)).rowcount
        if not changed:
            conn.execute(insert(workflow_tenant_settings).values(tenant_id=tenant_id, fallback_language=lang))
    return lang
