"""``/v1/admin/…``: what the platform's backend does with an admin key — tenants (create, list,
read, settings, suspend, resume, their API keys) and the partner registry. A tenant key is
refused here with 403 ``admin_key_required``; an admin key is refused on tenant operations with
403 ``tenant_key_required`` (see ``app.py``)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ..admins import AdminKey, list_tenant_page, resume, suspend, tenant_json, update_settings
from ..app import App
from ..domains import add_partner, list_partners, remove_partner, update_partner
from ..tenants import add_tenant, create_key, get_tenant, list_key_page, revoke_key
from .paging import DEFAULT_PAGE, check_limit, decode_cursor, decode_int_cursor, encode_cursor, page_json

class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., max_length=64, description="1–64 lower-case letters, digits, '-' or '_' (acme-gmbh).")
    display_name: Optional[str] = Field(None, max_length=200, description="The company's name as mail shows it.")
    settings: Optional["TenantSettingsChange"] = None


class TenantSettingsChange(BaseModel):
    """Only the settings given change; ``hourly_limit: null`` lifts the limit."""
    model_config = ConfigDict(extra="forbid")

    display_name: Optional[str] = Field(None, max_length=200)
    language: Optional[str] = Field(None, max_length=8, description="Default language: de, en, es …")
    time_zone: Optional[str] = Field(None, max_length=64, description="IANA name, e.g. Europe/Berlin.")
    sender_policy: Optional[str] = Field(None, max_length=16, description="fallback or hold.")
    hourly_limit: Optional[int] = Field(None, description="Recipients accepted per rolling hour; null: no limit.")


TenantCreate.model_rebuild()


class Suspension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., min_length=1, max_length=500, description="Kept, and given in the tenant's 403 answers.")


class PartnerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ips: list[str] = Field(default_factory=list, max_length=50)
    hosts: list[str] = Field(default_factory=list, max_length=50)
    spf_include: Optional[str] = Field(None, max_length=253)
    dkim_domain: Optional[str] = Field(None, max_length=253)
    dkim_selector: Optional[str] = Field(None, max_length=63)


class PartnerCreate(PartnerBody):
    name: str = Field(..., max_length=64)


def add_admin_routes(api: FastAPI, app: App, admin: Callable[..., AdminKey], errors: dict) -> None:
    tags: list[str | Any] = ["admin"]
    engine = app.engine

    @api.post("/v1/admin/tenants", status_code=201, responses=errors, tags=tags)
    def post_tenant(body: TenantCreate, by: AdminKey = Depends(admin)) -> dict:
        """Create a tenant (a customer company), optionally with its settings. Make its first API
        key with POST /v1/admin/tenants/{name}/keys."""
        tenant = add_tenant(engine, body.name, body.display_name)
        if body.settings is not None:
            tenant = update_settings(engine, tenant.name, body.settings.model_dump(exclude_unset=True))
        return tenant_json(engine, tenant)

    @api.get("/v1/admin/tenants", responses=errors, tags=tags)
    def get_tenants(limit: int = DEFAULT_PAGE, cursor: str | None = None, by: AdminKey = Depends(admin)) -> dict:
        """Every tenant, by name, ``limit`` (1–200) a page; ``cursor``: the ``next_cursor`` of the
        page before (null on the last page)."""
        found, last = list_tenant_page(engine, limit=check_limit(limit), after=decode_cursor(cursor, "tenants"))
        return {"tenants": [tenant_json(engine, t) for t in found],
                "next_cursor": encode_cursor(last, "tenants") if last is not None else None}

    @api.get("/v1/admin/tenants/{name}", responses=errors, tags=tags)
    def get_one_tenant(name: str, by: AdminKey = Depends(admin)) -> dict:
        """One tenant: its state (suspended or not, and why) and settings."""
        return tenant_json(engine, get_tenant(engine, name))

    @api.patch("/v1/admin/tenants/{name}", responses=errors, tags=tags)
    def patch_tenant(name: str, body: TenantSettingsChange, by: AdminKey = Depends(admin)) -> dict:
        """Change some of a tenant's settings: display_name, language, time_zone, sender_policy,
        hourly_limit. Each is checked before any is written."""
        return tenant_json(engine, update_settings(engine, name, body.model_dump(exclude_unset=True)))

    @api.post("/v1/admin/tenants/{name}/suspend", responses=errors, tags=tags)
    def post_suspend(name: str, body: Suspension, by: AdminKey = Depends(admin)) -> dict:
        """Suspend a tenant: its API calls answer 403 ``tenant_suspended``; its pending mail waits,
        unsent and kept, until it is resumed."""
        return tenant_json(engine, suspend(engine, name, body.reason))

    @api.post("/v1/admin/tenants/{name}/resume", responses=errors, tags=tags)
    def post_resume(name: str, by: AdminKey = Depends(admin)) -> dict:
        """Lift a suspension: the tenant's keys work again and its waiting mail goes."""
        return tenant_json(engine, resume(engine, name))

    @api.get("/v1/admin/tenants/{name}/keys", responses=errors, tags=tags)
    def get_tenant_keys(name: str, limit: int = DEFAULT_PAGE, cursor: str | None = None,
                        by: AdminKey = Depends(admin)) -> dict:
        """A tenant's API keys, newest first (prefix, made, last used, revoked; never a key):
        ``keys``, ``next_cursor``."""
        found = list_key_page(engine, get_tenant(engine, name), limit=check_limit(limit) + 1,
                              before=decode_int_cursor(cursor, "keys"))
        return page_json("keys", "keys", found, limit, lambda r: r[0], lambda r: r[1].to_dict())

    @api.post("/v1/admin/tenants/{name}/keys", status_code=201, responses=errors, tags=tags)
    def post_tenant_key(name: str, by: AdminKey = Depends(admin)) -> dict:
        """A new API key for the tenant, shown this once."""
        key = create_key(engine, get_tenant(engine, name))
        return {"api_key": key, "prefix": key[:10]}

    @api.delete("/v1/admin/tenants/{name}/keys/{prefix}", responses=errors, tags=tags)
    def delete_tenant_key(name: str, prefix: str, by: AdminKey = Depends(admin)) -> dict:
        """Revoke one of the tenant's keys at once."""
        return revoke_key(engine, get_tenant(engine, name), prefix).to_dict()

    @api.get("/v1/admin/partners", responses=errors, tags=tags)
    def get_admin_partners(limit: int = DEFAULT_PAGE, cursor: str | None = None, by: AdminKey = Depends(admin)) -> dict:
        """The partner registry by name, as tenants read it at GET /v1/partners: ``partners``, ``next_cursor``."""
        found = list_partners(engine, app.settings, after=decode_cursor(cursor, "partners"), limit=check_limit(limit) + 1)
        return page_json("partners", "partners", found, limit, lambda p: p.name, lambda p: p.to_dict())

    @api.post("/v1/admin/partners", status_code=201, responses=errors, tags=tags)
    def post_partner(body: PartnerCreate, by: AdminKey = Depends(admin)) -> dict:
        """Register a partner that sends in tenants' names (the e-signature provider): its hosts,
        IPs, SPF include, DKIM domain and selector. 409 ``partner_exists`` if the name is taken."""
        return add_partner(engine, app.settings, body.model_dump()).to_dict()

    @api.put("/v1/admin/partners/{name}", responses=errors, tags=tags)
    def put_partner(name: str, body: PartnerBody, by: AdminKey = Depends(admin)) -> dict:
        """Replace what the registry holds of a partner; every tenant's domain check and allowlist
        kit uses the new values from now on."""
        return update_partner(engine, app.settings, name, body.model_dump()).to_dict()

    @api.delete("/v1/admin/partners/{name}", responses=errors, tags=tags)
    def delete_partner(name: str, by: AdminKey = Depends(admin)) -> dict:
        """Remove a partner (the old PARTNERS settings never bring it back)."""
        remove_partner(engine, app.settings, name)
        return {"name": name, "removed": True}
